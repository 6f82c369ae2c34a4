"""The steps of PlanUpgrades: decide which clusters upgrade now, then start each one's
UpdateCluster the way the API does (lock reserved, operation record, execution named by it)."""

from __future__ import annotations

from datetime import UTC, datetime

from kubestep import upgrades, versions
from kubestep.errors import AlreadyExists, InvalidSpec, LockHeld, NotFound
from kubestep.flow.context import StepInput
from kubestep.flow.steps import step
from kubestep.workflows import starts

# A page of decisions in the execution's history; the rest are counted (256 KiB state limit).
MAX_LISTED_DECISIONS = 100


def planning_time(ctx: StepInput) -> datetime:
    """Now, as the execution's start time. Only the local runtime honours the scheduled event's
    `time` from the input (its `tick --at`); on AWS the input cannot move a maintenance window."""
    stamp = ctx.event.get("startTime")
    scheduled = ctx.event.get("event")
    if ctx.settings.local_clock and isinstance(scheduled, dict) and isinstance(scheduled.get("time"), str):
        stamp = scheduled["time"]
    if not isinstance(stamp, str):
        return datetime.now(UTC)
    return upgrades.parse_time(stamp, "time")


@step
def find_due_upgrades(ctx: StepInput) -> dict:
    """Every cluster's decision now: the upgrades to start (within the fleet-wide cap) and why
    each other cluster waits."""
    now = planning_time(ctx)
    decisions = upgrades.plan(ctx.store, ctx.settings.service.spec.upgrades.max_concurrent, now)
    warn_end_of_life(ctx)
    due = [d.as_dict() for d in decisions if d.action == "upgrade"]
    skipped = [d.as_dict() for d in decisions if d.action != "upgrade"]
    return {
        "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "upgrades": due,
        "skipped": skipped[:MAX_LISTED_DECISIONS],
        "skippedCount": len(skipped),
    }


def warn_end_of_life(ctx: StepInput) -> None:
    """A Warning event (aggregated: one per object, its count rising hourly) on every cluster and
    node pool that runs a Kubernetes minor past its end of life."""
    for record in ctx.store.clusters.all():
        objects = [(f"AWSCluster/{record.name}", record.version)]
        objects += [(f"AWSNodePool/{record.name}/{p.name}", p.version) for p in ctx.store.node_pools.list(record.name)]
        for involved, version in objects:
            warning = versions.end_of_life_warning(version) if version else None
            if warning:
                ctx.store.events.record(record.name, "Warning", "VersionEndOfLife", warning, involved)


@step
def start_upgrade(ctx: StepInput, cluster_name: str, version: str, upgrade_id: str) -> dict:
    """UpdateCluster of one cluster to `version`, its node pools after it, under the planner's
    deterministic operation id: started once however often the planner fires."""
    request = upgrades.upgrade_request(cluster_name, version)
    try:
        operation = starts.start_update_cluster(ctx.settings, ctx.store, request, operation_id=upgrade_id)
    except (LockHeld, InvalidSpec, NotFound, AlreadyExists) as exc:
        # The cluster changed since the plan (another operation took it, it was deleted): next time.
        return {"clusterName": cluster_name, "started": False, "reason": str(exc)[:500]}
    return {"clusterName": cluster_name, "started": True, "operationId": operation.operation_id}
