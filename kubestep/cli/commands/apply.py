"""`kubestep apply -f FILE` and `kubestep diff -f FILE`.

apply: read and validate every document first (nothing is sent if any is invalid); compare
each object with what is stored (kubestep.diff); have the server check every create with
`dryRun=true` before the first one starts; then create what is new. An existing object whose
stored spec differs is shown field by field and nothing is applied: updates arrive with the
lifecycle workflows (issue 10 turns `apply` into create-or-update on this same comparison)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from kubestep import diff
from kubestep.api.client import ApiClient, ApiError
from kubestep.cli import manifests, target
from kubestep.cli.base import Command
from kubestep.cli.errors import CliError, NotApplied
from kubestep.cli.options import timeout_option
from kubestep.cli.output import dumps
from kubestep.cli.waiting import wait_for
from kubestep.models import AWSCluster, AWSNodePool, dump


@dataclass
class Comparison:
    """Each object of a file against the stored state."""

    creates: list[dict] = field(default_factory=list)  # POST /v1/clusters bodies
    new_pools: list[dict] = field(default_factory=list)  # pools of existing clusters
    missing_clusters: dict[str, str] = field(default_factory=dict)  # pool -> the cluster it names
    unchanged: list[str] = field(default_factory=list)
    changed: list[tuple[str, list[diff.Change]]] = field(default_factory=list)
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
        found = diff.changes(existing["spec"], dump(AWSCluster.model_validate(body["cluster"]))["spec"], "spec")
        stored_pools = {p["metadata"]["name"]: p for p in existing["status"].get("nodePools") or []}
        (result.changed.append((label, found)) if found else result.unchanged.append(label))
        for pool in body["nodePools"]:
            _compare_pool(result, name, pool, stored_pools.get(pool["metadata"]["name"]))
    clusters: dict[str, bool] = {}
    for pool in plan.node_pools:
        cluster = pool["spec"]["clusterName"]
        if cluster not in clusters:
            clusters[cluster] = _get_or_none(client.get_cluster, cluster) is not None
        if not clusters[cluster]:
            result.missing_clusters[f"awsnodepool/{cluster}/{pool['metadata']['name']}"] = cluster
            continue
        stored = _get_or_none(client.get_node_pool, cluster, pool["metadata"]["name"])
        _compare_pool(result, cluster, pool, stored)
    return result


def _compare_pool(result: Comparison, cluster: str, pool: dict, stored: dict | None) -> None:
    label = f"awsnodepool/{cluster}/{pool['metadata']['name']}"
    if stored is None:
        result.new_pools.append(pool)
        return
    found = diff.changes(stored["spec"], dump(AWSNodePool.model_validate(pool))["spec"], "spec")
    (result.changed.append((label, found)) if found else result.unchanged.append(label))


def _print_changes(comparison: Comparison) -> None:
    for label, found in comparison.changed:
        click.echo(f"{label} differs from the stored spec ({len(found)} field{'s' if len(found) != 1 else ''}):")
        for text in diff.render(found):
            click.echo(text)


@click.command(cls=Command, short_help="Create the clusters and node pools of a manifest file.")
@click.option(
    "-f", "--filename", "path", required=True, metavar="FILE", help="Manifest file (YAML or JSON; '-' reads stdin)."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate here and on the server (names, network, locks) and show what would change; change nothing.",
)
@click.option("--wait/--no-wait", default=False, help="Follow the operations, step by step, to their end.")
@timeout_option("1h", "How long --wait waits")
@click.option(
    "-o", "--output", "fmt", type=click.Choice(["text", "name", "json", "yaml"]), default="text", show_default=True
)
@click.pass_context
def apply(ctx: click.Context, path: str, dry_run: bool, wait: bool, timeout: float, fmt: str) -> None:
    """Create the clusters (with their node pools) and node pools in FILE.

    Every document is validated before anything is sent; an object that exists and differs
    is shown field by field and nothing is applied (updates arrive with the lifecycle
    workflows), exit 1."""
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
    # Changes to what exists, and node pools added to existing clusters, are the lifecycle
    # workflows' (UpdateCluster, CreateNodePool, UpdateNodePool: issue 10). Until then: say
    # exactly what differs, and apply nothing of the file.
    pending = [label for label, _ in comparison.changed] + [
        f"awsnodepool/{p['spec']['clusterName']}/{p['metadata']['name']} (new)" for p in comparison.new_pools
    ]
    if pending:
        _print_changes(comparison)
        raise NotApplied(
            f"{', '.join(pending)}: changing what exists (or adding node pools to it) arrives with the lifecycle "
            "workflows; nothing was applied (`kubestep diff -f` shows the differences)"
        )
    # The server checks every create before the first starts: all of the file, or none of it.
    for body in comparison.creates:
        client.create_cluster(body, dry_run=True)
    started = []
    for body in comparison.creates:
        label = f"awscluster/{body['cluster']['metadata']['name']}"
        if dry_run:
            results.append({"object": label, "action": "created (server dry run)"})
            _say(fmt, f"{label} created (server dry run: nothing was started)", label)
            continue
        operation = client.create_cluster(body)
        started.append((label, operation))
        results.append({"object": label, "action": "creating", "operation": operation})
        _say(fmt, f"{label} creating (operation {operation['id']})", label)
    if fmt in ("json", "yaml"):
        click.echo(dumps(results, fmt), nl=fmt == "json")
    if wait:
        for label, operation in started:
            done = wait_for(client, operation, timeout)
            if fmt == "text":
                click.echo(f"{label} created: operation {done['id']} {done['status']}")


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
    if comparison.differs:
        ctx.exit(1)


diff_command.name = "diff"
