"""The local runtime's EventBridge Scheduler stand-in (kubestep_local.scheduler) against
in-process moto: due one-time schedules fire earliest first whatever order Scheduler lists
them in (a 03:10 upgrade fired before a 03:00 one took the cluster's lock first, and the 03:00
one was then skipped as locked), each reports what its schedule recorded rather than "started",
and a schedule that disappears between the list and the get (fired by the runtime's own clock,
or cancelled) is no error."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kubestep_local.scheduler import START_EXECUTION, fire_due

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/scheduler"
NOW = datetime(2026, 12, 5, 3, 30, tzinfo=UTC)


PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


class Clients:
    """boto3 clients by service name (what fire_due takes), and the state machine schedules start."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}
        self.machine = self("stepfunctions").create_state_machine(name="UpdateCluster", definition=PASS, roleArn=ROLE)[
            "stateMachineArn"
        ]

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = boto3.client(service, region_name=REGION)
        return self._made[service]


@pytest.fixture
def clients() -> Iterator[Clients]:
    with mock_aws():
        yield Clients()


def schedule(client: Clients, name: str, at: str) -> None:
    """A one-time schedule as kubestep's API makes it (universal StartExecution target)."""
    target_input = {"stateMachineArn": client.machine, "name": f"sched-{name}", "input": "{}"}
    client("scheduler").create_schedule(
        Name=name,
        ScheduleExpression=f"at({at})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={"Arn": START_EXECUTION, "RoleArn": ROLE, "Input": json.dumps(target_input)},
    )


def started_names(client: Clients) -> list[str]:
    executions = client("stepfunctions").list_executions(stateMachineArn=client.machine)["executions"]
    return [e["name"] for e in sorted(executions, key=lambda e: e["startDate"])]


def test_due_schedules_fire_earliest_first(clients: Clients) -> None:
    schedule(clients, "z-early", "2026-12-05T03:00:00")
    # Made last, listed first: ListSchedules promises no order (moto lists the newest first).
    schedule(clients, "a-late", "2026-12-05T03:10:00")
    assert [x["Name"] for x in clients("scheduler").list_schedules()["Schedules"]][0] == "a-late"
    schedule(clients, "m-later-still", "2026-12-05T04:00:00")  # not due at 03:30
    fired = fire_due(clients, NOW)
    assert [f.name for f in fired] == ["z-early", "a-late"]
    assert started_names(clients) == ["sched-z-early", "sched-a-late"]
    assert [s["Name"] for s in clients("scheduler").list_schedules()["Schedules"]] == ["m-later-still"]


def test_each_schedule_reports_what_it_recorded_not_that_it_was_started(clients: Clients) -> None:
    """kubestep's UpdateCluster records the schedule's outcome in its first steps; the tick
    says that, after waiting for it, before the next schedule fires."""
    schedule(clients, "early", "2026-12-05T03:00:00")
    schedule(clients, "late", "2026-12-05T03:10:00")
    records: dict[str, str] = {}
    asked: list[str] = []

    def outcome_of(name: str) -> str | None:
        asked.append(name)
        if name not in records:  # the execution "records" on the second look
            records[name] = "started" if name == "early" else "skipped: cluster 'prod' is locked by sched-early"
            return None
        return records[name]

    fired = fire_due(clients, NOW, outcome_of=outcome_of)
    assert [(f.name, f.invocation, f.outcome) for f in fired] == [
        ("early", "started", "started"),
        ("late", "started", "skipped: cluster 'prod' is locked by sched-early"),
    ]
    assert asked.index("late") > max(i for i, n in enumerate(asked) if n == "early"), "one after the other"
    assert fire_due(clients, NOW, outcome_of=outcome_of) == []


def test_a_schedule_nobody_records_keeps_its_invocation_result(clients: Clients) -> None:
    schedule(clients, "foreign", "2026-12-05T03:00:00")
    (fired,) = fire_due(clients, NOW, outcome_of=lambda name: "")
    assert fired.outcome == "started" == fired.invocation


def test_a_schedule_gone_between_list_and_get_is_skipped_quietly(
    clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    """The runtime's clock and `local tick` fire the same schedules: one deletes a schedule
    (ActionAfterCompletion DELETE) after the other listed it. That was a GetSchedule traceback
    in runtime.log."""
    schedule(clients, "raced", "2026-12-05T03:00:00")
    schedule(clients, "kept", "2026-12-05T03:05:00")
    real = clients("scheduler")

    class Racing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def list_schedules(self, **kwargs: Any) -> Any:
            listed = real.list_schedules(**kwargs)
            real.delete_schedule(Name="raced")  # the other firer, right after this list
            return listed

    def client(service: str) -> Any:
        return Racing() if service == "scheduler" else clients(service)

    with caplog.at_level(logging.INFO, logger="kubestep_local.scheduler"):
        fired = fire_due(client, NOW)
    assert [f.name for f in fired] == ["kept"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
