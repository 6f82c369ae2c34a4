"""Automatic upgrades (the PlanUpgrades workflow, fired by an EventBridge rule) and one-off
upgrades at a chosen time (EventBridge Scheduler one-time schedules).

The planner decides, for every cluster, whether an upgrade is due now: auto-upgrade on, a
release channel, its maintenance window open, a version behind the channel's, no operation
holding the cluster — and starts the due ones under a fleet-wide cap with deterministic
operation ids, so a rule that fires twice (EventBridge delivers at least once) starts nothing
twice. A one-off schedule is a Scheduler schedule whose target is Step Functions'
StartExecution of UpdateCluster with a name of its own (`sched-<schedule id>`): the same
at-least-once argument, and the execution proves nothing but that name (DESIGN §10)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubestep import versions
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.errors import AlreadyExists, InvalidRequest, InvalidSpec, NotFound, ScheduleNotPending, shown
from kubestep.models import UpdateClusterRequest
from kubestep.settings import Settings
from kubestep.store import ClusterRecord, Schedule, Store

UPGRADE_WORKFLOW = "UpdateCluster"
# Step Functions' universal target in EventBridge Scheduler (the SDK call it makes at the time).
START_EXECUTION_TARGET = "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
# One-off schedules live in the default group, named after the service (IAM scopes them by it).
SCHEDULE_GROUP = "default"
# How far ahead a one-off upgrade may be scheduled, and how soon (Scheduler needs a future time).
MAX_SCHEDULE_AHEAD = timedelta(days=90)
MIN_SCHEDULE_AHEAD = timedelta(minutes=1)
# Clusters in these phases can take an automatic upgrade (DEGRADED waits for a person).
UPGRADABLE_PHASES = ("RUNNING",)


# ---------------------------------------------------------------- what a channel wants


def next_version(current: str, channel: str) -> str | None:
    """The version auto-upgrade moves `current` to: toward the channel's default version, one
    minor at a time (the newest patch of the next minor), never down; None when up to date."""
    if channel not in versions.CHANNELS:
        return None
    catalog = versions.catalog()
    _, minor, patch = versions.parse(current)
    wanted_minor = catalog.channels[channel]
    if minor > wanted_minor:
        return None  # a cluster ahead of its channel (e.g. moved from rapid to stable) stays
    if minor < wanted_minor:
        following = catalog.minors.get(minor + 1)
        return following.default_version if following else None
    known = catalog.minors.get(minor)
    return known.default_version if known and patch < known.latest_patch else None


# ---------------------------------------------------------------- the planner


@dataclass(frozen=True)
class Decision:
    cluster: str
    action: str  # "upgrade" or "skip"
    reason: str
    version: str | None = None
    operation_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found = {"clusterName": self.cluster, "action": self.action, "reason": self.reason}
        if self.version:
            found["version"] = self.version
        if self.operation_id:
            found["operationId"] = self.operation_id
        return found


def auto_operation_id(record: ClusterRecord, version: str, opened: datetime) -> str:
    """Deterministic per cluster, target version and maintenance window: the planner firing
    twice in one window starts one execution; a failed upgrade is tried again next window."""
    return f"auto-{record.uid}-{version.replace('.', '-')}-{opened:%Y%m%d%H%M}"


def _busy(store: Store, record: ClusterRecord) -> str | None:
    lock = store.locks.get(record.name)
    if lock is None:
        return None
    return lock.operation_id


def _running_upgrades(store: Store, records: list[ClusterRecord]) -> set[str]:
    running = set()
    for record in records:
        holder = _busy(store, record)
        if holder is None:
            continue
        operation = store.operations.get(holder)
        if operation is not None and operation.kind == UPGRADE_WORKFLOW and operation.status == "RUNNING":
            running.add(record.name)
    return running


def plan(store: Store, max_concurrent: int, now: datetime) -> list[Decision]:
    """Every cluster's decision at `now`, the due ones first by name, capped fleet-wide."""
    records = store.clusters.all()
    running = _running_upgrades(store, records)
    slots = max(0, max_concurrent - len(running))
    decisions: list[Decision] = []
    for record in sorted(records, key=lambda r: r.name):
        policy = record.spec.spec.upgrade_policy
        channel = policy.release_channel
        if not policy.auto_upgrade or channel == "none":
            decisions.append(Decision(record.name, "skip", "auto-upgrade is off"))
            continue
        if record.phase not in UPGRADABLE_PHASES:
            decisions.append(Decision(record.name, "skip", f"cluster is {record.phase}"))
            continue
        target = next_version(record.version, channel)
        if target is None:
            decisions.append(Decision(record.name, "skip", f"up to date on the {channel} channel ({record.version})"))
            continue
        opened = policy.maintenance_window.opened_at(now)
        if opened is None:
            decisions.append(Decision(record.name, "skip", "outside its maintenance window", target))
            continue
        holder = _busy(store, record)
        if holder is not None:
            decisions.append(Decision(record.name, "skip", f"operation {holder} holds the cluster", target))
            continue
        if slots <= 0:
            decisions.append(
                Decision(record.name, "skip", f"{max_concurrent} upgrades already run (upgrades.maxConcurrent)", target)
            )
            continue
        slots -= 1
        decisions.append(
            Decision(
                record.name,
                "upgrade",
                f"{record.version} -> {target} ({channel} channel)",
                target,
                auto_operation_id(record, target, opened),
            )
        )
    return decisions


def upgrade_request(cluster: str, version: str, node_pools: str | list[str] | None = "all") -> dict[str, Any]:
    return UpdateClusterRequest.model_validate(
        {"clusterName": cluster, "controlPlane": {"version": version}, "nodePools": node_pools}
    ).model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------- one-off schedules


def schedule_name(settings: Settings) -> str:
    """`<service>-upgrade-<random>`: at most 64 characters of [0-9a-zA-Z-_.] (Scheduler's rule)."""
    return f"{settings.service_name}-upgrade-{secrets.token_hex(4)}"


SCHEDULE_EXECUTION_PREFIX = "sched-"


def schedule_execution_name(schedule_id: str) -> str:
    return f"{SCHEDULE_EXECUTION_PREFIX}{schedule_id}"[:80]


def scheduled_run(store: Store, execution_name: str, request: Any) -> Schedule | None:
    """The one-off schedule an UpdateCluster execution runs for, or None. An execution proves it
    by its own name (Scheduler starts it as `sched-<schedule id>`) and by carrying exactly the
    request kubestep recorded on that schedule; a `scheduleId` in any other execution's input is
    refused, and nothing of the schedule changes."""
    claimed = request.get("scheduleId") if isinstance(request, dict) else None
    named = execution_name.removeprefix(SCHEDULE_EXECUTION_PREFIX)
    if named == execution_name:
        if claimed is not None:
            raise InvalidSpec(
                [
                    (
                        "scheduleId",
                        "is set only by a one-off schedule's own execution (named sched-<schedule id>); remove it "
                        "(`kubestep upgrade cluster NAME --at TIME` makes a schedule)",
                    )
                ]
            )
        return None
    schedule = store.schedules.get(named)
    if schedule is None or claimed != named or request != schedule.parameters:
        owner = (
            f"schedule {named} of cluster {schedule.cluster!r}"
            if schedule
            else f"schedule {named}, which does not exist"
        )
        raise InvalidSpec(
            [
                (
                    "executionName",
                    f"{shown(execution_name)} is the execution name of {owner}, and this input is not that schedule's "
                    "request; start this execution under another name",
                )
            ]
        )
    return schedule


def stale_schedule(store: Store, schedule: Schedule) -> str | None:
    """Why a schedule that fires must do nothing: it is no longer pending, or the cluster it was
    made for is gone (also when a new cluster of the same name exists: another incarnation)."""
    if schedule.state != "SCHEDULED":
        return f"schedule {schedule.schedule_id} is {schedule.state}"
    record = store.clusters.get(schedule.cluster)
    if record is None:
        return f"cluster {schedule.cluster!r} no longer exists"
    # A schedule made before incarnations were recorded: the cluster must be older than it.
    made_for_another = (
        record.uid != schedule.uid if schedule.uid else (record.created_at or "") > (schedule.created_at or "")
    )
    if made_for_another:
        earlier = f"uid {schedule.uid}" if schedule.uid else "an earlier cluster of that name"
        return (
            f"cluster {schedule.cluster!r} is uid {record.uid}, a new cluster of that name: the schedule was made "
            f"for {earlier}, which was deleted; a schedule never upgrades another cluster"
        )
    return None


def cancel_cluster_schedules(settings: Settings, store: Store, cluster: str, uid: str, why: str) -> list[str]:
    """Cancel every pending schedule made for this cluster incarnation (its Scheduler schedule
    deleted, its record CANCELLED with `why`); returns their ids."""
    cancelled = []
    for schedule in store.schedules.list(cluster):
        if schedule.state != "SCHEDULED" or (schedule.uid and schedule.uid != uid):
            continue
        _delete_scheduler_schedule(settings, schedule.schedule_id)
        if store.schedules.cancel(schedule.schedule_id, f"cancelled: {why}") is not None:
            cancelled.append(schedule.schedule_id)
    return cancelled


def _delete_scheduler_schedule(settings: Settings, schedule_id: str) -> None:
    try:
        client("scheduler", settings.region).delete_schedule(Name=schedule_id, GroupName=SCHEDULE_GROUP)
    except Exception as exc:
        if not is_not_found(exc, Kind.SCHEDULE):
            raise


def parse_time(value: str, field: str = "at") -> datetime:
    """An ISO 8601 time with an offset (`2026-12-01T03:00:00Z`); naive times are refused: a
    schedule must not depend on where the CLI runs."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise InvalidRequest([(field, "must be an ISO 8601 time with a zone, e.g. 2026-12-01T03:00:00Z")]) from None
    if moment.tzinfo is None:
        raise InvalidRequest([(field, "needs a time zone (Z or +HH:MM): a schedule must not depend on the caller")])
    return moment.astimezone(UTC)


def check_schedule_time(at: datetime, now: datetime, field: str = "at") -> None:
    if at < now + MIN_SCHEDULE_AHEAD:
        raise InvalidSpec(
            [(field, f"must be at least {MIN_SCHEDULE_AHEAD} in the future (now is {now:%Y-%m-%dT%H:%M:%SZ})")]
        )
    if at > now + MAX_SCHEDULE_AHEAD:
        raise InvalidSpec([(field, f"must be within {MAX_SCHEDULE_AHEAD.days} days")])


def create_schedule(
    settings: Settings, store: Store, request: dict[str, Any], at: datetime, scheduler_role_arn: str
) -> Schedule:
    """A one-time Scheduler schedule that starts UpdateCluster with `request` at `at`, and its
    record. The request was validated against the cluster now; it is validated again when it
    runs (the cluster may have changed), and the schedule records why it did nothing then."""
    when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster = store.clusters.get(request["clusterName"])
    if cluster is None:
        raise NotFound(f"cluster {request['clusterName']!r} does not exist")
    for pending in store.schedules.list(request["clusterName"]):
        # Only this incarnation's: an earlier cluster's schedule never stands for this one's.
        if pending.state != "SCHEDULED" or pending.at != when or stale_schedule(store, pending):
            continue
        if {k: v for k, v in pending.parameters.items() if k != "scheduleId"} == request:
            return pending  # the same request again (a retry): one schedule, not two
        raise AlreadyExists(
            f"cluster {request['clusterName']!r} already has schedule {pending.schedule_id} at {when} "
            f"({schedule_view(pending)['version']}): cancel it first (`kubestep delete schedule "
            f"{pending.schedule_id}`) or choose another time"
        )
    schedule_id = schedule_name(settings)
    body = {**request, "scheduleId": schedule_id}
    record = Schedule(
        schedule_id=schedule_id,
        cluster=request["clusterName"],
        uid=cluster.uid,
        kind=UPGRADE_WORKFLOW,
        at=when,
        parameters=body,
    )
    store.schedules.create(record)
    scheduler = client("scheduler", settings.region)
    try:
        answer = scheduler.create_schedule(
            Name=schedule_id,
            GroupName=SCHEDULE_GROUP,
            ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Description=f"kubestep {settings.service_name}: upgrade cluster {record.cluster}",
            Target={
                "Arn": START_EXECUTION_TARGET,
                "RoleArn": scheduler_role_arn,
                # A universal target's input is the API's own request (StartExecution's
                # camelCase fields): it can name the execution, a templated target cannot.
                "Input": json.dumps(
                    {
                        "stateMachineArn": settings.state_machine_arn(UPGRADE_WORKFLOW),
                        "name": schedule_execution_name(schedule_id),
                        "input": json.dumps(body),
                    }
                ),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
            },
        )
    except Exception:
        store.schedules.delete(schedule_id)
        raise
    return store.schedules.update(schedule_id, schedule_arn=answer.get("ScheduleArn")) or record


def cancel_schedule(settings: Settings, store: Store, schedule_id: str) -> Schedule:
    record = store.schedules.get(schedule_id)
    if record is None:
        raise NotFound(f"schedule {schedule_id!r} does not exist")
    if record.state != "SCHEDULED":
        raise ScheduleNotPending(
            f"schedule {schedule_id!r} is {record.state}: only a pending schedule can be cancelled"
        )
    _delete_scheduler_schedule(settings, schedule_id)
    return (
        store.schedules.cancel(schedule_id, "cancelled through the API") or store.schedules.get(schedule_id) or record
    )


def schedule_view(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.schedule_id,
        "cluster": schedule.cluster,
        "kind": schedule.kind,
        "at": schedule.at,
        "state": schedule.state,
        "version": (schedule.parameters.get("controlPlane") or {}).get("version"),
        "nodePools": schedule.parameters.get("nodePools"),
        "createdAt": schedule.created_at,
        "firedAt": schedule.fired_at,
        "outcome": schedule.outcome,
        "operationId": schedule.operation_id,
    }
