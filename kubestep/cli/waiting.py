"""`--wait`: follow operations to their end through the API, printing each step as it finishes
(with the time since the execution started) and what pending steps wait for; at a terminal, a
live status line under those lines says what runs now (kubestep.cli.status_line)."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from kubestep.api.client import ACTIVE_STATUSES, ApiClient, ApiError
from kubestep.cli.errors import OperationFailed
from kubestep.cli.output import duration_text, parse_time
from kubestep.cli.progress import line, time_scale_note
from kubestep.cli.status_line import Progress, Status, progress_display

POLL_SECONDS = 1.0
AWS_POLL_SECONDS = 3.0


def _stderr(text: str) -> None:
    click.echo(text, err=True)


def _target(operation: dict) -> str:
    pool = operation.get("nodePool")
    return f"{operation.get('target')}/{pool}" if pool else str(operation.get("target") or "")


def _totals(client: ApiClient, operation: dict) -> dict[str, int]:
    """How many replicas and node pools the operation's cluster has (for "replica 2/3"); nothing
    when the cluster cannot be read (a delete that finished, an older API)."""
    if not operation.get("target") or operation.get("target") == "network":
        return {}
    try:
        status = client.get_cluster(operation["target"]).get("status") or {}
    except ApiError:
        return {}
    replicas = (status.get("controlPlane") or {}).get("replicas") or []
    pools = status.get("nodePools") or []
    return {key: count for key, count in (("replica", len(replicas)), ("nodePool", len(pools))) if count}


def wait_for(
    client: ApiClient,
    operation: dict,
    timeout: float,
    *,
    progress: bool = True,
    echo: Callable[[str], None] = _stderr,
    poll: float = POLL_SECONDS,
    live: bool | None = None,
) -> dict:
    """Poll the operation until it ends; print its steps; raise OperationFailed unless it
    SUCCEEDED (or when `timeout` passes: the operation itself goes on). `live`: the status line
    (default: at a terminal, unless asked otherwise)."""
    with progress_display(echo, live=live if progress else False) as shown:
        return _follow(client, operation, timeout, shown, progress, poll)


def _follow(client: ApiClient, operation: dict, timeout: float, shown: Progress, show_steps: bool, poll: float) -> dict:
    operation_id = operation["id"]
    deadline = time.monotonic() + timeout
    started = parse_time(operation.get("startedAt"))
    status = Status(
        kind=str(operation.get("kind") or "operation"),
        target=_target(operation),
        started=started.timestamp() if started else time.time(),
        totals=_totals(client, operation) if show_steps else {},
    )
    shown.show(status)
    seen = 0
    noted = False
    while True:
        current = client.operation(operation_id)
        if show_steps:
            try:
                steps = client.operation_steps(operation_id, seen)
            except ApiError:
                steps = None  # progress is a courtesy: an older API without the route still waits
            if steps is not None:
                scale = steps.get("timeScale") or 1
                note = time_scale_note(scale)
                if note and not noted:
                    shown.log(note)
                noted = True
                # Each poll reads the execution's history: on AWS (GetExecutionHistory is throttled
                # per account), every few seconds is plenty; the local runtime runs 1/scale faster.
                poll = max(poll, AWS_POLL_SECONDS) if scale >= 1 else poll
                for item in steps["items"]:
                    shown.log(line(item))
                    status.observe(item)
                shown.show(status)
                seen = steps.get("next", seen)
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
