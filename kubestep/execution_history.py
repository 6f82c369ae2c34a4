"""An execution's progress, step by step, from its Step Functions history (slow provisioning is
bearable when it says what it waits for). The API serves it (`GET /v1/operations/{id}/steps`) and the CLI
prints it while waiting; the summary of a history only grows as the history grows, so a
client asks for the items after the ones it has shown."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

PENDING = "ResourcePending"
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


def _entered(event: dict, by_id: dict[int, dict], name: str | None = None) -> dict | None:
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


def _iterations(events: list[dict]) -> dict[int, dict[str, Any] | None]:
    """Event id -> the innermost Map iteration it runs in (`{map, iteration, item}`), or None.

    Every event follows the one its `previousEventId` names: an iteration begins at its
    MapIterationStarted and ends at its MapIteration{Succeeded,Failed,Aborted}, so one pass in
    id order places each event in its iteration (a replica, a node pool, a batch)."""
    frames: dict[int, tuple[dict[str, Any], ...]] = {}
    # Where each Map state runs (by name, the latest entered): an iteration's start and end and
    # the Map's exit go back there, because their `previousEventId` may name the previous
    # iteration's last event (moto does, for one iteration after another).
    maps: dict[str, tuple[dict[str, Any], ...]] = {}
    for event in events:
        if "id" not in event:
            continue
        outer = frames.get(event.get("previousEventId") or 0, ())
        kind = event["type"]
        if kind == "MapStateEntered":
            maps[event["stateEnteredEventDetails"]["name"]] = outer
            frames[event["id"]] = outer
        elif kind == "MapIterationStarted":
            details = event.get("mapIterationStartedEventDetails") or {}
            iteration = {"map": details.get("name"), "iteration": details.get("index"), "item": None}
            frames[event["id"]] = (*maps.get(details.get("name"), outer[:-1]), iteration)
        elif kind in ITERATION_ENDED:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            frames[event["id"]] = maps.get(details.get("name"), outer[:-1])
        elif kind == "MapStateExited":
            frames[event["id"]] = maps.get(event["stateExitedEventDetails"]["name"], outer)
        else:
            frames[event["id"]] = outer
            if kind.endswith("StateEntered") and outer and outer[-1]["item"] is None:
                outer[-1]["item"] = _item_of(event) or ""
    return {event_id: (stack[-1] if stack else None) for event_id, stack in frames.items()}


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
        entered = _entered(event, by_id)
        return entered["stateEnteredEventDetails"]["name"] if entered else (latest[-1] if latest else None)

    for event in events:
        kind, stamp = event["type"], event["timestamp"]
        if kind.endswith("StateEntered"):
            last_entered[event["stateEnteredEventDetails"]["name"]] = stamp
            latest.append(event["stateEnteredEventDetails"]["name"])
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            entered = _entered(event, by_id, name)
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
            if reason.startswith(PENDING):
                if reason not in waits:
                    waits.add(reason)
                    add("wait", stamp, step_of(event), reason.removeprefix(f"{PENDING}: "), None, event.get("id", 0))
            else:
                add("error", stamp, step_of(event), reason, None, event.get("id", 0))
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            reason = failure_reason(event) or kind.removeprefix("Execution").upper()
            # A run that fails where a step failed (no Catch: LockHeld in AcquireLock) repeats
            # that step's error: it is listed once, with its step.
            if not (items and items[-1]["type"] == "error" and items[-1]["message"] == reason):
                add("error", stamp, None, reason)
    return items


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events
