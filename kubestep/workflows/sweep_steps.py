"""The steps of SweepOrphans: list what this service tagged for clusters no record owns, delete
those older than the grace period with DeleteCluster's own steps, report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
    grace period (by their creation or launch time, or when a sweep first saw them) are to be
    deleted. Etcd volumes a delete kept are listed as retained and never deleted."""
    request = parse_sweep_request(ctx.event.get("request"))
    own_operation(ctx, KIND, TARGET)
    # The local runtime compresses time: the grace period shrinks with it, like every deadline.
    grace = timedelta(seconds=request.grace_period_seconds) * ctx.settings.time_scale
    now = orphans.now()
    found = [o.view(now, grace) for o in orphans.find(ctx.settings, ctx.store, now)]
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
    return {"uid": uid}


@step
def record_sweep(ctx: StepInput, found: dict) -> dict:
    """What was deleted and what is left, resource by resource, against what the listing found:
    too young, kept on purpose (retained), or not selected by the delete's steps."""
    operation = ctx.store.operations.get(ctx.operation_id)
    progress = dict(operation.progress or {}) if operation else {}
    listed = {o["uid"]: o for o in progress.get("orphans", [])}
    swept = sorted({o["uid"] for o in found.get("orphans", [])}) if not found.get("dryRun") else []
    after = {o.uid: o for o in orphans.find(ctx.settings, ctx.store)}
    deleted = {uid: _gone(listed.get(uid, {}).get("resources", {}), after.get(uid)) for uid in swept}
    left = {uid: _why_left(ctx, after[uid]) for uid in swept if uid in after and after[uid].count}
    for uid in swept:
        _record_event(ctx, listed.get(uid, {}).get("clusterName") or uid, uid, deleted[uid], left.get(uid))
    progress.update(
        # Uids whose deletable resources are all gone, and uids with something deletable left.
        deleted=[uid for uid in swept if uid not in left],
        remaining=sorted(uid for uid, o in after.items() if o.count),
        deletedResources=deleted,
        left=left,
        retained={uid: o.retained for uid, o in sorted(after.items()) if o.retained},
    )
    ctx.store.operations.set(ctx.operation_id, progress=progress)
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    return {"deleted": progress["deleted"], "remaining": progress["remaining"]}


def _gone(before: dict[str, list[str]], now: orphans.Orphan | None) -> dict[str, list[str]]:
    still = now.resources if now else {}
    gone = {kind: sorted(set(ids) - set(still.get(kind, []))) for kind, ids in before.items()}
    return {kind: ids for kind, ids in gone.items() if ids}


def _why_left(ctx: StepInput, orphan: orphans.Orphan) -> dict[str, Any]:
    resources = {kind: sorted(ids) for kind, ids in sorted(orphan.resources.items())}
    lacking = orphan.incomplete_identity(ctx.settings.service_name)
    if lacking:
        return {
            "resources": resources,
            "reason": "not selected by DeleteCluster's steps, which take a cluster's resources only by all its "
            "identity tags; these lack some (delete them by hand if they are yours)",
            "missingTags": lacking,
        }
    return {"resources": resources, "reason": "still there after DeleteCluster's steps"}


def _counts(resources: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(ids)} {kind}" for kind, ids in resources.items()) or "nothing"


def _record_event(ctx: StepInput, cluster: str, uid: str, deleted: dict, left: dict | None) -> None:
    message = f"operation {ctx.operation_id} deleted what was left of uid {uid}: {_counts(deleted)}"
    if left:
        message += f"; left {_counts(left['resources'])}: {left['reason']}"
    type_ = "Warning" if left else "Normal"
    ctx.store.events.record(cluster, type_, "OrphansSwept", message, f"AWSCluster/{cluster}", ctx.operation_id)


@step
def record_sweep_failure(ctx: StepInput, error: dict) -> dict:
    name, message = error_message(error)
    ctx.store.operations.finish(ctx.operation_id, "FAILED", name, message)
    return {"error": name}
