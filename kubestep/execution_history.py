"""An execution's progress, step by step, from its Step Functions history (ANCHORS pain point
6: slow, opaque provisioning). The API serves it (`GET /v1/operations/{id}/steps`) and the CLI
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


# What a Map iteration is about, from its item (the Map's ItemSelector): shown with each step of
# the iteration, so a roll reads replica by replica and pool by pool.
ITEM_KEYS = (("replica", "replica"), ("nodePool", "node pool"), ("zone", "zone"))


def item_label(entered: dict | None) -> str:
    """` [replica 1]` for a state entered inside a Map iteration over replicas; else empty."""
    if not entered:
        return ""
    try:
        data = json.loads(entered["stateEnteredEventDetails"].get("input") or "{}")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    for key, label in ITEM_KEYS:
        value = data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return f" [{label} {value}]"
    return ""


def summarize(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per finished state (`done`), per distinct wait of a polling step (`wait`:
    what a `ResourcePending` retry waits for, once, not at every retry) and per error."""
    events = list(events)
    by_id = {e["id"]: e for e in events if "id" in e}
    items: list[dict[str, Any]] = []
    last_entered: dict[str, datetime] = {}
    waits: set[str] = set()
    start: datetime | None = events[0]["timestamp"] if events else None

    def add(kind: str, stamp: datetime, step: str | None, message: str, seconds: float | None = None) -> None:
        items.append(
            {
                "index": len(items) + 1,
                "type": kind,
                "step": step,
                "message": message,
                "at": _iso(stamp),
                "elapsedSeconds": round((stamp - (start or stamp)).total_seconds(), 3),
                "seconds": None if seconds is None else round(seconds, 3),
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
            add("done", stamp, name, f"{name}{item_label(entered)} ({took:.1f}s)", took)
        elif kind in FAILED_EVENTS:
            reason = failure_reason(event)
            if not reason:
                continue
            if reason.startswith(PENDING):
                if reason not in waits:
                    waits.add(reason)
                    add("wait", stamp, step_of(event), reason.removeprefix(f"{PENDING}: "))
            else:
                add("error", stamp, step_of(event), reason)
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            add("error", stamp, None, failure_reason(event) or kind.removeprefix("Execution").upper())
    return items


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events
