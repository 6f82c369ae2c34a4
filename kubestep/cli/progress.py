"""Live, step-by-step progress of an execution (ANCHORS pain point 6: slow, opaque
provisioning): read from the execution's history directly (`kubestep demo`, which owns the
emulator) or through the API (`--wait`, see `kubestep.cli.waiting`). Both print the same lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from kubestep.execution_history import TERMINAL, history, summarize

__all__ = ["TERMINAL", "follow", "line", "time_scale_note"]


def line(item: dict[str, Any]) -> str:
    """`  [  12.3s] done  EnsureLoadBalancer (1.2s)`: elapsed since the execution started."""
    return f"  [{item['elapsedSeconds']:7.1f}s] {item['type']:<5} {item['message']}"


def time_scale_note(scale: float) -> str | None:
    """At a time scale, waits and boots are compressed: say so once, so that a step taking
    0.4 s is not read as AWS speed (and a `ResourceTimeout` after a minute is understood)."""
    if not scale or scale == 1:
        return None
    return (
        f"  (local runtime at time scale {scale:g}: Step Functions waits, retries and instance boots run "
        f"{1 / scale:.0f}x faster than on AWS; times below are wall-clock)"
    )


def follow(
    sfn: Any,
    execution_arn: str,
    *,
    echo: Callable[[str], None] = lambda text: click.echo(text, err=True),
    poll: float = 0.25,
    timeout: float = 3600.0,
    kind: str = "",
    target: str = "",
    totals: dict[str, int] | None = None,
) -> dict:
    """Print each step as it finishes, and what pending steps wait for (under them, at a
    terminal, the live status line of `kubestep.cli.status_line`); return DescribeExecution."""
    from kubestep.cli.status_line import Status, progress_display

    start = time.monotonic()
    status = Status(kind=kind or "execution", target=target, started=time.time(), totals=dict(totals or {}))
    shown = 0
    with progress_display(echo) as display:
        display.show(status)
        while True:
            items = summarize(history(sfn, execution_arn))
            for item in items[shown:]:
                display.log(line(item))
                status.observe(item)
            display.show(status)
            shown = len(items)
            description = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] in TERMINAL:
                return description
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{execution_arn} still running after {timeout:.0f}s")
            time.sleep(poll)
