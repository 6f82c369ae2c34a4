"""EventBridge Scheduler stand-in: moto stores schedules but never fires them.

A one-time schedule (`at(yyyy-mm-ddThh:mm:ss)` in its `ScheduleExpressionTimezone`) is due when
its time has come; firing it does what Scheduler does for the target kubestep uses, the
universal target `arn:aws:scheduler:::aws-sdk:sfn:startExecution` (the target's `Input` is the
StartExecution request), or a templated Step Functions target (state machine ARN + input), then
deletes the schedule when `ActionAfterCompletion` is DELETE. Everything goes through boto3
against the emulator, exactly as a client would see it. Used by the runtime's clock (due by
wall time) and by `kubestep local tick --at TIME` (due by a time of the caller's choosing), which
also takes the etcd backups due by then (kubestep_local/backup_tick.py).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kubestep.aws.errors import Kind, error_code, is_already_exists, is_not_found

LOG = logging.getLogger(__name__)

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
START_EXECUTION = "arn:aws:scheduler:::aws-sdk:sfn:startExecution"


# What the schedule's owner recorded when it ran (kubestep: the schedule record's outcome,
# "started" or "skipped: <why>"); None while nothing is recorded yet, "" for a schedule nobody
# records (then the invocation's own result is the outcome).
OutcomeOf = Callable[[str], str | None]


@dataclass(frozen=True)
class Fired:
    name: str
    group: str
    at: datetime
    execution_arn: str | None
    outcome: str  # what the schedule did: its owner's record, else how the invocation went
    invocation: str = "started"  # "started", "already started", or the error starting it


@dataclass(frozen=True)
class _Due:
    at: datetime
    name: str
    group: str
    schedule: dict[str, Any]


def due_time(schedule: dict[str, Any]) -> datetime | None:
    """When a one-time schedule fires (UTC), or None for rate/cron schedules."""
    match = _AT.match(schedule.get("ScheduleExpression") or "")
    if not match:
        return None
    zone = ZoneInfo(schedule.get("ScheduleExpressionTimezone") or "UTC")
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=zone).astimezone(UTC)


def _start(sfn: Any, target: dict[str, Any]) -> str:
    if target["Arn"] == START_EXECUTION:
        request = json.loads(target.get("Input") or "{}")
        return sfn.start_execution(**request)["executionArn"]
    if target["Arn"].split(":")[2] == "states":
        return sfn.start_execution(stateMachineArn=target["Arn"], input=target.get("Input") or "{}")["executionArn"]
    raise NotImplementedError(f"Scheduler stand-in: target {target['Arn']} is not supported")


def _due(scheduler: Any, now: datetime) -> list[_Due]:
    """The ENABLED one-time schedules due at `now`, earliest first (then by name): a later one
    must not take the cluster's lock before an earlier one had its turn."""
    summaries: list[dict[str, Any]] = []
    token = None
    while True:
        page = scheduler.list_schedules(**({"NextToken": token} if token else {}))
        summaries += page.get("Schedules") or []
        token = page.get("NextToken")
        if not token:
            break
    due = []
    for summary in summaries:
        group = summary.get("GroupName") or "default"
        try:
            schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
        except Exception as exc:
            if is_not_found(exc, Kind.SCHEDULE):
                continue  # fired (and deleted) or cancelled since it was listed
            raise
        at = due_time(schedule)
        if at is not None and at <= now and schedule.get("State", "ENABLED") == "ENABLED":
            due.append(_Due(at, summary["Name"], group, schedule))
    return sorted(due, key=lambda d: (d.at, d.name))


def _invoke(scheduler: Any, sfn: Any, due: _Due) -> tuple[str | None, str]:
    """Start the schedule's target, as Scheduler does, and delete a one-time schedule after."""
    arn, invocation = None, "started"
    try:
        arn = _start(sfn, due.schedule["Target"])
    except Exception as exc:  # noqa: BLE001 - recorded like Scheduler's failed invocation
        invocation = (
            "already started"
            if is_already_exists(exc, Kind.EXECUTION)
            else f"{error_code(exc) or type(exc).__name__}: {exc}"
        )
    if due.schedule.get("ActionAfterCompletion") == "DELETE":
        try:
            scheduler.delete_schedule(Name=due.name, GroupName=due.group)
        except Exception as exc:
            if not is_not_found(exc, Kind.SCHEDULE):  # another firer deleted it first
                raise
    return arn, invocation


def _recorded(outcome_of: OutcomeOf, sfn: Any, name: str, execution_arn: str, invocation: str, timeout: float) -> str:
    """The outcome the schedule's owner records, waited for (its execution's first steps)."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = outcome_of(name)
        if outcome == "":
            return invocation
        if outcome is not None:
            return outcome
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING" and outcome_of(name) is None:
            return f"{invocation}; its execution ended {status} without recording an outcome"
        if time.monotonic() > deadline:
            return f"{invocation}; no outcome recorded within {timeout:g}s"
        time.sleep(0.1)


def kubestep_outcomes(api_url: str) -> OutcomeOf:
    """What a kubestep schedule recorded, read through the management API (GET /v1/schedules/ID):
    None while it is SCHEDULED, "" for a schedule kubestep does not know."""
    from kubestep.api.client import ApiClient, ApiError

    api = ApiClient(api_url, sign=False, timeout=30)

    def outcome_of(name: str) -> str | None:
        try:
            record = api.get_schedule(name)
        except ApiError as exc:
            if exc.status in (400, 404):
                return ""
            raise
        if record.get("state") == "SCHEDULED":
            return None
        return str(record.get("outcome") or record.get("state"))

    return outcome_of


def fire_due(
    client: Callable[[str], Any], now: datetime, *, outcome_of: OutcomeOf | None = None, timeout: float = 120.0
) -> list[Fired]:
    """Fire every ENABLED one-time schedule due at `now`, earliest first; returns what each did.

    With `outcome_of`, each schedule's outcome is what its owner recorded (waited for before the
    next schedule fires, so two due for one cluster run in their order), else the invocation's."""
    scheduler, sfn = client("scheduler"), client("stepfunctions")
    fired: list[Fired] = []
    for due in _due(scheduler, now):
        arn, invocation = _invoke(scheduler, sfn, due)
        outcome = invocation
        if outcome_of is not None and arn is not None:
            outcome = _recorded(outcome_of, sfn, due.name, arn, invocation, timeout)
        LOG.info("schedule %s fired: %s", due.name, outcome)
        fired.append(Fired(due.name, due.group, due.at, arn, outcome, invocation))
    return fired


@dataclass(frozen=True)
class Tick:
    at: datetime
    planner_execution: str | None
    planner_status: str | None
    decisions: list[dict[str, Any]]
    fired: list[Fired]
    # Each RUNNING cluster's etcd backup as of the tick (kubestep_local/backup_tick.py).
    backups: list[Any] = field(default_factory=list)


def scheduled_event(rule_arn: str, at: datetime, account: str, region: str) -> dict[str, Any]:
    """The event EventBridge delivers for a scheduled rule (its `time` is the fire time)."""
    return {
        "version": "0",
        "id": f"tick-{at:%Y%m%d%H%M%S}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _planner_output(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The decisions FindDueUpgrades returned (its TaskSucceeded output in the history)."""
    decisions: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            details = event.get("taskSucceededEventDetails")
            if not details:
                continue
            payload = json.loads(details.get("output") or "{}").get("Payload") or {}
            if "upgrades" in payload:
                decisions += payload.get("upgrades") or []
                decisions += payload.get("skipped") or []
    return decisions


def tick(
    client: Callable[[str], Any],
    at: datetime,
    *,
    planner_arn: str | None,
    rule_arn: str,
    account: str,
    region: str,
    timeout: float = 120.0,
    outcome_of: OutcomeOf | None = None,
    fire_backups: Callable[[datetime], list[Any]] | None = None,
) -> Tick:
    """What would happen at `at`: the etcd backups due by `at` are taken (`fire_backups`, before
    any upgrade starts, as the instances' timers would have by then), the upgrade planner fires
    (as its EventBridge rule would, with the scheduled event's time `at`), then the one-time
    schedules due by `at` fire, in their order, each with the outcome `outcome_of` reads (see
    fire_due)."""
    taken = fire_backups(at) if fire_backups is not None else []
    sfn = client("stepfunctions")
    execution_arn = status = None
    decisions: list[dict[str, Any]] = []
    if planner_arn:
        event = scheduled_event(rule_arn, at, account, region)
        name = f"tick-{at:%Y%m%dT%H%M%S}-{int(time.time() * 1000) % 100000:05d}"
        execution_arn = sfn.start_execution(stateMachineArn=planner_arn, name=name, input=json.dumps(event))[
            "executionArn"
        ]
        deadline = time.monotonic() + timeout
        while True:
            status = sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        decisions = _planner_output(sfn, execution_arn)
    fired = fire_due(client, at, outcome_of=outcome_of, timeout=timeout)
    return Tick(at, execution_arn, status, decisions, fired, taken)


class SchedulerClock:
    """Fires one-time schedules when their (wall-clock) time comes, like Scheduler does."""

    def __init__(self, client: Callable[[str], Any], interval: float = 1.0) -> None:
        import threading

        self._client = client
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubestep-local-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                fire_due(self._client, datetime.now(UTC))
            except Exception:  # noqa: BLE001 - the clock keeps ticking; the log says why
                LOG.exception("firing due schedules failed")
