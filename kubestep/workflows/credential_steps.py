"""Steps of PlanUpgrades that keep every cluster's credentials current: rotate the join tokens
that are due (on ClusterTasks, the function that may write the clusters' secrets) and warn about
control-plane certificates close to expiry. Each cluster on its own: one that fails is a Warning
event on that cluster, and the others still run."""

from __future__ import annotations

from kubestep import certificates, join_tokens
from kubestep.aws import client
from kubestep.flow.context import StepInput
from kubestep.flow.steps import step
from kubestep.workflows.upgrade_steps import planning_time

# A page of cluster names in the execution's history; the rest are counted.
MAX_LISTED = 100


@step
def rotate_join_tokens(ctx: StepInput) -> dict:
    """A new join token for every running cluster whose newest one is a day old; the earlier
    values stay accepted until they expire. No value leaves this function."""
    now = planning_time(ctx)
    secretsmanager = client("secretsmanager", ctx.settings.region)
    rotated, failed = [], []
    for record in ctx.store.clusters.all():
        if record.phase not in join_tokens.ROTATED_PHASES:
            continue
        involved = f"AWSCluster/{record.name}"
        try:
            outcome = join_tokens.rotate(secretsmanager, ctx.store, record, now)
        except Exception as exc:  # noqa: BLE001 - one cluster's trouble must not stop the others
            failed.append(record.name)
            ctx.store.events.record(
                record.name,
                "Warning",
                "JoinTokenRotationFailed",
                f"rotating the join token failed ({type(exc).__name__}: {str(exc)[:300]}); the next run tries again",
                involved,
            )
            continue
        if outcome:
            rotated.append(record.name)
            ctx.store.events.record(record.name, "Normal", "JoinTokenRotated", outcome, involved)
    return {"rotated": rotated[:MAX_LISTED], "failed": failed[:MAX_LISTED], "count": len(rotated)}


@step
def warn_expiring_certificates(ctx: StepInput) -> dict:
    """A Warning event for each control-plane certificate that expires within 30 days, as the
    replicas report them."""
    now = planning_time(ctx)
    warned = []
    for record in ctx.store.clusters.all():
        expiries = certificates.earliest(ctx.store.reports.replicas(record.uid))
        for expiry in certificates.expiring(expiries, now):
            ctx.store.events.record(
                record.name, "Warning", "CertificateExpiring", certificates.warning(expiry), f"AWSCluster/{record.name}"
            )
            warned.append(f"{record.name}/{expiry.certificate}")
    return {"warned": warned[:MAX_LISTED], "count": len(warned)}
