"""An execution's progress, step by step, from its Step Functions history (slow provisioning is
bearable when it says what it waits for). The API serves it (`GET /v1/operations/{id}/steps`) and the CLI
prints it while waiting; the summary of a history only grows as the history grows, so a
client asks for the items after the ones it has shown."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A step's errors that say "not ready yet" (the state machine retries them), not a failure.
PENDING = ("ResourceSettling", "ResourcePending")
FAILED_EVENTS = ("TaskFailed", "LambdaFunctionFailed")
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def failure_reason(event: dict) -> str | None:
    """`Error: message` of a failed task, or of the execution, if the event carries one."""
    for key in (
        "taskFailedEventDetails",
        "lambdaFunctionFailedEventDetails",
        "executionFailedEventDetails",
        "executionAbortedEventDetails",
        "executionTimedOutEventDetails",
    ):
        details = event.get(key)
        if details:
            cause = details.get("cause") or ""
            with contextlib.suppress(ValueError, AttributeError):
                cause = json.loads(cause).get("errorMessage", cause)
            error = details.get("error") or ""
            return f"{error}: {cause}" if cause else error
    return None


def entered_state(event: dict, by_id: dict[int, dict], name: str | None = None) -> dict | None:
    """The StateEntered event this event belongs to, by its `previousEventId` chain (on AWS the
    chain stays inside one Map iteration, so parallel replicas are told apart)."""
    current = by_id.get(event.get("previousEventId") or -1)
    for _ in range(200):
        if current is None:
            return None
        if current["type"].endswith("StateEntered") and (
            name is None or current["stateEnteredEventDetails"]["name"] == name
        ):
            return current
        current = by_id.get(current.get("previousEventId") or -1)
    return None


ITERATION_ENDED = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
# Keys every iteration's input carries (the workflows' base payload): not what it works on.
_COMMON_INPUT_KEYS = frozenset({"clusterName", "uid", "operationId", "rollbackOnFailure"})


def _item_of(entered: dict) -> str | None:
    """What a Map iteration works on, from the input of its first state: `replica 0`,
    `nodePool general` (the item the Map's selector placed beside the common keys)."""
    details = entered.get("stateEnteredEventDetails") or {}
    try:
        payload = json.loads(details.get("input") or "")
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    for key, value in payload.items():
        if key not in _COMMON_INPUT_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
            return f"{key} {value}"[:80]
    return None


@dataclass
class _Iteration:
    """One Map iteration as the history tells it: where it began, what it works on, how it ended."""

    map: str | None
    index: int | None
    item: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    state: str = "running"  # succeeded, failed or aborted once its end event is in
    # The iteration of an outer Map this one's Map runs in (a batch of a node pool's roll).
    outer: _Iteration | None = None

    def frame(self) -> dict[str, Any]:
        return {"map": self.map, "iteration": self.index, "item": self.item}


@dataclass
class _MapRun:
    """One run of a Map state (a Map inside an iteration runs once per outer iteration)."""

    map: str
    length: int | None
    outer: _Iteration | None
    iterations: list[_Iteration] = field(default_factory=list)


@dataclass
class _Walk:
    """One pass over a history: each event's innermost Map iteration, every iteration, and every
    run of a Map state with its number of items."""

    frames: dict[int, _Iteration | None] = field(default_factory=dict)
    iterations: list[_Iteration] = field(default_factory=list)
    runs: list[_MapRun] = field(default_factory=list)


def _walk(events: list[dict]) -> _Walk:
    """Every event follows the one its `previousEventId` names: an iteration begins at its
    MapIterationStarted and ends at its MapIteration{Succeeded,Failed,Aborted}, so one pass in
    id order places each event in its iteration (a replica, a node pool, a batch)."""
    walk = _Walk()
    frames: dict[int, tuple[_Iteration, ...]] = {}
    # Where each Map state runs (by name, the latest entered): an iteration's start and end and
    # the Map's exit go back there, because their `previousEventId` may name the previous
    # iteration's last event (moto does, for one iteration after another).
    maps: dict[str, tuple[_Iteration, ...]] = {}
    latest_run: dict[str, _MapRun] = {}
    entered: dict[int, str] = {}
    running: dict[tuple[str | None, int | None], _Iteration] = {}
    for event in events:
        if "id" not in event:
            continue
        outer = frames.get(event.get("previousEventId") or 0, ())
        kind = event["type"]
        if kind == "MapStateEntered":
            name = event["stateEnteredEventDetails"]["name"]
            entered[event["id"]] = name
            maps[name] = outer
            frames[event["id"]] = outer
        elif kind == "MapStateStarted":
            details = event.get("mapStateStartedEventDetails") or {}
            name = entered.get(event.get("previousEventId") or 0)
            if name is not None:
                length = details.get("length")
                run = _MapRun(name, length if isinstance(length, int) else None, outer[-1] if outer else None)
                walk.runs.append(run)
                latest_run[name] = run
            frames[event["id"]] = outer
        elif kind == "MapIterationStarted":
            details = event.get("mapIterationStartedEventDetails") or {}
            iteration = _Iteration(details.get("name"), details.get("index"), started=event.get("timestamp"))
            walk.iterations.append(iteration)
            if iteration.map in latest_run:
                latest_run[iteration.map].iterations.append(iteration)
                iteration.outer = latest_run[iteration.map].outer
            running[(iteration.map, iteration.index)] = iteration
            frames[event["id"]] = (*maps.get(details.get("name"), outer[:-1]), iteration)
        elif kind in ITERATION_ENDED:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            key = (details.get("name"), details.get("index"))
            # The iteration whose last event this one follows; by name and index otherwise.
            ended = outer[-1] if outer and (outer[-1].map, outer[-1].index) == key else running.get(key)
            if ended is not None:
                if running.get(key) is ended:
                    del running[key]
                ended.ended = event.get("timestamp")
                ended.state = kind.removeprefix("MapIteration").lower()
            frames[event["id"]] = maps.get(details.get("name"), outer[:-1])
        elif kind == "MapStateExited":
            frames[event["id"]] = maps.get(event["stateExitedEventDetails"]["name"], outer)
        else:
            frames[event["id"]] = outer
            if kind.endswith("StateEntered") and outer and outer[-1].item is None:
                outer[-1].item = _item_of(event) or ""
    walk.frames = {event_id: (stack[-1] if stack else None) for event_id, stack in frames.items()}
    return walk


def _iterations(events: list[dict]) -> dict[int, dict[str, Any] | None]:
    """Event id -> the innermost Map iteration it runs in (`{map, iteration, item}`), or None."""
    return {event_id: (it.frame() if it else None) for event_id, it in _walk(events).frames.items()}


def summarize(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per finished state (`done`), per distinct wait of a polling step (`wait`:
    what a `ResourcePending` retry waits for, once, not at every retry) and per error. An item
    of a state inside a Map iteration names the Map, the iteration's index and what it works on
    (`map`, `iteration`, `item`: the innermost iteration), so per-replica and per-batch
    progress can be told apart."""
    events = list(events)
    by_id = {e["id"]: e for e in events if "id" in e}
    frames = _iterations(events)
    items: list[dict[str, Any]] = []
    last_entered: dict[str, datetime] = {}
    waits: set[str] = set()
    start: datetime | None = events[0]["timestamp"] if events else None

    def add(
        kind: str, stamp: datetime, step: str | None, message: str, seconds: float | None = None, event_id: int = 0
    ) -> None:
        inner = frames.get(event_id) or {}
        items.append(
            {
                "index": len(items) + 1,
                "type": kind,
                "step": step,
                "message": message,
                "at": _iso(stamp),
                "elapsedSeconds": round((stamp - (start or stamp)).total_seconds(), 3),
                "seconds": None if seconds is None else round(seconds, 3),
                "map": inner.get("map"),
                "iteration": inner.get("iteration"),
                "item": inner.get("item") or None,
            }
        )

    latest: list[str] = []

    def step_of(event: dict) -> str | None:
        entered = entered_state(event, by_id)
        return entered["stateEnteredEventDetails"]["name"] if entered else (latest[-1] if latest else None)

    for event in events:
        kind, stamp = event["type"], event["timestamp"]
        if kind.endswith("StateEntered"):
            last_entered[event["stateEnteredEventDetails"]["name"]] = stamp
            latest.append(event["stateEnteredEventDetails"]["name"])
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            entered = entered_state(event, by_id, name)
            began = entered["timestamp"] if entered else last_entered.get(name, stamp)
            took = (stamp - began).total_seconds()
            inner = frames.get(event.get("id", 0)) or {}
            # The iteration's item in the line, so a roll reads replica by replica, pool by pool.
            label = f" [{inner['item']}]" if inner.get("item") else ""
            add("done", stamp, name, f"{name}{label} ({took:.1f}s)", took, event.get("id", 0))
        elif kind in FAILED_EVENTS:
            reason = failure_reason(event)
            if not reason:
                continue
            pending = next((p for p in PENDING if reason.startswith(p)), None)
            if pending:
                said = reason.removeprefix(f"{pending}: ")
                if said not in waits:
                    waits.add(said)
                    add("wait", stamp, step_of(event), said, None, event.get("id", 0))
            else:
                add("error", stamp, step_of(event), reason, None, event.get("id", 0))
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            reason = failure_reason(event) or kind.removeprefix("Execution").upper()
            # A run that fails where a step failed (no Catch: LockHeld in AcquireLock) repeats
            # that step's error: it is listed once, with its step.
            if not (items and items[-1]["type"] == "error" and items[-1]["message"] == reason):
                add("error", stamp, None, reason)
    return items


# States that only hold other states: their time is their children's.
_CONTAINER_STATES = ("MapStateEntered", "ParallelStateEntered")


def progress(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Where the execution is now, recomputed from the whole history on every call (unlike
    `summarize`'s items, which only grow): each Map state's item count, each Map iteration with
    its state (`running`, `succeeded`, `failed`, `aborted`), start and end, and the steps running
    now (entered, not yet exited) with the iteration each runs in. A finished iteration reads
    final at once, while its siblings and the operation still run."""
    events = list(events)
    if not events:
        return {
            "startedAt": None,
            "maps": [],
            "parallels": [],
            "iterations": [],
            "activeSteps": [],
            "historyEnded": True,
        }
    start: datetime = events[0]["timestamp"]
    walk = _walk(events)
    by_id = {e["id"]: e for e in events if "id" in e}
    ended = events[-1]["type"] in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")

    def elapsed(moment: datetime | None) -> float | None:
        return None if moment is None else round((moment - start).total_seconds(), 3)

    open_states: dict[int, dict] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered") and kind not in _CONTAINER_STATES and "id" in event:
            open_states[event["id"]] = event
        elif kind.endswith("StateExited"):
            entered = entered_state(event, by_id, event["stateExitedEventDetails"]["name"])
            if entered is not None:
                open_states.pop(entered["id"], None)
    active = []
    for event in [] if ended else open_states.values():
        iteration = walk.frames.get(event["id"])
        # A step inside an iteration that has ended (aborted with its Map) runs no more.
        if iteration is not None and iteration.state != "running":
            continue
        active.append(
            {
                "step": event["stateEnteredEventDetails"]["name"],
                "since": _iso(event["timestamp"]),
                "sinceSeconds": elapsed(event["timestamp"]),
                **(iteration.frame() if iteration else {"map": None, "iteration": None, "item": None}),
            }
        )

    def final(it: _Iteration) -> str:
        # An execution that ended leaves no iteration running (StopExecution, a timeout).
        return "aborted" if ended and it.state == "running" else it.state

    iterations = [
        {
            **it.frame(),
            "item": it.item or None,
            "within": it.outer.item or None if it.outer else None,
            "state": final(it),
            "startedAt": _iso(it.started) if it.started else None,
            "endedAt": _iso(it.ended) if it.ended else None,
            "startedSeconds": elapsed(it.started),
            "endedSeconds": elapsed(it.ended),
        }
        for it in walk.iterations
    ]
    maps = [
        {
            "map": run.map,
            # What the run works on when the Map itself runs inside another Map's iteration.
            "within": run.outer.item or None if run.outer else None,
            "length": run.length,
            "started": len(run.iterations),
            "succeeded": sum(final(it) == "succeeded" for it in run.iterations),
            "failed": sum(final(it) in ("failed", "aborted") for it in run.iterations),
        }
        for run in walk.runs
    ]
    # Parallel states hold their branches' steps, as a Map holds its iterations'.
    parallels = sorted({e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "ParallelStateEntered"})
    return {
        "startedAt": _iso(start),
        "maps": maps,
        "parallels": parallels,
        "iterations": iterations,
        "activeSteps": active,
        # The operation's record may say SUCCEEDED (its last task writes it) before the history
        # has that task's exit: a reader stops polling only once the history has ended too.
        "historyEnded": ended,
    }


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events
