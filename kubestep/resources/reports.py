"""Reading what instances say about themselves (docs/contracts.md, "Bootstrap report"): after a
successful bootstrap every instance rewrites its report at least every REPORT_INTERVAL, so the
health gates read live state, not a one-shot answer. A report older than STALE_AFTER proves
nothing about now. A node counts as ready only when its Node is Ready *and* the cloud controller
manager initialised it: a Node is Ready while it still carries the uninitialized taint, so a
broken CCM would otherwise pass the gate."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.steps import human
from kubestep.store import BootstrapReport, now, parse_iso

REPORT_INTERVAL = timedelta(seconds=60)
STALE_AFTER = 5 * REPORT_INTERVAL
# The health gates' first look at a new instance, in seconds: none reports before EC2 ran it
# (pending -> running ~16 s), cloud-init started its bootstrap (~10 s later) and the bootstrap
# installed containerd and the Kubernetes packages (tens of seconds from a regional mirror);
# published cold-boot figures: github.com/brevdev/ec2-coldboot-research, "Key Findings". Looking
# earlier costs reads (every poll reads the cluster, the operation, the group and the reports)
# and finds nothing.
BOOT_REPORT_FIRST = 60
# The taint kubelet puts on its Node with `cloud-provider: external` until the cloud controller
# manager has initialised it (k8s.io/cloud-provider, api.TaintExternalCloudProvider).
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"


def staleness(report: BootstrapReport, time_scale: float = 1.0) -> str | None:
    """Why `report` is too old to say anything about now, or None."""
    if not report.reported_at:
        return "its report has no reportedAt"
    try:
        age = now() - parse_iso(report.reported_at)
    except ValueError:
        return f"its report's reportedAt {report.reported_at!r} is not an ISO 8601 time"
    if age > STALE_AFTER * time_scale:
        return (
            f"its latest report ({report.reported_at}) is older than {human(STALE_AFTER)}: "
            f"it should report every {human(REPORT_INTERVAL)}"
        )
    return None


def node_problem(report: BootstrapReport | None, time_scale: float = 1.0) -> str | None:
    """Why a node does not count as ready (naming the check), or None when it does."""
    if report is None:
        return "has not reported its bootstrap yet"
    if not report.ok:
        return f"reported {report.status}"
    stale = staleness(report, time_scale)
    if stale:
        return stale
    checks = report.checks
    if checks.get("nodeReady") is not True:
        return "its Node is not Ready (nodeReady)"
    if checks.get("nodeInitialized") is not True:
        return (
            "the cloud controller manager has not initialised its Node: no providerID, or the "
            f"{UNINITIALIZED_TAINT} taint still on it (nodeInitialized)"
        )
    return None
