"""`kubestep get TYPE [NAME...]` (and `kubestep events CLUSTER`): kubectl's get, with AGE
columns, `-o table|wide|name|json|yaml`, `--query`, `--no-headers` and `-w/--watch`."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import click
from click.shell_completion import CompletionItem

from kubestep.cli import kinds, target
from kubestep.cli.base import Command
from kubestep.cli.errors import InputError
from kubestep.cli.options import DURATION, output_options
from kubestep.cli.output import dumps, emit, print_rows, rows_of


def complete_kind(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(k.plural) for k in kinds.KINDS if k.plural.startswith(incomplete)] + [
        CompletionItem(k.singular) for k in kinds.KINDS if k.singular.startswith(incomplete)
    ]


def complete_name(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        kind = kinds.kind_named(ctx.params.get("kind") or "")
        return [CompletionItem(n) for n in kinds.completions(ctx, kind, ctx.params.get("cluster"), incomplete)]
    except Exception:
        return []


def complete_cluster(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        return [CompletionItem(n) for n in kinds.cluster_names(ctx, incomplete)]
    except Exception:
        return []


def cluster_option(help_text: str = "The cluster (for node pools, events and operations).") -> Any:
    return click.option("-c", "--cluster", metavar="CLUSTER", help=help_text, shell_complete=complete_cluster)


def fetch(ctx: click.Context, kind: kinds.Kind, names: tuple[str, ...], cluster: str | None) -> Any:
    """One object (one NAME), a list (several NAMEs), or the kind's list."""
    refs = kinds.refs(kind, names, cluster)
    client = target.client(ctx)
    if refs and kind.list_named is not None:
        return [item for ref in refs for item in kind.list_named(client, ref)]
    if refs:
        if kind.get_item is None:
            raise InputError(f"{kind.plural} have no names to get; list them (kubestep get {kind.plural} -c CLUSTER)")
        items = [kind.get_item(client, ref) for ref in refs]
        return items[0] if len(items) == 1 else items
    if kind.needs_cluster_to_list and not cluster:
        raise InputError(f"{kind.plural} belong to a cluster: kubestep get {kind.plural} -c CLUSTER")
    return kind.list_items(client, cluster)


def show(
    ctx: click.Context,
    kind: kinds.Kind,
    names: tuple[str, ...],
    cluster: str | None,
    fmt: str,
    query: str | None,
    no_headers: bool,
    watch: bool,
    interval: float,
    timeout: float | None,
) -> None:
    data = fetch(ctx, kind, names, cluster)
    explicit = ctx.get_parameter_source("fmt") != click.core.ParameterSource.DEFAULT
    emit(
        data,
        fmt,
        columns=kind.columns,
        name=kind.name_of,
        query_expression=query,
        headers=not no_headers,
        explicit_format=explicit,
    )
    if kind.warnings is not None and not names:
        for line in kind.warnings(target.client(ctx)):
            click.echo(f"warning: {line}", err=True)
    if watch:
        if query:
            raise InputError("--watch cannot be combined with --query")
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a watch; it is not an error
            _watch(ctx, kind, names, cluster, fmt, data, interval, timeout)


def _watch(
    ctx: click.Context,
    kind: kinds.Kind,
    names: tuple[str, ...],
    cluster: str | None,
    fmt: str,
    data: Any,
    interval: float,
    timeout: float | None,
) -> None:
    """Print what changes, as kubectl -w does: a row (or object) each time it differs."""

    def as_list(value: Any) -> list[dict]:
        return value if isinstance(value, list) else [value]

    wide = fmt == "wide"
    headers, rows = rows_of(as_list(data), kind.columns, wide=wide)
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    # A change is a change of the object (not of its AGE column, which ticks on its own).
    last = {kind.key_of(item): item for item in as_list(data)}
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
        for item in as_list(fetch(ctx, kind, names, cluster)):
            key = kind.key_of(item)
            if last.get(key) == item:
                continue
            last[key] = item
            if fmt in ("json", "yaml", "name"):
                click.echo(kind.name_of(item) if fmt == "name" else dumps(item, fmt), nl=fmt != "yaml")
            else:
                _, [row] = rows_of([item], kind.columns, wide=wide)
                print_rows(None, [row], widths)


def get_options(f: Any) -> Any:
    f = click.option(
        "--timeout",
        type=DURATION,
        default=None,
        help="With --watch: stop watching after this long (default: until Ctrl-C).",
    )(f)
    f = click.option(
        "--interval", type=DURATION, default="2s", show_default=True, help="With --watch: how often to look."
    )(f)
    f = click.option("-w", "--watch", is_flag=True, help="After listing, print each change as it happens.")(f)
    return output_options()(f)


@click.command(cls=Command, short_help="List resources, or show the ones named.")
@click.argument("kind", metavar="TYPE", shell_complete=complete_kind)
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=complete_name)
@cluster_option()
@click.option(
    "--all-incarnations",
    is_flag=True,
    help="backups: also those of deleted clusters of the same name (each row says its cluster incarnation).",
)
@get_options
@click.pass_context
def get(
    ctx: click.Context,
    kind: str,
    names: tuple[str, ...],
    cluster: str | None,
    all_incarnations: bool,
    fmt: str,
    query: str | None,
    no_headers: bool,
    watch: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """List resources, or show the ones named. TYPE has singular, plural and short names:
    clusters (cluster, cl), nodepools (nodepool, np), operations (operation, op), events (event,
    ev), versions (version), schedules (schedule, sched). `get clusters`: NAME, PHASE, VERSION,
    REPLICAS ready/total, NODEPOOLS, AGE (-o wide adds ENDPOINT, UID, OPERATION). Node pools are
    named CLUSTER/POOL, or POOL with -c CLUSTER; `get nodepools` without -c lists every cluster's.
    Events need -c CLUSTER (a node pool's: `get events POOL -c CLUSTER`); `get operations -c
    CLUSTER` filters (a cluster's are kept 90 days, also after it is deleted). `get versions`: the
    Kubernetes versions kubestep installs, newest first, with the channels each is the default of,
    the minor's end of life and whether it is supported (warnings on stderr for minors at or near
    their end of life). `get schedules [-c CLUSTER]`: one-off upgrades (ID, CLUSTER, VERSION, AT,
    STATE, OUTCOME). `get backups CLUSTER`: its etcd backups (-o wide adds SHA256, UID, LOCATION);
    they outlive the cluster: once it is deleted they are listed under its name, and while a new
    cluster of the name exists, --all-incarnations adds the deleted ones' (CLUSTER says which
    incarnation). -o json|yaml is the API's representation; --query applies a JMESPath
    expression to it (printed as JSON, or -o yaml, or tab-separated with an explicit -o text);
    -w prints each change after the list.

    \b
    Examples:
      kubestep get clusters
      kubestep get cluster prod -o yaml
      kubestep get nodepools -c prod -o wide
      kubestep get nodepool prod/general
      kubestep get operations -c prod --watch
      kubestep get clusters --query "[?status.phase=='RUNNING'].metadata.name"
    """
    resource = kinds.kind_named(kind)
    if all_incarnations:
        if resource.singular != "backup":
            raise InputError("--all-incarnations: only backups outlive their cluster (kubestep get backups CLUSTER)")
        resource = kinds.with_all_incarnations(resource)
    show(ctx, resource, names, cluster, fmt, query, no_headers, watch, interval, timeout)


@click.command(cls=Command, short_help="A cluster's or node pool's events (also after it is deleted).")
@click.argument("cluster", metavar="CLUSTER[/POOL]", shell_complete=complete_cluster)
@get_options
@click.pass_context
def events(
    ctx: click.Context,
    cluster: str,
    fmt: str,
    query: str | None,
    no_headers: bool,
    watch: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """A cluster's events (they outlive the cluster); same as `get events -c CLUSTER`. CLUSTER/POOL:
    the node pool's events only (`get events POOL -c CLUSTER`).

    \b
    Examples:
      kubestep events prod
      kubestep events prod/general -w
    """
    if "/" in cluster:
        show(ctx, kinds.kind_named("events"), (cluster,), None, fmt, query, no_headers, watch, interval, timeout)
        return
    show(ctx, kinds.kind_named("events"), (), cluster, fmt, query, no_headers, watch, interval, timeout)
