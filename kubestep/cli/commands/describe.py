"""`kubestep describe cluster|nodepool|operation NAME`: one object in detail, for people
(`-o json|yaml` prints what the human view is made of)."""

from __future__ import annotations

from typing import Any

import click

from kubestep.api.client import ApiClient, ApiError
from kubestep.cli import kinds, target
from kubestep.cli.base import Command
from kubestep.cli.commands.get import cluster_option, complete_kind, complete_name
from kubestep.cli.errors import InputError
from kubestep.cli.kinds import (
    EVENT_COLUMNS,
    NODE_POOL_COLUMNS,
    Ref,
    node_pool_events,
    operation_target,
    replica_health,
)
from kubestep.cli.options import output_options
from kubestep.cli.output import age, cell, emit, key_values, print_rows, rows_of, section


def _cluster(client: ApiClient, ref: Ref) -> tuple[dict, Any]:
    cluster = client.get_cluster(ref.name or "")
    events = client.events(ref.name or "")
    operation = None
    if cluster["status"].get("currentOperation"):
        try:
            operation = client.operation(cluster["status"]["currentOperation"])
        except ApiError:
            operation = None
    data = {**cluster, "events": events}

    def human() -> None:
        status = cluster["status"]
        pairs: list[tuple[str, Any]] = [
            ("Name", cluster["metadata"]["name"]),
            ("UID", status.get("uid")),
            ("Phase", status.get("phase")),
            ("Version", status.get("version")),
            ("Endpoint", f"https://{status['endpoint']}:443" if status.get("endpoint") else None),
            ("Age", age(cluster["metadata"].get("createdAt"))),
            ("Generation", status.get("generation")),
        ]
        if status.get("lastError"):
            error = status["lastError"]
            pairs.append(("Last error", f"{error.get('error')}: {error.get('message') or ''}".strip(": ")))
        if operation:
            pairs.append(("Operation", f"{operation['id']} {operation['kind']} {operation['status']}"))
        if status.get("rollingBack"):
            pairs.append(("Rolling back", "the operation deletes what it created; the replicas below are going"))
        pairs += _access_pairs(status)
        pairs += [("Warning", warning) for warning in status.get("warnings") or []]
        key_values(pairs)
        drift = status.get("drift") or {}
        if drift:
            section("Drift (changed by hand; `kubestep repair cluster` puts it back)")
            _rows(["RESOURCE", "DIFFERENCE"], [[key, what] for key, what in drift.items()])
        section("Control plane replicas")
        replicas = (status.get("controlPlane") or {}).get("replicas") or []
        _rows(
            ["#", "ZONE", "ASG", "INSTANCE", "ETCD VOLUME", "BOOTSTRAP", "REPORTED"],
            [
                [
                    r["index"],
                    r.get("zone"),
                    r.get("autoScalingGroup"),
                    r.get("instanceId"),
                    r.get("etcdVolumeId"),
                    replica_health(r),
                    f"{age(r['reportedAt'])} ago" if r.get("reportedAt") else None,
                ]
                for r in replicas
            ],
        )
        section("Certificates (as the replicas report them; the first copy to expire)")
        _rows(
            ["CERTIFICATE", "EXPIRES", "IN", "REPLICA"],
            [[c["name"], c["expiresAt"], f"{c['daysLeft']}d", c["replica"]] for c in status.get("certificates") or []],
        )
        section("Node pools")
        pools = status.get("nodePools") or []
        header, rows = rows_of(pools, [c for c in NODE_POOL_COLUMNS if c.header != "CLUSTER"], wide=True)
        _rows(header, rows)
        section("Events")
        header, rows = rows_of(events[-15:], EVENT_COLUMNS, wide=False)
        _rows(header, rows)

    return data, human


def _access_pairs(status: dict) -> list[tuple[str, Any]]:
    """Who is cluster-admin (and whether the replicas serve it yet), and the join token's expiry."""
    admins = status.get("admins") or {}
    creator = admins.get("creator")
    arns = admins.get("identityARNs") or []
    pairs: list[tuple[str, Any]] = [
        (
            "Admins",
            ", ".join(arns)
            or "none: nobody can use kubectl (set spec.authentication.awsIAM.adminIdentityARNs, then kubestep apply)",
        ),
        ("Created by", creator or "-"),
    ]
    if admins.get("generation") is not None:
        replicas = (status.get("controlPlane") or {}).get("replicas") or []
        mapping = f"generation {admins['generation']}, served by {admins.get('appliedBy', 0)}/{len(replicas)} replicas"
        unread = [f"replica {r.get('index')}: {r['adminsError']}" for r in replicas if r.get("adminsError")]
        pairs.append(("Admin mapping", "; ".join([mapping, *unread])))
    token = status.get("joinToken")
    if token:
        pairs.append(
            (
                "Join token",
                f"expires {token['expiresAt']} (rotates after {token['rotatesAfter']}; "
                f"{token.get('accepted', 1)} value(s) accepted)",
            )
        )
    return pairs


def _node_pool(client: ApiClient, ref: Ref) -> tuple[dict, Any]:
    pool = client.get_node_pool(ref.cluster or "", ref.name or "")
    events = node_pool_events(client, ref)

    def human() -> None:
        spec, status = pool["spec"], pool["status"]
        update = spec.get("updateSettings") or {}
        key_values(
            [
                ("Name", pool["metadata"]["name"]),
                ("Cluster", spec.get("clusterName")),
                ("Phase", status.get("phase")),
                ("Version", status.get("version") or spec.get("version")),
                (
                    "Nodes",
                    f"min {spec.get('minNodeCount')}, max {spec.get('maxNodeCount')}, "
                    f"ready {cell(status.get('readyNodes'))}",
                ),
                ("Instance type", spec.get("instanceType")),
                ("Max pods", spec.get("maxPodsPerNode")),
                ("Zone", status.get("zone")),
                ("Subnet", status.get("subnetId")),
                ("ASG", status.get("autoScalingGroup")),
                ("Launch template", status.get("launchTemplateId")),
                ("Age", age(pool["metadata"].get("createdAt"))),
                ("Labels", ", ".join(f"{k}={v}" for k, v in (spec.get("labels") or {}).items()) or None),
                (
                    "Taints",
                    ", ".join(f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in spec.get("taints") or [])
                    or None,
                ),
                (
                    "Update",
                    f"maxSurge {update.get('maxSurge')}, maxUnavailable {update.get('maxUnavailable')}",
                ),
            ]
            + [("Warning", warning) for warning in status.get("warnings") or []]
        )
        section("Events")
        header, rows = rows_of(events[-15:], EVENT_COLUMNS, wide=False)
        _rows(header, rows)

    return {**pool, "events": events}, human


def _operation(client: ApiClient, ref: Ref) -> tuple[dict, Any]:
    operation = client.operation(ref.name or "")
    try:
        steps = client.operation_steps(operation["id"])
    except ApiError:
        steps = {"items": [], "timeScale": 1}
    data = {**operation, "steps": steps["items"]}

    def human() -> None:
        key_values(
            [
                ("ID", operation["id"]),
                ("Kind", operation.get("kind")),
                ("Target", operation_target(operation)),
                ("Status", operation.get("status")),
                ("Started", f"{operation.get('startedAt')} ({age(operation.get('startedAt'))} ago)"),
                ("Ended", operation.get("endedAt")),
                ("Error", operation.get("error")),
                ("Cause", operation.get("cause")),
                ("Execution", operation.get("executionArn")),
            ]
        )
        section("Steps" + (f" (time scale {steps['timeScale']:g})" if steps.get("timeScale", 1) != 1 else ""))
        _rows(
            ["ELAPSED", "TYPE", "STEP"],
            [[f"{i['elapsedSeconds']:.1f}s", i["type"], i["message"]] for i in steps["items"]],
        )

    return data, human


def _rows(headers: list[str], rows: list[list[Any]]) -> None:
    if not rows:
        click.echo("  (none)")
        return
    print_rows(headers, [[cell(v) for v in row] for row in rows])


DESCRIBERS = {"cluster": _cluster, "nodepool": _node_pool, "operation": _operation}


@click.command(cls=Command, short_help="Show a cluster, node pool or operation in detail.")
@click.argument("kind", metavar="TYPE", shell_complete=complete_kind)
@click.argument("names", nargs=-1, required=True, metavar="NAME...", shell_complete=complete_name)
@cluster_option()
@output_options()
@click.pass_context
def describe(
    ctx: click.Context,
    kind: str,
    names: tuple[str, ...],
    cluster: str | None,
    fmt: str,
    query: str | None,
    no_headers: bool,
) -> None:
    """Show resources in detail: a cluster (phase, version, endpoint, replicas with zone, ASG,
    instance, etcd volume and bootstrap report, node pools, recent events, the current operation,
    drift), a node pool (CLUSTER/POOL: sizes, placement, labels, taints, AWS ids, its events), an
    operation (its steps so far). -o json|yaml prints what the view is made of.

    \b
    Examples:
      kubestep describe cluster prod
      kubestep describe nodepool prod/general
      kubestep describe operation create-k3x9q2m1-1
    """
    resource = kinds.kind_named(kind)
    describer = DESCRIBERS.get(resource.singular)
    if describer is None:
        raise InputError(f"describe shows clusters, node pools and operations, not {resource.plural}")
    client = target.client(ctx)
    for i, ref in enumerate(kinds.refs(resource, names, cluster)):
        data, human = describer(client, ref)
        if fmt in ("text", "wide") and not query:
            if i:
                click.echo("")
            human()
        else:
            emit(data, fmt, name=resource.name_of, query_expression=query, headers=not no_headers)
