"""A cluster's pending one-off upgrades: an EventBridge Scheduler schedule each, with its record
in the store (Scheduler keeps no tags on a schedule: the record says which cluster incarnation
it was made for). They go with their cluster, and never act on a later one of the same name."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from kubestep import naming, upgrades
from kubestep.aws import client
from kubestep.aws.errors import Kind
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING, DeleteStep, Found, ResourceKind, Scope, exists

PENDING = "SCHEDULED"


@step
def cancel_cluster_schedules(ctx: ClusterContext) -> dict:
    """The cluster's pending one-off upgrades go with it: each Scheduler schedule deleted and its
    record CANCELLED, saying why (a schedule never outlives its cluster to act on a new one)."""
    why = f"cluster {ctx.name} (uid {ctx.uid}) was deleted by operation {ctx.operation_id}"
    # Without a record (a sweep of a lost incarnation), only the schedules that name its uid.
    exact = ctx.record is None
    cancelled = upgrades.cancel_cluster_schedules(ctx.settings, ctx.store, ctx.name, ctx.uid, why, exact=exact)
    if cancelled:
        ctx.event("Normal", "SchedulesCancelled", f"one-off upgrades {', '.join(cancelled)} cancelled: {why}")
    return {"cancelled": cancelled}


def find_schedules(scope: Scope, uid: str | None) -> Iterator[Found]:
    """Pending schedules by their records (none without the store)."""
    if scope.store is None:
        return
    for schedule in scope.store.schedules.list():
        if schedule.state != PENDING or not schedule.uid or (uid and schedule.uid != uid):
            continue
        # The record stands for the tags Scheduler does not keep.
        tags = {naming.TAG_CLUSTER: schedule.cluster, naming.TAG_CLUSTER_UID: schedule.uid}
        detail = {"cluster": schedule.cluster, "at": schedule.at, "kind": schedule.kind}
        yield Found(schedule.uid, schedule.schedule_id, tags, None, detail, tagged=False)


def schedule_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """A pending schedule whose Scheduler schedule is gone will never run."""
    scheduler = client("scheduler", ctx.settings.region)
    drift = {}
    for schedule in find_schedules(Scope(lambda s: client(s, ctx.settings.region), store=ctx.store), ctx.uid):
        get = partial(scheduler.get_schedule, Name=schedule.id, GroupName=upgrades.SCHEDULE_GROUP)
        if not exists(get, Kind.SCHEDULE):
            drift[f"schedule/{schedule.id}"] = f"{MISSING} from EventBridge Scheduler: it will not run"
    return drift


KIND = ResourceKind(
    "schedules",
    label="Schedule",
    find=find_schedules,
    delete=(DeleteStep(cancel_cluster_schedules, args=(), whole_cluster_only=True, name="CancelSchedules"),),
    drift=schedule_drift,
    blocks_updates=False,  # a missing one-off upgrade stops no update: it only will not run
)
