"""Changing what runs: `kubestep upgrade cluster`, `kubestep scale nodepool`, `kubestep create
nodepool`. Each starts one operation through the API (or, with `--at`, a one-off schedule), and
`--wait` follows it step by step: per replica while the control plane rolls, per batch while a
node pool rolls."""

from __future__ import annotations

from typing import Any

import click

from kubestep.api.client import ApiClient, ApiError
from kubestep.cli import end_of_life, kinds, manifests, target
from kubestep.cli.base import Command, Group
from kubestep.cli.commands.get import complete_cluster, complete_name
from kubestep.cli.errors import InputError
from kubestep.cli.options import output_option, timeout_option
from kubestep.cli.output import dumps
from kubestep.cli.waiting import wait_for


def _node_pools_value(value: str | None) -> str | list[str] | None:
    if value is None:
        return None
    if value.strip() == "all":
        return "all"
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise InputError('--node-pools: give "all" or comma-separated node pool names')
    return names


def _started(client: ApiClient, label: str, doing: str, answer: dict, wait: bool, timeout: float, fmt: str) -> None:
    """`label` (awscluster/prod) is `doing` (upgrading to 1.36.5) through the operation `answer`."""
    if fmt in ("json", "yaml"):
        click.echo(dumps(answer, fmt), nl=fmt == "json")
    elif fmt == "name":
        click.echo(label)
    else:
        click.echo(f"{label} {doing} (operation {answer['id']})")
    if wait:
        done = wait_for(client, answer, timeout)
        if fmt in ("text", "wide"):
            click.echo(f"operation {done['id']} {done['status']}")


def _dry(answer: dict, fmt: str, label: str, done: str, nothing: str = "nothing was started") -> None:
    if fmt in ("json", "yaml"):
        click.echo(dumps(answer, fmt), nl=fmt == "json")
        return
    if fmt == "name":
        click.echo(label)
        return
    click.echo(f"{label} {done} (server dry run: {nothing})")

    for change in answer.get("changes") or []:
        click.echo(f"  {change}")


def _warn_end_of_life(client: ApiClient, version: str) -> None:
    """Before an upgrade: say so when its target's minor is at or near its end of life."""
    for line in end_of_life.warnings(client.server_config(), {end_of_life.minor_of(version)}):
        click.echo(f"warning: {line}", err=True)


def _changes_nothing(exc: ApiError) -> bool:
    """The server's planner refused a change because there is nothing to change."""
    from kubestep import lifecycle  # the domain package (pydantic) only when an answer needs it

    return exc.status == 400 and any(
        str(detail.get("rule", "")).startswith(lifecycle.NOTHING_TO_CHANGE) for detail in exc.details
    )


def _unchanged(label: str, why: str, fmt: str) -> None:
    """A command that changes nothing says so, as `apply` does, and starts nothing (exit 0)."""
    if fmt in ("json", "yaml"):
        click.echo(dumps({"object": label, "action": "unchanged"}, fmt), nl=fmt == "json")
    elif fmt == "name":
        click.echo(label)
    else:
        click.echo(f"{label} unchanged ({why})")


OUTPUT = output_option()
WAIT = click.option(
    "--wait/--no-wait", default=False, help="Follow the operation step by step (per replica, per batch) to its end."
)
DRY_RUN = click.option("--dry-run", is_flag=True, help="Check everything on the server; start nothing.")


# ---------------------------------------------------------------- upgrade


@click.group(cls=Group, short_help="Upgrade a cluster's Kubernetes version (now or at a time).")
def upgrade() -> None:
    """Upgrade a cluster: the control plane one replica at a time behind its health gate, then
    optionally its node pools."""


@upgrade.command("cluster", cls=Command)
@click.argument("name", shell_complete=complete_cluster)
@click.option("--version", "version", required=True, metavar="V", help="Target version, e.g. 1.36.5.")
@click.option(
    "--node-pools",
    metavar="all|A,B",
    help='Then upgrade these node pools to the same version ("all" or comma-separated names).',
)
@click.option(
    "--at",
    metavar="TIME",
    help="Start the upgrade at TIME (ISO 8601 with a zone, e.g. 2026-12-01T03:00:00Z): an EventBridge Scheduler "
    "one-time schedule; see `kubestep get schedules`.",
)
@DRY_RUN
@WAIT
@timeout_option("2h", "How long --wait waits")
@OUTPUT
@click.pass_context
def upgrade_cluster(
    ctx: click.Context,
    name: str,
    version: str,
    node_pools: str | None,
    at: str | None,
    dry_run: bool,
    wait: bool,
    timeout: float,
    fmt: str,
) -> None:
    """Upgrade cluster NAME to --version: the control plane one replica at a time behind its
    health gate, then the node pools named with --node-pools. One minor version at a time, never
    down; node pools must end within two minors of the control plane and never above it (refused
    at once, exit 2). An upgrade to the version the cluster runs is "unchanged" and starts nothing;
    a target at or near its end of life is warned about. --at TIME (ISO 8601 with a zone, 1 minute
    to 90 days ahead): an EventBridge Scheduler one-time schedule instead (kubestep get schedules).
    --wait prints each replica's replacement and gate.

    \b
    Examples:
      kubestep upgrade cluster prod --version 1.36.5 --node-pools all --wait
      kubestep upgrade cluster prod --version 1.36.5 --at 2026-12-06T03:00:00Z
    """
    if at and wait:
        raise InputError("--wait follows an operation; with --at the upgrade starts later (kubestep get schedules)")
    client = target.client(ctx)
    pools = _node_pools_value(node_pools)
    label = f"awscluster/{name}"
    if at:  # a one-off schedule: the server checks the request now, and again when it fires
        answer = client.upgrade_cluster(name, version, node_pools=pools, at=at, dry_run=dry_run)
        _warn_end_of_life(client, version)
        if dry_run:
            when = answer.get("at") or at
            _dry(answer, fmt, label, f"upgrade to {version} scheduled at {when}", "nothing was scheduled")
        elif fmt in ("json", "yaml"):
            click.echo(dumps(answer, fmt), nl=fmt == "json")
        elif fmt == "name":
            click.echo(f"schedule/{answer['id']}")
        else:
            click.echo(f"{label} upgrade to {version} scheduled at {answer['at']} (schedule {answer['id']})")
        return
    try:  # the server's planner first: an upgrade that changes nothing starts nothing
        planned = client.upgrade_cluster(name, version, node_pools=pools, dry_run=True)
    except ApiError as exc:
        if not _changes_nothing(exc):
            raise
        _unchanged(label, f"already at {version}", fmt)
        return
    _warn_end_of_life(client, version)
    if dry_run:
        _dry(planned, fmt, label, f"upgraded to {planned.get('version', version)}")
        return
    answer = client.upgrade_cluster(name, version, node_pools=pools)
    _started(client, label, f"upgrading to {version}", answer, wait, timeout, fmt)


# ---------------------------------------------------------------- scale


@click.group(cls=Group, short_help="Change a node pool's size bounds (in place, no new instances).")
def scale() -> None:
    """Change a node pool's minimum and maximum node count: only its Auto Scaling group changes."""


@scale.command("nodepool", cls=Command)
@click.argument("name", metavar="CLUSTER/POOL", shell_complete=complete_name)
@click.option("-c", "--cluster", metavar="CLUSTER", help="The cluster, when NAME is the pool alone.")
@click.option("--min", "minimum", type=click.IntRange(0, 1000), help="Minimum node count.")
@click.option("--max", "maximum", type=click.IntRange(1, 1000), help="Maximum node count.")
@DRY_RUN
@WAIT
@timeout_option("30m", "How long --wait waits")
@OUTPUT
@click.pass_context
def scale_nodepool(
    ctx: click.Context,
    name: str,
    cluster: str | None,
    minimum: int | None,
    maximum: int | None,
    dry_run: bool,
    wait: bool,
    timeout: float,
    fmt: str,
) -> None:
    """Set node pool CLUSTER/POOL's --min and/or --max node count: only its Auto Scaling group
    changes, in place. Bounds it already has are "unchanged": nothing starts.

    \b
    Examples:
      kubestep scale nodepool prod/general --min 2 --max 8 --wait
    """
    if minimum is None and maximum is None:
        raise InputError("give --min, --max or both")
    [ref] = kinds.refs(kinds.kind_named("nodepool"), (name,), cluster)
    changes: dict[str, Any] = {}
    if minimum is not None:
        changes["minNodeCount"] = minimum
    if maximum is not None:
        changes["maxNodeCount"] = maximum
    client = target.client(ctx)
    label = f"awsnodepool/{ref.cluster}/{ref.name}"
    # The server's planner first: bounds the pool already has are "unchanged", and start nothing.
    planned = client.update_node_pool(ref.cluster or "", ref.name or "", changes, dry_run=True)
    if not planned.get("changes"):
        _unchanged(label, "its bounds are already these", fmt)
        return
    if dry_run:
        _dry(planned, fmt, label, "scaled")
        return
    answer = client.update_node_pool(ref.cluster or "", ref.name or "", changes)
    _started(client, label, "scaling", answer, wait, timeout, fmt)


# ---------------------------------------------------------------- create nodepool


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise InputError(f"--label {value[:60]!r}: write KEY=VALUE")
        found[key] = text
    return found


def _taints(values: tuple[str, ...]) -> list[dict[str, str]]:
    found = []
    for value in values:
        pair, sep, effect = value.rpartition(":")
        key, _, text = pair.partition("=")
        if not sep or not key:
            raise InputError(
                f"--taint {value[:60]!r}: write KEY=VALUE:EFFECT (NoSchedule, PreferNoSchedule, NoExecute)"
            )
        found.append({"key": key, "value": text, "effect": effect})
    return found


@click.group(cls=Group, short_help="Create a node pool (from flags or a manifest).")
def create() -> None:
    """Create objects; clusters with their node pools are created from manifests (`kubestep apply -f`)."""


@create.command("nodepool", cls=Command)
@click.argument("name", metavar="CLUSTER/POOL", required=False, shell_complete=complete_name)
@click.option("-c", "--cluster", metavar="CLUSTER", help="The cluster, when NAME is the pool alone.")
@click.option("-f", "--filename", "path", metavar="FILE", help="An AWSNodePool manifest instead of flags.")
@click.option("--version", "version", metavar="V", help="Kubernetes version (default: the control plane's).")
@click.option("--instance-type", metavar="TYPE", help="EC2 instance type (default m5.large).")
@click.option("--min", "minimum", type=click.IntRange(0, 1000), default=1, show_default=True)
@click.option("--max", "maximum", type=click.IntRange(1, 1000), default=3, show_default=True)
@click.option("--subnet", "subnet_id", metavar="SUBNET", help="Subnet (default: the cluster's first zone).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Node label (repeatable).")
@click.option("--taint", "taints", multiple=True, metavar="KEY=VALUE:EFFECT", help="Node taint (repeatable).")
@DRY_RUN
@WAIT
@timeout_option("1h", "How long --wait waits")
@OUTPUT
@click.pass_context
def create_nodepool(
    ctx: click.Context,
    name: str | None,
    cluster: str | None,
    path: str | None,
    version: str | None,
    instance_type: str | None,
    minimum: int,
    maximum: int,
    subnet_id: str | None,
    labels: tuple[str, ...],
    taints: tuple[str, ...],
    dry_run: bool,
    wait: bool,
    timeout: float,
    fmt: str,
) -> None:
    """Add node pool CLUSTER/POOL to a running cluster (version: the control plane's by default),
    from flags or from an AWSNodePool manifest (-f FILE).

    \b
    Examples:
      kubestep create nodepool prod/batch --min 0 --max 10 --label workload=batch --taint batch=true:NoSchedule
      kubestep create nodepool -f pool.yaml --wait
    """
    client = target.client(ctx)
    if path:
        if name:
            raise InputError("name the pool, or give -f FILE, not both")
        plan = manifests.load_plan(path)
        if plan.clusters or len(plan.node_pools) != 1:
            raise InputError(f"{path}: expected exactly one AWSNodePool (clusters go through `kubestep apply -f`)")
        pool = plan.node_pools[0]
        cluster_name = pool["spec"]["clusterName"]
    else:
        if not name:
            raise InputError("name the pool (CLUSTER/POOL) or give -f FILE")
        [ref] = kinds.refs(kinds.kind_named("nodepool"), (name,), cluster)
        cluster_name = ref.cluster or ""
        if version is None:
            version = client.get_cluster(cluster_name)["status"].get("version")
        spec: dict[str, Any] = {
            "clusterName": cluster_name,
            "version": version,
            "minNodeCount": minimum,
            "maxNodeCount": maximum,
        }
        for key, value in (
            ("instanceType", instance_type),
            ("subnetID", subnet_id),
            ("labels", _labels(labels) or None),
            ("taints", _taints(taints) or None),
        ):
            if value is not None:
                spec[key] = value
        from kubestep.models import API_VERSION

        pool = {"apiVersion": API_VERSION, "kind": "AWSNodePool", "metadata": {"name": ref.name}, "spec": spec}
    label = f"awsnodepool/{cluster_name}/{pool['metadata']['name']}"
    answer = client.create_node_pool(cluster_name, pool, dry_run=dry_run)
    if dry_run:
        _dry(answer, fmt, label, "created")
        return
    _started(client, label, "creating", answer, wait, timeout, fmt)


COMMANDS = (upgrade, scale, create)
