"""`kubestep operations wait|cancel`: operations are long-running operations, one per workflow
run (id = execution name). They are read like everything else, kubectl's way: `kubestep get
operations`, `kubestep describe operation ID`; the group acts on them (gcloud's `operations
wait`/`cancel`). `operations list` and `operations get`, the earlier names of those two reads, are
hidden aliases that say what replaced them."""

from __future__ import annotations

import time

import click

from kubestep.api.client import ACTIVE_STATUSES
from kubestep.cli import kinds, target
from kubestep.cli.base import Group
from kubestep.cli.commands.describe import describe
from kubestep.cli.commands.get import cluster_option, get_options, show
from kubestep.cli.errors import OperationFailed
from kubestep.cli.options import output_options, timeout_option
from kubestep.cli.output import duration_text
from kubestep.cli.waiting import wait_for


@click.group(cls=Group, short_help="Follow or cancel an operation (read them with get and describe).")
def operations() -> None:
    """Follow or cancel an operation. To read operations: `kubestep get operations [-c CLUSTER]`,
    `kubestep describe operation ID`."""


def _deprecated(old: str, new: str) -> None:
    click.echo(f"note: `kubestep operations {old}` is deprecated and will be removed: use `kubestep {new}`", err=True)


@operations.command("list", hidden=True, short_help="Deprecated: kubestep get operations.")
@cluster_option("Only this cluster's operations (also after it was deleted).")
@get_options
@click.pass_context
def operations_list(
    ctx: click.Context,
    cluster: str | None,
    fmt: str,
    query: str | None,
    no_headers: bool,
    watch: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """Deprecated: `kubestep get operations` (newest first)."""
    _deprecated("list", "get operations")
    show(ctx, kinds.kind_named("operations"), (), cluster, fmt, query, no_headers, watch, interval, timeout)


@operations.command("get", hidden=True, short_help="Deprecated: kubestep describe operation ID.")
@click.argument("operation_id", metavar="ID")
@output_options()
@click.pass_context
def operations_get(ctx: click.Context, operation_id: str, fmt: str, query: str | None, no_headers: bool) -> None:
    """Deprecated: `kubestep describe operation ID` (the operation with its steps)."""
    _deprecated("get", "describe operation ID")
    ctx.invoke(
        describe, kind="operation", names=(operation_id,), cluster=None, fmt=fmt, query=query, no_headers=no_headers
    )


@operations.command("wait", short_help="Follow an operation to its end.")
@click.argument("operation_id", metavar="ID")
@timeout_option("1h")
@click.option("--quiet", is_flag=True, help="No step-by-step progress.")
@click.pass_context
def operations_wait(ctx: click.Context, operation_id: str, timeout: float, quiet: bool) -> None:
    """Follow an operation, step by step (a live status line under the steps at a terminal), to
    its end; exit 1 unless it SUCCEEDED."""
    client = target.client(ctx)
    result = wait_for(client, client.operation(operation_id), timeout, progress=not quiet)
    click.echo(f"operation {result['id']} {result['status']}")


@operations.command("cancel", short_help="Cancel a running operation.")
@click.argument("operation_id", metavar="ID")
@click.option("--dry-run", is_flag=True, help="Say what would be cancelled; cancel nothing.")
@click.option("--wait/--no-wait", default=False, help="Wait until the operation has ended ABORTED.")
@timeout_option("10m")
@click.pass_context
def operations_cancel(ctx: click.Context, operation_id: str, dry_run: bool, wait: bool, timeout: float) -> None:
    """Cancel a running operation. A create (cluster or node pool) stops at its next step,
    deletes what it had created and ends ABORTED, and the name is free again; any other
    operation's execution is stopped, its lock released, and it ends ABORTED."""
    client = target.client(ctx)
    if dry_run:
        operation = client.operation(operation_id)
        ended = f"has already ended {operation['status']}"
        state = "would be cancelled" if operation["status"] in ACTIVE_STATUSES else ended
        click.echo(f"operation/{operation_id} {state} (dry run)")
        return
    operation = client.cancel_operation(operation_id)
    click.echo(f"operation/{operation_id} cancelling ({operation['kind']} of {operation.get('target')})")
    if wait:
        deadline = time.monotonic() + timeout
        while operation["status"] in ACTIVE_STATUSES:
            if time.monotonic() > deadline:
                raise OperationFailed(f"operation {operation_id} still RUNNING after {duration_text(timeout)}")
            time.sleep(1.0)
            operation = client.operation(operation_id)
        click.echo(f"operation/{operation_id} {operation['status']}")
