"""`--wait`: follow operations to their end through the API, printing each step as it
finishes (with the time since the execution started) and what pending steps wait for."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from kubestep.api.client import ACTIVE_STATUSES, ApiClient, ApiError
from kubestep.cli.errors import OperationFailed
from kubestep.cli.output import duration_text
from kubestep.cli.progress import line, time_scale_note

POLL_SECONDS = 1.0
AWS_POLL_SECONDS = 3.0


def _stderr(text: str) -> None:
    click.echo(text, err=True)


def wait_for(
    client: ApiClient,
    operation: dict,
    timeout: float,
    *,
    progress: bool = True,
    echo: Callable[[str], None] = _stderr,
    poll: float = POLL_SECONDS,
) -> dict:
    """Poll the operation until it ends; print its steps; raise OperationFailed unless it
    SUCCEEDED (or when `timeout` passes: the operation itself goes on)."""
    operation_id = operation["id"]
    deadline = time.monotonic() + timeout
    shown = 0
    noted = False
    while True:
        current = client.operation(operation_id)
        if progress:
            try:
                steps = client.operation_steps(operation_id, shown)
            except ApiError:
                steps = None  # progress is a courtesy: an older API without the route still waits
            if steps is not None:
                scale = steps.get("timeScale") or 1
                note = time_scale_note(scale)
                if note and not noted:
                    echo(note)
                noted = True
                # Each poll reads the execution's history: on AWS (GetExecutionHistory is throttled
                # per account), every few seconds is plenty; the local runtime runs 1/scale faster.
                poll = max(poll, AWS_POLL_SECONDS) if scale >= 1 else poll
                for item in steps["items"]:
                    echo(line(item))
                shown = steps.get("next", shown)
        if current["status"] not in ACTIVE_STATUSES:
            break
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"operation {operation_id} still RUNNING after {duration_text(timeout)}; it goes on "
                f"(kubestep operations wait {operation_id})"
            )
        time.sleep(max(0.05, min(poll, deadline - time.monotonic())))
    if current["status"] != "SUCCEEDED":
        reason = ": ".join(part for part in (current.get("error"), current.get("cause")) if part)
        raise OperationFailed(f"operation {operation_id} {current['status']}" + (f": {reason}" if reason else ""))
    return current
