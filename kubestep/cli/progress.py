"""Live, step-by-step progress of an execution, read from its history (ANCHORS pain point 6:
slow, opaque provisioning). Works against AWS and the local runtime alike."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def _reason(event: dict) -> str | None:
    """The message of a pending or failed task, if the event carries one."""
    for key in ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails", "executionFailedEventDetails"):
        details = event.get(key)
        if details:
            cause = details.get("cause") or ""
            with contextlib.suppress(ValueError, AttributeError):
                cause = json.loads(cause).get("errorMessage", cause)
            return f"{details.get('error')}: {cause}"
    return None


def follow(
    sfn: Any,
    execution_arn: str,
    *,
    echo: Callable[[str], None] = lambda line: click.echo(line, err=True),
    poll: float = 0.25,
    timeout: float = 3600.0,
) -> dict:
    """Print each state as it finishes, and what pending steps wait for; return DescribeExecution."""
    start = time.monotonic()
    seen = 0
    waits_seen: set[str] = set()
    entered: dict[str, datetime] = {}
    while True:
        events: list[dict] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events += page["events"]
        for event in events[seen:]:
            kind = event["type"]
            stamp = event["timestamp"]
            if kind.endswith("StateEntered"):
                entered[event["stateEnteredEventDetails"]["name"]] = stamp
            elif kind.endswith("StateExited"):
                name = event["stateExitedEventDetails"]["name"]
                took = (stamp - entered.get(name, stamp)).total_seconds()
                echo(f"  [{time.monotonic() - start:7.1f}s] done  {name} ({took:.1f}s)")
            elif kind in ("TaskFailed", "LambdaFunctionFailed"):
                reason = _reason(event)
                if reason and reason.startswith("ResourcePending"):
                    if reason not in waits_seen:  # each distinct wait once, not every retry
                        echo(f"  [{time.monotonic() - start:7.1f}s] wait  {reason.removeprefix('ResourcePending: ')}")
                        waits_seen.add(reason)
                elif reason and not reason.startswith("ResourcePending"):
                    echo(f"  [{time.monotonic() - start:7.1f}s] error {reason}")
        seen = len(events)
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] in TERMINAL:
            return description
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{execution_arn} still running after {timeout:.0f}s")
        time.sleep(poll)
