"""The steps of SweepOrphans: list what this service tagged for clusters no record owns, delete
those older than the grace period with DeleteCluster's own steps, report."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from kubestep.errors import InvalidSpec
from kubestep.flow.context import StepInput
from kubestep.flow.steps import Poll, step
from kubestep.models import Model
from kubestep.resources import orphans
from kubestep.store.keys import ServiceTarget
from kubestep.validation import parse, refuse_identity_fields
from kubestep.workflows.cluster_steps import error_message
from kubestep.workflows.identity import own_operation

KIND = "SweepOrphans"
TARGET = ServiceTarget.ORPHANS
# Deleting a cluster's worth of orphans: groups, instances, the NLB's interfaces, security groups.
SWEPT = Poll(deadline=timedelta(minutes=45), interval=10, backoff=1.5, max_delay=30)


class SweepRequest(Model):
    """`SweepOrphans` execution input (the API's and the daily schedule's body too)."""

    dry_run: bool = Field(default=True, alias="dryRun")
    grace_period_seconds: int = Field(
        default=int(orphans.DEFAULT_GRACE.total_seconds()), alias="gracePeriodSeconds", ge=0, le=30 * 24 * 3600
    )


def parse_sweep_request(data: object) -> SweepRequest:
    refuse_identity_fields(data)
    return parse(SweepRequest, {} if data is None else data)


@step
def list_orphans(ctx: StepInput) -> dict:
    """Resources tagged by this service whose cluster uid no record owns; those older than the
    grace period (by their creation or launch time) are to be deleted."""
    request = parse_sweep_request(ctx.event.get("request"))
    own_operation(ctx, KIND, TARGET)
    # The local runtime compresses time: the grace period shrinks with it, like every deadline.
    grace = timedelta(seconds=request.grace_period_seconds) * ctx.settings.time_scale
    now = orphans.now()
    found = [o.view(now, grace) for o in orphans.find(ctx.settings, ctx.store)]
    ctx.store.operations.set(
        ctx.operation_id,
        progress={"dryRun": request.dry_run, "gracePeriodSeconds": request.grace_period_seconds, "orphans": found},
    )
    old = [{"uid": o["uid"], "clusterName": o["clusterName"]} for o in found if o["old"] and o["clusterName"]]
    return {"orphans": old, "dryRun": request.dry_run, "found": len(found)}


@step(poll=SWEPT)
def sweep_orphan(ctx: StepInput, uid: str, cluster_name: str) -> dict:
    """Delete one orphaned cluster's resources with DeleteCluster's steps, in its order."""
    if ctx.store.clusters.owner_of_uid(uid) is not None:
        raise InvalidSpec([("uid", f"{uid} belongs to a cluster record: not an orphan")])
    orphan = orphans.OrphanContext(ctx.settings, ctx.store, cluster_name, uid, ctx.operation_id)
    orphan.run = ctx.run  # pending steps count against this step's deadline
    for fn, kwargs in orphans.delete_steps():
        fn(orphan, **kwargs)
    orphan.event("Normal", "OrphansSwept", f"operation {ctx.operation_id} deleted what was left of uid {uid}")
    return {"uid": uid}


@step
def record_sweep(ctx: StepInput, found: dict) -> dict:
    """What was deleted, and what is left (too young, or not deletable)."""
    operation = ctx.store.operations.get(ctx.operation_id)
    progress = dict(operation.progress or {}) if operation else {}
    swept = {o["uid"] for o in found.get("orphans", [])} if not found.get("dryRun") else set()
    left = {o.uid for o in orphans.find(ctx.settings, ctx.store)}
    progress["deleted"] = sorted(swept - left)
    progress["remaining"] = sorted(left)
    ctx.store.operations.set(ctx.operation_id, progress=progress)
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    return {"deleted": progress["deleted"], "remaining": progress["remaining"]}


@step
def record_sweep_failure(ctx: StepInput, error: dict) -> dict:
    name, message = error_message(error)
    ctx.store.operations.finish(ctx.operation_id, "FAILED", name, message)
    return {"error": name}
