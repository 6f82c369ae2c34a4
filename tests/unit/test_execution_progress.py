"""Where an execution is now, from its Step Functions history (`execution_history.progress`):
each Map run with its item count, every iteration's state — final as soon as its own end event
is in, while its siblings and the execution still run — and the steps running now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kubestep.execution_history import progress, summarize

START = datetime(2026, 1, 1, tzinfo=UTC)


class History:
    """A history as Step Functions writes it: ids in order, each event naming the one before."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at: float, previous: int | None = None, **details: Any) -> int:
        event_id = len(self.events) + 1
        event = {"id": event_id, "type": kind, "timestamp": START + timedelta(seconds=at)}
        event["previousEventId"] = previous if previous is not None else event_id - 1
        event.update(details)
        self.events.append(event)
        return event_id

    def entered(self, kind: str, name: str, at: float, previous: int | None = None, **payload: Any) -> int:
        details = {"name": name, "input": json.dumps({"clusterName": "c", **payload})}
        return self.add(f"{kind}StateEntered", at, previous, stateEnteredEventDetails=details)

    def exited(self, kind: str, name: str, at: float, previous: int | None = None) -> int:
        return self.add(f"{kind}StateExited", at, previous, stateExitedEventDetails={"name": name, "output": "{}"})


def _roll(done: int, *, ended: bool = False) -> list[dict[str, Any]]:
    """RollReplicas over three replicas, one at a time: `done` finished, the next one running."""
    h = History()
    h.add("ExecutionStarted", 0, 0)
    h.entered("Task", "Plan", 0.1)
    h.exited("Task", "Plan", 0.5)
    map_entered = h.entered("Map", "RollReplicas", 0.5)
    h.add("MapStateStarted", 0.5, map_entered, mapStateStartedEventDetails={"length": 3})
    previous = None
    for index in range(done + 1):
        at = 1 + index * 10
        details = {"name": "RollReplicas", "index": index}
        started = h.add("MapIterationStarted", at, previous, mapIterationStartedEventDetails=details)
        h.entered("Task", "ReplaceReplica", at + 1, started, replica=index)
        h.exited("Task", "ReplaceReplica", at + 2)
        h.entered("Task", "CheckReplicaHealth", at + 2, replica=index)
        if index < done:
            last = h.exited("Task", "CheckReplicaHealth", at + 9)
            h.add("MapIterationSucceeded", at + 9, last, mapIterationSucceededEventDetails=details)
            previous = last
    if ended:
        h.add("ExecutionAborted", 40, executionAbortedEventDetails={"error": "OperationCancelled"})
    return h.events


def test_an_iteration_is_final_as_soon_as_it_ends() -> None:
    now = progress(_roll(done=1))
    states = [(it["item"], it["state"]) for it in now["iterations"]]
    assert states == [("replica 0", "succeeded"), ("replica 1", "running")]
    first = now["iterations"][0]
    assert (first["startedSeconds"], first["endedSeconds"]) == (1.0, 10.0)
    assert now["iterations"][1]["endedAt"] is None
    assert now["maps"] == [
        {"map": "RollReplicas", "within": None, "length": 3, "started": 2, "succeeded": 1, "failed": 0}
    ]
    # Running now: replica 1's gate, entered at 13 s.
    assert now["activeSteps"] == [
        {
            "step": "CheckReplicaHealth",
            "since": "2026-01-01T00:00:13.000Z",
            "sinceSeconds": 13.0,
            "map": "RollReplicas",
            "iteration": 1,
            "item": "replica 1",
        }
    ]
    assert now["startedAt"] == "2026-01-01T00:00:00.000Z"
    # The step items say the same iteration, and only grow.
    items = summarize(_roll(done=1))
    assert [(i["step"], i["iteration"]) for i in items if i["map"]] == [
        ("ReplaceReplica", 0),
        ("CheckReplicaHealth", 0),
        ("ReplaceReplica", 1),
    ]


def test_an_execution_that_ended_leaves_nothing_running() -> None:
    now = progress(_roll(done=1, ended=True))
    assert [it["state"] for it in now["iterations"]] == ["succeeded", "aborted"]
    assert now["activeSteps"] == []
    assert now["maps"][0]["failed"] == 1


def test_no_history_no_progress() -> None:
    assert progress([]) == {
        "startedAt": None,
        "maps": [],
        "parallels": [],
        "iterations": [],
        "activeSteps": [],
        "historyEnded": True,
    }
