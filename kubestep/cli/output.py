"""Printing: tables for people, JSON/YAML (the API representation) for programs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kubestep.cli.manifests import dumps

# Wide enough for AWS ids when printing to a file or pipe (rich assumes 80 columns there).
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def emit(data: Any, fmt: str, table: Callable[[Any], Table]) -> None:
    if fmt == "table":
        console.print(table(data))
    else:
        click.echo(dumps(data, fmt))


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def cluster_table(clusters: list[dict]) -> Table:
    table = _table("NAME", "PHASE", "VERSION", "REPLICAS", "ENDPOINT", "UID")
    for c in clusters:
        status = c["status"]
        replicas = len((status.get("controlPlane") or {}).get("replicas") or [])
        table.add_row(
            c["metadata"]["name"],
            status.get("phase") or "",
            status.get("version") or "",
            str(replicas or "-"),
            status.get("endpoint") or "",
            status.get("uid") or "",
        )
    return table


def node_pool_table(pools: list[dict]) -> Table:
    table = _table("NAME", "PHASE", "VERSION", "MIN", "MAX", "INSTANCE TYPE", "ZONE", "ASG")
    for p in pools:
        spec, status = p["spec"], p["status"]
        table.add_row(
            p["metadata"]["name"],
            status.get("phase") or "",
            status.get("version") or "",
            str(spec["minNodeCount"]),
            str(spec["maxNodeCount"]),
            spec.get("instanceType", ""),
            status.get("zone") or "",
            status.get("autoScalingGroup") or "",
        )
    return table


def event_table(events: list[dict]) -> Table:
    table = _table("LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")
    for e in events:
        table.add_row(
            e.get("lastTimestamp") or "",
            e.get("type") or "",
            e.get("reason") or "",
            e.get("involvedObject") or "",
            str(e.get("count", 1)),
            e.get("message") or "",
        )
    return table


def describe_cluster(cluster: dict, events: list[dict], operation: dict | None) -> None:
    status = cluster["status"]
    lines = [
        ("Name", cluster["metadata"]["name"]),
        ("UID", status.get("uid")),
        ("Phase", status.get("phase")),
        ("Version", status.get("version")),
        ("Endpoint", f"https://{status['endpoint']}:443" if status.get("endpoint") else "-"),
        ("Generation", status.get("generation")),
    ]
    if status.get("lastError"):
        lines.append(("Last error", f"{status['lastError'].get('error')}: {status['lastError'].get('message', '')}"))
    for key, value in lines:
        console.print(f"[bold]{key + ':':<12}[/bold] {value if value is not None else '-'}")
    if operation:
        console.print(f"[bold]{'Operation:':<12}[/bold] {operation['id']} {operation['kind']} {operation['status']}")
    drift = status.get("drift") or {}
    if drift:
        console.print("\n[bold]Drift[/bold] (changed by hand; `kubestep repair cluster` puts it back)")
        for key, what in drift.items():
            console.print(f"  {key}: {what}")
    console.print("\n[bold]Control plane replicas[/bold]")
    replicas = _table("#", "ZONE", "ASG", "INSTANCE", "ETCD VOLUME", "BOOTSTRAP")
    for r in (status.get("controlPlane") or {}).get("replicas") or []:
        replicas.add_row(
            str(r["index"]),
            r.get("zone") or "",
            r.get("autoScalingGroup") or "",
            r.get("instanceId") or "",
            r.get("etcdVolumeId") or "",
            r.get("bootstrap") or "",
        )
    console.print(replicas)
    console.print("\n[bold]Node pools[/bold]")
    console.print(node_pool_table(status.get("nodePools") or []))
    console.print("\n[bold]Events[/bold]")
    console.print(event_table(events[-15:]))
