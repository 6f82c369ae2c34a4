"""An execution's modelled AWS time from its history (kubestep_local/modelled_time.py): waits
stretched back by the time scale per branch, the slowest branch setting a fork's time.

The histories are synthetic but shaped as GetExecutionHistory returns them (event ids,
`previousEventId` chains, ParallelStateStarted before each branch's first state, Map iterations
between MapIterationStarted and MapIterationSucceeded):
https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html"""

from __future__ import annotations

from typing import Any

import pytest

from kubestep_local.modelled_time import modelled_time


class History:
    """Events appended one by one; each names the event it follows."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at: float, after: int | None = None, **details: Any) -> int:
        event_id = len(self.events) + 1
        event: dict[str, Any] = {"id": event_id, "type": kind, "timestamp": at, "previousEventId": after or 0}
        if "name" in details and kind.endswith("StateEntered"):
            event["stateEnteredEventDetails"] = {"name": details["name"]}
        elif "name" in details and kind.endswith("StateExited"):
            event["stateExitedEventDetails"] = {"name": details["name"]}
        elif kind.startswith("MapIteration"):
            key = kind[0].lower() + kind[1:] + "EventDetails"
            event[key] = {"name": details["name"], "index": details["index"]}
        elif kind == "TaskFailed":
            event["taskFailedEventDetails"] = {"error": "ResourcePending"}
        self.events.append(event)
        return event_id

    def task(self, name: str, after: int, at: float, attempts: list[tuple[float, float]]) -> int:
        """A Task state entered at `at`, its attempts (scheduled, ended): all but the last failed."""
        last = self.add("TaskStateEntered", at, after, name=name)
        for number, (scheduled, ended) in enumerate(attempts, start=1):
            last = self.add("TaskScheduled", scheduled, last)
            last = self.add("TaskFailed" if number < len(attempts) else "TaskSucceeded", ended, last)
        return self.add("TaskStateExited", attempts[-1][1], last, name=name)


def two_branches() -> History:
    """From 0 to 10 s at scale 0.01: one branch polls a resource (its first check fails at 1.1 s,
    its retry runs at 9 s), the other runs eight tasks back to back."""
    h = History()
    start = h.add("ExecutionStarted", 0.0)
    entered = h.add("ParallelStateEntered", 1.0, start, name="Both")
    started = h.add("ParallelStateStarted", 1.0, entered)
    waiting = h.task("CheckResource", started, 1.0, [(1.0, 1.1), (9.0, 9.1)])
    busy = started
    for n in range(8):
        busy = h.task(f"Work{n}", busy if n else started, 1.0 + n, [(1.0 + n, 2.0 + n)])
    h.add("ParallelStateSucceeded", 9.1, waiting)
    exited = h.add("ParallelStateExited", 9.1, waiting, name="Both")
    done = h.task("Finish", exited, 9.1, [(9.1, 10.0)])
    h.add("ExecutionSucceeded", 10.0, done)
    return h


def test_a_branch_waiting_while_another_works_counts_its_wait_stretched() -> None:
    # Counted for the whole execution, a wait while any task runs was taken for run time: the
    # busy branch covers 1-9 s, so the old reading was the 10 s the run took.
    result = modelled_time(two_branches().events, 0.01)
    # The waiting branch: its retry waited 1.1-9.0 s (7.9 s -> 790 s), its attempts 0.1 s each;
    # the fork adds nothing outside it; before it 1 s, after it 0.9 s.
    assert result["modelledSeconds"] == pytest.approx(1.0 + 0.1 + 790.0 + 0.1 + 0.9)
    assert result["realSeconds"] == pytest.approx(10.0)
    assert result["scaledWaitSeconds"] == pytest.approx(7.9)


def test_the_slowest_map_iteration_sets_the_forks_time() -> None:
    h = History()
    start = h.add("ExecutionStarted", 0.0)
    entered = h.add("MapStateEntered", 0.0, start, name="Each")
    started = h.add("MapStateStarted", 0.0, entered)
    ends = []
    # Iteration 0 waits 2 s real (200 s) from 0.5 s; iteration 1 waits 4 s (400 s) from 0.5 s.
    for index, retry_at in ((0, 2.5), (1, 4.5)):
        it = h.add("MapIterationStarted", 0.0, started, name="Each", index=index)
        last = h.task("Check", it, 0.0, [(0.0, 0.5), (retry_at, retry_at + 0.5)])
        ends.append(h.add("MapIterationSucceeded", retry_at + 0.5, last, name="Each", index=index))
    h.add("MapStateSucceeded", 5.0, ends[-1])
    exited = h.add("MapStateExited", 5.0, ends[-1], name="Each")
    h.add("ExecutionSucceeded", 5.0, exited)
    result = modelled_time(h.events, 0.01)
    assert result["modelledSeconds"] == pytest.approx(0.5 + 400.0 + 0.5)


def test_wait_states_stretch_and_tasks_run_as_they_ran() -> None:
    h = History()
    start = h.add("ExecutionStarted", 0.0)
    entered = h.add("WaitStateEntered", 0.0, start, name="Pause")
    exited = h.add("WaitStateExited", 0.5, entered, name="Pause")
    done = h.task("Work", exited, 0.5, [(0.5, 2.5)])
    h.add("ExecutionSucceeded", 2.5, done)
    assert modelled_time(h.events, 0.02)["modelledSeconds"] == pytest.approx(0.5 / 0.02 + 2.0)
    # A running execution: up to now.
    assert modelled_time(h.events[:2], 0.02, now=0.25)["modelledSeconds"] == pytest.approx(0.25)
    assert modelled_time([], 0.02)["modelledSeconds"] == 0.0
