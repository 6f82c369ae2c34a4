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
from typing import TYPE_CHECKING, Any

import click

from kubestep import diff
from kubestep.api.client import ApiClient, ApiError
from kubestep.cli import manifests, target
from kubestep.cli.base import Command
from kubestep.cli.errors import EXIT_USAGE, INPUT_STATUSES, CliError, NotApplied
from kubestep.cli.options import output_option, timeout_option
from kubestep.cli.output import dumps
from kubestep.cli.waiting import wait_for

if TYPE_CHECKING:
    from kubestep.models import AWSCluster, AWSNodePool

# kubestep.lifecycle and kubestep.models (pydantic) are imported where a manifest is compared:
# `kubestep -h` imports this module too.


@dataclass
class Action:
    """One operation apply starts: its label, what it does, and how to start (or dry-run) it."""

    cluster: str
    label: str
    verb: str  # creating, updating, upgrading, scaling, rolling
    describe: list[str]
    start: Any  # Callable[[bool], dict]: dry_run -> answer
    rolls_what: str = ""  # "the control plane one replica at a time", "the pool within its update settings"

    def learn(self, answer: dict) -> None:
        """What the server's planner says it will do (its dry-run answer): a roll, or in place."""
        if self.rolls_what and "rolls" in answer:
            self.describe = [f"rolls {self.rolls_what}"] if answer["rolls"] else ["in place"]


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
    blocked: dict[str, str] = field(default_factory=dict)  # object -> why apply cannot converge it

    @property
    def differs(self) -> bool:
        return bool(self.creates or self.new_pools or self.changed or self.blocked)


def _get_or_none(fetch: Any, *args: str) -> dict | None:
    try:
        return fetch(*args)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _stored_cluster(existing: dict) -> AWSCluster:
    from kubestep.models import AWSCluster

    return AWSCluster.model_validate(
        {
            "apiVersion": existing["apiVersion"],
            "kind": "AWSCluster",
            "metadata": {"name": existing["metadata"]["name"]},
            "spec": existing["spec"],
        }
    )


def _stored_pool(existing: dict) -> AWSNodePool:
    from kubestep.models import AWSNodePool

    return AWSNodePool.model_validate(
        {
            "apiVersion": existing["apiVersion"],
            "kind": "AWSNodePool",
            "metadata": {"name": existing["metadata"]["name"]},
            "spec": existing["spec"],
        }
    )


def compare(client: ApiClient, plan: manifests.ApplyPlan) -> Comparison:
    from kubestep import lifecycle
    from kubestep.models import AWSCluster, dump

    result = Comparison()
    for body in plan.clusters:
        name = body["cluster"]["metadata"]["name"]
        label = f"awscluster/{name}"
        existing = _get_or_none(client.get_cluster, name)
        if existing is None:
            result.creates.append(body)
            continue
        read_from, uid = plan.uids.get(name), existing["status"].get("uid")
        if read_from and read_from != uid:
            result.fixed[label] = [
                f"metadata.uid: {read_from} names an earlier cluster {name} (this one is {uid}); "
                "remove metadata.uid to apply the file to it"
            ]
            continue
        blocked = _blocked(existing)
        if blocked:
            result.blocked[label] = blocked
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


def _blocked(existing: dict) -> str | None:
    """Why apply cannot bring a stored cluster to a file's spec, whatever the file says: it is in
    ERROR (an unchanged spec is not a running cluster) or being deleted. The cluster's own last
    error is quoted as the API reports it."""
    name, status = existing["metadata"]["name"], existing.get("status") or {}
    phase = status.get("phase")
    if phase == "STOPPING":
        operation = status.get("currentOperation") or "a delete"
        return f"is being deleted ({operation}): apply the file again when the delete has ended to create it anew"
    if phase != "ERROR":
        return None
    error = status.get("lastError") or {}
    said = f"{error.get('error')}: {error.get('message')}" if error else "no error recorded"
    operation = f" in operation {error['operationId']}" if error.get("operationId") else ""
    return (
        f"is ERROR ({said}{operation}); apply does not resume a failed cluster: `kubestep repair cluster {name}` "
        f"puts back what is missing, or `kubestep delete cluster {name}` and apply again starts over"
    )


def _cluster_update(client: ApiClient, result: Comparison, label: str, stored: AWSCluster, wanted: AWSCluster) -> None:
    from kubestep import lifecycle

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
            rolls_what="the control plane one replica at a time",
        )
    )


def _compare_pool(client: ApiClient, result: Comparison, cluster: str, pool: dict, stored: dict | None) -> None:
    from kubestep import lifecycle
    from kubestep.models import AWSNodePool, dump

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
            rolls_what="the pool within its update settings",
        )
    )


def plan_with_server(client: ApiClient, comparison: Comparison) -> list[tuple[str, ApiError]]:
    """Every operation apply would start, checked by the server (`dryRun=true`): the planner that
    decides when the operation starts decides here too, for `diff`, `apply --dry-run` and `apply`
    alike (a downgrade is refused by all three, in the same words). Each action learns what the
    server will do; returns the refusals, by object."""
    refusals: list[tuple[str, ApiError]] = []
    for body in comparison.creates:
        try:
            client.create_cluster(body, dry_run=True)
        except ApiError as exc:
            refusals.append((f"awscluster/{body['cluster']['metadata']['name']}", exc))
    for action in comparison.updates:
        try:
            action.learn(action.start(True))
        except ApiError as exc:
            refusals.append((action.label, exc))
    return refusals


def refused(refusals: list[tuple[str, ApiError]]) -> CliError:
    """One line naming every refusal; exit 2 when each says the input is wrong (a rule), else 1."""
    error = CliError("; ".join(f"{label}: {exc.one_line()}" for label, exc in refusals) + "; nothing was applied")
    if all(exc.status in INPUT_STATUSES for _, exc in refusals):
        error.exit_code = EXIT_USAGE
    return error


def _print_changes(comparison: Comparison) -> None:
    for label, found in comparison.changed:
        click.echo(f"{label} differs from the stored spec ({len(found)} field{'s' if len(found) != 1 else ''}):")
        for text in diff.render(found):
            click.echo(text)
        for text in comparison.fixed.get(label, []):
            click.echo(f"  ! {text.lstrip('~ ')}")


def filename_options(f: Any) -> Any:
    """`-f FILE` (repeatable; a directory's manifest files; `-` is stdin) and `-R`, as kubectl has them."""
    f = click.option("-R", "--recursive", is_flag=True, help="With -f DIR, its subdirectories' files too.")(f)
    return click.option(
        "-f",
        "--filename",
        "paths",
        required=True,
        multiple=True,
        metavar="FILE",
        help="Manifest file (YAML or JSON; '-' reads stdin), or a directory: its .yaml, .yml and .json files in "
        "name order. Repeatable.",
    )(f)


def _notes(plan: manifests.ApplyPlan) -> None:
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)


@click.command(cls=Command, short_help="Create or update the clusters and node pools of manifest files.")
@filename_options
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
@output_option()
@click.pass_context
def apply(
    ctx: click.Context, paths: tuple[str, ...], recursive: bool, dry_run: bool, wait: bool, timeout: float, fmt: str
) -> None:
    """Create what FILE describes and does not exist; show what exists and differs field by field
    (`~ spec.maxNodeCount: 10 -> 12`) and start the operation that makes it: UpdateCluster for
    control-plane fields and the upgrade policy, CreateNodePool for a new pool, UpdateNodePool for a
    changed one (saying whether it rolls or changes in place). Every document is validated before
    anything is sent, and the server checks every operation (dryRun) before the first starts: all
    of the files, or none of them. A field that cannot change in place (networking, zones, etcd,
    encryption, a pool's subnet) refuses them all, naming it (exit 1); so does a cluster in ERROR
    (its last error quoted, with repair and delete-then-apply as the ways on) or being deleted,
    even when the file matches its spec, and a node pool of a cluster that exists nowhere. A
    cluster takes one operation at a time: --wait runs a cluster's
    operations one after another; without it the first starts and the rest say they wait (apply
    the files again when it ends). What the API sets (status, metadata.uid, metadata.createdAt) is
    ignored, so `kubestep get cluster NAME -o yaml | kubestep apply -f -` round-trips; a
    metadata.uid must still be the cluster's own. Management-service documents are skipped with a
    note (they are deployed with `cdk deploy`). --dry-run: the server checks everything, nothing
    starts.

    \b
    Examples:
      kubestep apply -f examples/cluster-ha.yaml --wait
      kubestep apply -f manifests/              # its .yaml, .yml and .json files, in name order
      kubestep get cluster prod -o yaml | kubestep apply -f -
    """
    fmt = "text" if fmt == "wide" else fmt  # nothing wider to show
    plan = manifests.load_plan(paths, recursive=recursive)
    _notes(plan)
    client = target.client(ctx)
    comparison = compare(client, plan)
    results: list[dict[str, Any]] = []
    for label in comparison.unchanged:
        if label in comparison.blocked:
            continue
        results.append({"object": label, "action": "unchanged"})
        _say(fmt, f"{label} unchanged", label)
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
    if comparison.blocked:
        raise NotApplied(
            "; ".join(f"{label} {why}" for label, why in comparison.blocked.items()) + "; nothing was applied"
        )
    if comparison.fixed:
        raise NotApplied(
            "; ".join(
                f"{label}: {', '.join(t.lstrip('~ ') for t in lines)}" for label, lines in comparison.fixed.items()
            )
            + "; nothing was applied"
        )
    # The server checks everything before the first operation starts: all of the file, or none.
    refusals = plan_with_server(client, comparison)
    if refusals:
        raise refused(refusals)
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


@click.command(cls=Command, short_help="Show how manifest files differ from what exists.")
@filename_options
@click.pass_context
def diff_command(ctx: click.Context, paths: tuple[str, ...], recursive: bool) -> None:
    """Show how FILE differs from what exists, and what apply would do about it: `+` new objects,
    `~`/`+`/`-` fields, `!` fields that cannot change in place, and the operation apply would start.
    The server checks each operation (dryRun) as apply does, so a change apply would refuse (a
    downgrade, a busy cluster) is shown refused here too. Exit 0: no differences, 1: differences."""
    plan = manifests.load_plan(paths, recursive=recursive)
    _notes(plan)
    client = target.client(ctx)
    comparison = compare(client, plan)
    refusals = dict(plan_with_server(client, comparison))
    for body in comparison.creates:
        click.echo(
            f"+ awscluster/{body['cluster']['metadata']['name']} (new, with {len(body['nodePools'])} node pools)"
        )
    for pool in comparison.new_pools:
        click.echo(f"+ awsnodepool/{pool['spec']['clusterName']}/{pool['metadata']['name']} (new)")
    _print_changes(comparison)
    for label, why in comparison.blocked.items():
        click.echo(f"! {label} {why}")
    for action in comparison.updates:
        if action.label in refusals:
            continue
        if action.verb != "creating":
            click.echo(f"{action.label}: apply would start {action.verb} ({'; '.join(action.describe)})")
    for label, exc in refusals.items():
        click.echo(f"! {label}: apply would refuse it: {exc.one_line()}")
    if comparison.differs:
        ctx.exit(1)


diff_command.name = "diff"
