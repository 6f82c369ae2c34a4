"""Drift: what a cluster's AWS resources look like against what kubestep made, after people
changed or deleted things by hand, and what runs against what the spec says.

`detect` asks every kind of `kubestep.resources.kinds` what differs from the cluster's records:
its security groups and their rules, the NLB, its listener and target group, the secrets, the
instance roles and profiles, the termination queue and its EventBridge rule, each replica's etcd
volume, launch template and Auto Scaling group (its launch template, size limits and target
group), each node pool's launch template and group, the live instances of each (their type,
launch template version and reports, the instances the records name), the replicas' DNS
records and the pending schedules. It changes nothing. `RepairCluster` records what it found on
the cluster record (`drift`, shown by `kubestep describe`), runs the create steps again (they
recreate what is missing and reconcile what changed), rolls the instances whose launch template
changed, and reports what it changed."""

from __future__ import annotations

from kubestep import naming
from kubestep.errors import KubestepError
from kubestep.flow.steps import step
from kubestep.resources import kinds
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING
from kubestep.store import Resource

__all__ = ["MISSING", "detect", "check_for_drift", "detect_drift", "summary"]


def detect(ctx: ClusterContext) -> dict[str, str]:
    """Logical resource -> what differs ("missing", "rules missing: ...", "size 0..0 ...", "runs
    m5.xlarge where the spec says m5.large"); {} when everything kubestep made is there as it
    made it and runs what the spec says."""
    return kinds.detect(ctx)


class DriftDetected(KubestepError):
    """What an operation needs was deleted or changed by hand: `kubestep repair cluster` first."""


@step
def check_for_drift(ctx: ClusterContext) -> dict:
    """Before an update changes anything: every resource it works with is there as kubestep made
    it (a replica group deleted by hand would fail the roll half-way). What runs may differ (an
    instance of another type, a failed one): the roll and its gate put that right."""
    drift = kinds.detect(ctx, blocking_only=True)
    if drift:
        ctx.store.clusters.set_drift(ctx.name, drift)
        raise DriftDetected(
            f"cluster {ctx.name} differs from what kubestep made ({summary(drift)}): run `kubestep repair cluster "
            f"{ctx.name}` to restore it, then this update again; nothing was changed"
        )
    return {"drift": {}}


def summary(drift: dict[str, str]) -> str:
    return "; ".join(f"{key}: {what}" for key, what in drift.items())


class RepairImpossible(KubestepError):
    """What is lost cannot be made again without breaking the cluster (its CA keys)."""


@step
def detect_drift(ctx: ClusterContext) -> dict:
    """Compare the cluster's AWS resources with its records; record what differs on the cluster
    record (`drift`) and in a Warning event. Changes nothing in AWS. A lost control-plane
    secret stops the repair: new CA keys would make every instance's certificates worthless."""
    drift = detect(ctx)
    ctx.store.clusters.set_drift(ctx.name, drift)
    if drift:
        ctx.event(
            "Warning", "DriftDetected", f"{len(drift)} resources differ from what kubestep made: {summary(drift)}"
        )
    else:
        ctx.event("Normal", "NoDrift", "every resource kubestep made is there as it made it")
    lost = drift.get(Resource.CONTROL_PLANE_SECRET.value)
    if lost:
        raise RepairImpossible(
            f"the control-plane secret {naming.control_plane_secret(ctx.uid)} is {lost}: it holds the cluster's CA "
            "keys, which cannot be made again; restore it, or delete the cluster and create it anew"
        )
    return {"found": drift}
