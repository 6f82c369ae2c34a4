"""`kubestep apply -f FILE` and `kubestep diff -f FILE`: create-or-update, declaratively.

apply: read and validate every document first (nothing is sent if any is invalid); compare
each object with what is stored (kubestep.diff); turn each difference into the operation that
makes it (CreateCluster, UpdateCluster, CreateNodePool, UpdateNodePool — the same rules as the
API: `kubestep.lifecycle`); refuse the whole file when a field cannot change in place (it says
which); have the server check every operation with `dryRun=true` before the first one starts;
then start them. A cluster takes one operation at a time: with `--wait` apply runs each
cluster's operations one after the other; without it, it starts the first and says what waits
(apply the file again when it ends — apply converges)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from kubestep import diff, lifecycle
from kubestep.api.client import ApiClient, ApiError
from kubestep.cli import manifests, target
from kubestep.cli.base import Command
from kubestep.cli.errors import CliError, NotApplied
from kubestep.cli.options import timeout_option
from kubestep.cli.output import dumps
from kubestep.cli.waiting import wait_for
from kubestep.models import AWSCluster, AWSNodePool, dump


@dataclass
class Action:
    """One operation apply starts: its label, what it does, and how to start (or dry-run) it."""

    cluster: str
    label: str
    verb: str  # creating, updating, upgrading, scaling, rolling
    describe: list[str]
    start: Any  # Callable[[bool], dict]: dry_run -> answer


@dataclass
class Comparison:
    """Each object of a file against the stored state."""

    creates: list[dict] = field(default_factory=list)  # POST /v1/clusters bodies
    new_pools: list[dict] = field(default_factory=list)  # pools of existing clusters
    missing_clusters: dict[str, str] = field(default_factory=dict)  # pool -> the cluster it names
    unchanged: list[str] = field(default_factory=list)
    changed: list[tuple[str, list[diff.Change]]] = field(default_factory=list)
    fixed: dict[str, list[str]] = field(default_factory=dict)  # object -> fields that cannot change in place
    updates: list[Action] = field(default_factory=list)  # in file order
    notes: dict[str, str] = field(default_factory=dict)  # object -> a hint worth printing

    @property
    def differs(self) -> bool:
        return bool(self.creates or self.new_pools or self.changed)


def _get_or_none(fetch: Any, *args: str) -> dict | None:
    try:
        return fetch(*args)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _stored_cluster(existing: dict) -> AWSCluster:
    return AWSCluster.model_validate(
        {
            "apiVersion": existing["apiVersion"],
            "kind": "AWSCluster",
            "metadata": {"name": existing["metadata"]["name"]},
            "spec": existing["spec"],
        }
    )


def _stored_pool(existing: dict) -> AWSNodePool:
    return AWSNodePool.model_validate(
        {
            "apiVersion": existing["apiVersion"],
            "kind": "AWSNodePool",
            "metadata": {"name": existing["metadata"]["name"]},
            "spec": existing["spec"],
        }
    )


def compare(client: ApiClient, plan: manifests.ApplyPlan) -> Comparison:
    result = Comparison()
    for body in plan.clusters:
        name = body["cluster"]["metadata"]["name"]
        label = f"awscluster/{name}"
        existing = _get_or_none(client.get_cluster, name)
        if existing is None:
            result.creates.append(body)
            continue
        phase = existing["status"].get("phase")
        if phase == "ERROR":
            result.notes[label] = f"phase ERROR: `kubestep delete cluster {name}` first to create it again"
        wanted = lifecycle.with_stored_admins(_stored_cluster(existing), AWSCluster.model_validate(body["cluster"]))
        found = diff.changes(existing["spec"], dump(wanted)["spec"], "spec")
        if found:
            result.changed.append((label, found))
            _cluster_update(client, result, label, _stored_cluster(existing), wanted)
        else:
            result.unchanged.append(label)
        stored_pools = {p["metadata"]["name"]: p for p in existing["status"].get("nodePools") or []}
        for pool in body["nodePools"]:
            _compare_pool(client, result, name, pool, stored_pools.get(pool["metadata"]["name"]))
    clusters: dict[str, bool] = {}
    for pool in plan.node_pools:
        cluster = pool["spec"]["clusterName"]
        if cluster not in clusters:
            clusters[cluster] = _get_or_none(client.get_cluster, cluster) is not None
        if not clusters[cluster]:
            result.missing_clusters[f"awsnodepool/{cluster}/{pool['metadata']['name']}"] = cluster
            continue
        stored = _get_or_none(client.get_node_pool, cluster, pool["metadata"]["name"])
        _compare_pool(client, result, cluster, pool, stored)
    return result


def _cluster_update(client: ApiClient, result: Comparison, label: str, stored: AWSCluster, wanted: AWSCluster) -> None:
    request, fixed = lifecycle.cluster_manifest_changes(stored, wanted)
    if fixed:
        result.fixed[label] = fixed
    if request is None:
        return
    changes = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    changes.pop("clusterName", None)
    rolls = bool(changes.get("controlPlane"))
    verb = "upgrading" if set(changes.get("controlPlane") or {}) == {"version"} else "updating"
    result.updates.append(
        Action(
            stored.name,
            label,
            verb,
            ["rolls the control plane one replica at a time"] if rolls else ["in place"],
            lambda dry_run: client.update_cluster(stored.name, changes, dry_run=dry_run),
        )
    )


def _compare_pool(client: ApiClient, result: Comparison, cluster: str, pool: dict, stored: dict | None) -> None:
    label = f"awsnodepool/{cluster}/{pool['metadata']['name']}"
    if stored is None:
        result.new_pools.append(pool)
        result.updates.append(
            Action(
                cluster,
                label,
                "creating",
                ["new"],
                lambda dry_run: client.create_node_pool(cluster, pool, dry_run=dry_run),
            )
        )
        return
    wanted = AWSNodePool.model_validate(pool)
    found = diff.changes(stored["spec"], dump(wanted)["spec"], "spec")
    if not found:
        result.unchanged.append(label)
        return
    result.changed.append((label, found))
    changes, fixed = lifecycle.node_pool_manifest_changes(_stored_pool(stored), wanted)
    if fixed:
        result.fixed[label] = fixed
    if changes is None:
        return
    body = changes.model_dump(mode="json", by_alias=True, exclude_none=True)
    rolls = bool(set(body) & set(lifecycle.POOL_ROLLING_FIELDS))
    result.updates.append(
        Action(
            cluster,
            label,
            "rolling" if rolls else "scaling" if set(body) <= {"minNodeCount", "maxNodeCount"} else "updating",
            ["rolls the pool within its update settings"] if rolls else ["in place"],
            lambda dry_run: client.update_node_pool(cluster, pool["metadata"]["name"], body, dry_run=dry_run),
        )
    )


def _print_changes(comparison: Comparison) -> None:
    for label, found in comparison.changed:
        click.echo(f"{label} differs from the stored spec ({len(found)} field{'s' if len(found) != 1 else ''}):")
        for text in diff.render(found):
            click.echo(text)
        for text in comparison.fixed.get(label, []):
            click.echo(f"  ! {text.lstrip('~ ')}")


@click.command(cls=Command, short_help="Create or update the clusters and node pools of a manifest file.")
@click.option(
    "-f", "--filename", "path", required=True, metavar="FILE", help="Manifest file (YAML or JSON; '-' reads stdin)."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate here and on the server (names, network, locks, rules) and show what would change; change nothing.",
)
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the operations, step by step, to their end (a cluster's operations one after the other).",
)
@timeout_option("2h", "How long --wait waits for each operation")
@click.option(
    "-o", "--output", "fmt", type=click.Choice(["text", "name", "json", "yaml"]), default="text", show_default=True
)
@click.pass_context
def apply(ctx: click.Context, path: str, dry_run: bool, wait: bool, timeout: float, fmt: str) -> None:
    """Create what FILE describes and does not exist; change what exists and differs.

    Every document is validated before anything is sent, and the server checks every operation
    (dryRun) before the first starts: all of the file, or none of it. A field that cannot change
    in place (networking, zones, etcd, a pool's subnet) refuses the whole file and says so."""
    plan = manifests.load_plan(path)
    client = target.client(ctx)
    comparison = compare(client, plan)
    results: list[dict[str, Any]] = []
    for label in comparison.unchanged:
        note = comparison.notes.get(label)
        results.append({"object": label, "action": "unchanged"})
        if fmt == "text":
            click.echo(f"{label} unchanged" + (f" ({note})" if note else ""))
    if comparison.missing_clusters:
        raise CliError(
            "; ".join(
                f"{label}: cluster {cluster!r} does not exist (put its AWSCluster in the file, or create it first)"
                for label, cluster in comparison.missing_clusters.items()
            )
            + "; nothing was applied"
        )
    if fmt == "text":
        _print_changes(comparison)
    if comparison.fixed:
        raise NotApplied(
            "; ".join(
                f"{label}: {', '.join(t.lstrip('~ ') for t in lines)}" for label, lines in comparison.fixed.items()
            )
            + "; nothing was applied"
        )
    # The server checks everything before the first operation starts: all of the file, or none.
    for body in comparison.creates:
        client.create_cluster(body, dry_run=True)
    for action in comparison.updates:
        action.start(True)
    if dry_run:
        for body in comparison.creates:
            label = f"awscluster/{body['cluster']['metadata']['name']}"
            results.append({"object": label, "action": "created (server dry run)"})
            _say(fmt, f"{label} created (server dry run: nothing was started)", label)
        for action in comparison.updates:
            results.append({"object": action.label, "action": f"{action.verb} (server dry run)"})
            _say(fmt, f"{action.label} {action.verb}: {'; '.join(action.describe)} (server dry run)", action.label)
        if fmt in ("json", "yaml"):
            click.echo(dumps(results, fmt), nl=fmt == "json")
        return
    started: list[tuple[str, dict]] = []
    for body in comparison.creates:
        label = f"awscluster/{body['cluster']['metadata']['name']}"
        operation = client.create_cluster(body)
        started.append((label, operation))
        results.append({"object": label, "action": "creating", "operation": operation})
        _say(fmt, f"{label} creating (operation {operation['id']})", label)
    # One operation per cluster at a time (its lock): the first now, the rest after it (--wait)
    # or on the next apply.
    queues: dict[str, list[Action]] = {}
    for action in comparison.updates:
        queues.setdefault(action.cluster, []).append(action)
    waiting: list[tuple[str, list[Action]]] = []
    for cluster, actions in queues.items():
        first, rest = actions[0], actions[1:]
        operation = first.start(False)
        results.append({"object": first.label, "action": first.verb, "operation": operation})
        _say(fmt, f"{first.label} {first.verb} (operation {operation['id']}; {'; '.join(first.describe)})", first.label)
        if wait:
            waiting.append((cluster, rest))
            started.append((first.label, operation))
        else:
            for action in rest:
                results.append({"object": action.label, "action": "waiting", "after": operation["id"]})
                _say(
                    fmt,
                    f"{action.label} waits for operation {operation['id']} on cluster {cluster}: apply the file "
                    "again when it ends (or use --wait)",
                    action.label,
                )
    if fmt in ("json", "yaml"):
        click.echo(dumps(results, fmt), nl=fmt == "json")
    if not wait:
        return
    for label, operation in started:
        done = wait_for(client, operation, timeout)
        if fmt == "text":
            click.echo(f"{label}: operation {done['id']} {done['status']}")
    for _cluster, rest in waiting:
        for action in rest:
            operation = action.start(False)
            _say(fmt, f"{action.label} {action.verb} (operation {operation['id']})", action.label)
            done = wait_for(client, operation, timeout)
            if fmt == "text":
                click.echo(f"{action.label}: operation {done['id']} {done['status']}")


def _say(fmt: str, text: str, label: str) -> None:
    if fmt == "text":
        click.echo(text)
    elif fmt == "name":
        click.echo(label)


@click.command(cls=Command, short_help="Show how a manifest file differs from what exists.")
@click.option(
    "-f", "--filename", "path", required=True, metavar="FILE", help="Manifest file (YAML or JSON; '-' reads stdin)."
)
@click.pass_context
def diff_command(ctx: click.Context, path: str) -> None:
    """Show how FILE differs from what exists (exit 0: no differences, 1: differences)."""
    plan = manifests.load_plan(path)
    comparison = compare(target.client(ctx), plan)
    for body in comparison.creates:
        click.echo(
            f"+ awscluster/{body['cluster']['metadata']['name']} (new, with {len(body['nodePools'])} node pools)"
        )
    for pool in comparison.new_pools:
        click.echo(f"+ awsnodepool/{pool['spec']['clusterName']}/{pool['metadata']['name']} (new)")
    _print_changes(comparison)
    for action in comparison.updates:
        if action.verb != "creating":
            click.echo(f"{action.label}: apply would start {action.verb} ({'; '.join(action.describe)})")
    if comparison.differs:
        ctx.exit(1)


diff_command.name = "diff"
