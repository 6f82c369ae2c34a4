"""`kubestep delete cluster|nodepool NAME...` and `kubestep delete -f FILE`."""

from __future__ import annotations

from collections.abc import Callable

import click

from kubestep.api.client import ApiClient, ApiError
from kubestep.cli import kinds, manifests, target
from kubestep.cli.base import Command
from kubestep.cli.commands.get import cluster_option, complete_kind, complete_name
from kubestep.cli.errors import INPUT_STATUSES, CliError, InputError
from kubestep.cli.kinds import Ref
from kubestep.cli.options import output_option, timeout_option
from kubestep.cli.waiting import wait_for


def _delete_one(
    client: ApiClient, kind: str, ref: Ref, *, keep_etcd_volumes: bool, delete_backups: bool, dry_run: bool, fmt: str
) -> tuple[str, dict | None]:
    def echo(label: str, text: str) -> None:
        click.echo(label if fmt == "name" else f"{label} {text}")

    if kind == "backup":
        return _delete_backups(client, ref, dry_run=dry_run, echo=echo)
    if kind == "schedule":
        label = f"schedule/{ref.name}"
        if dry_run:
            client.get_schedule(ref.name or "")
            echo(label, "cancelled (dry run)")
            return label, None
        client.cancel_schedule(ref.name or "")
        echo(label, "cancelled")
        return label, None
    if kind == "cluster":
        label = f"awscluster/{ref.name}"
        answer = client.delete_cluster(
            ref.name or "", keep_etcd_volumes=keep_etcd_volumes, dry_run=dry_run, delete_backups=delete_backups
        )
        if dry_run:
            backups = answer.get("backups") or 0
            fate = "would go with it" if delete_backups else "would be kept (--delete-backups deletes them)"
            echo(
                label,
                f"deleted (server dry run: nothing was started; {len(answer.get('nodePools') or [])} node "
                f"pools and {len(answer.get('resources') or {})} recorded AWS resources would go; "
                f"{backups} etcd backups {fate})",
            )
            return label, None
        echo(label, f"deleting (operation {answer['id']})")
        return label, answer
    label = f"awsnodepool/{ref.cluster}/{ref.name}"
    if dry_run:
        client.delete_node_pool(ref.cluster or "", ref.name or "", dry_run=True)
        echo(label, "deleted (server dry run: nothing was started)")
        return label, None
    answer = client.delete_node_pool(ref.cluster or "", ref.name or "")
    echo(label, f"deleting (operation {answer['id']})")
    return label, answer


def _delete_backups(
    client: ApiClient, ref: Ref, *, dry_run: bool, echo: Callable[[str, str], None]
) -> tuple[str, dict | None]:
    """`delete backup UID/ID -c CLUSTER` (one), `delete backups UID -c CLUSTER` (every one of the
    deleted incarnation UID)."""
    uid, _, backup_id = (ref.name or "").partition("/")
    label = f"backup/{ref.name}"
    if dry_run:
        listed = [b for b in client.list_backups(ref.cluster or "") if b["uid"] == uid and b.get("clusterDeleted")]
        chosen = [b for b in listed if not backup_id or b["backupId"] == backup_id]
        if not chosen:
            raise InputError(f"{ref.name}: cluster {ref.cluster} has no such backup of a deleted incarnation")
        echo(label, f"deleted (dry run: {len(chosen)} backups and every version of their objects would go)")
        return label, None
    answer = client.delete_backups(ref.cluster or "", uid, backup_id or None)
    echo(label, f"deleting (operation {answer['id']})")
    return label, answer


def _from_files(paths: tuple[str, ...], recursive: bool) -> list[tuple[str, Ref]]:
    """(kind, ref) for each object of the files; a node pool whose cluster the files also
    delete goes with its cluster."""
    documents, notes = manifests.identify(manifests.load_paths(paths, recursive=recursive))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    clusters = {doc.name for doc in documents if doc.kind == "AWSCluster"}
    targets: list[tuple[str, Ref]] = []
    seen = set()
    for doc in documents:
        if doc.kind == "AWSCluster":
            key = ("cluster", Ref(None, doc.name))
        elif doc.cluster_name in clusters:
            continue
        else:
            key = ("nodepool", Ref(doc.cluster_name, doc.name))
        if key not in seen:
            seen.add(key)
            targets.append(key)
    return targets


def backup_ref(reference: str, cluster: str | None) -> Ref:
    """A deleted incarnation's backups as `delete backup` names them: UID/ID or UID, with -c."""
    if not cluster:
        raise InputError("backups belong to a cluster: kubestep delete backup UID/ID -c CLUSTER")
    kinds.check_name("cluster", cluster)
    from kubestep import backup_deletion  # the domain's store and models: `delete backup` only

    problem = backup_deletion.reference_problem(reference)
    if problem:
        raise InputError(f"{reference[:80]!r} is not a backup reference: {problem}")
    return Ref(cluster, reference)


@click.command(cls=Command, short_help="Delete clusters or node pools, cancel schedules (by name or -f FILE).")
@click.argument("kind", metavar="[TYPE]", required=False, shell_complete=complete_kind)
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=complete_name)
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    metavar="FILE",
    help="Delete the clusters and node pools named in FILE (a directory: its .yaml, .yml and .json files; "
    "repeatable; '-' reads stdin).",
)
@click.option("-R", "--recursive", is_flag=True, help="With -f DIR, its subdirectories' files too.")
@cluster_option()
@click.option("--keep-etcd-volumes", is_flag=True, help="Keep the replicas' etcd volumes (for a restore).")
@click.option(
    "--delete-backups",
    is_flag=True,
    help="clusters: delete their etcd backups too (every object version and the records); by default they "
    "outlive the cluster until their retention ends (kubestep get backups NAME).",
)
@click.option("--ignore-not-found", is_flag=True, help="Treat a resource that does not exist as deleted.")
@click.option("--dry-run", is_flag=True, help="Check on the server what would be deleted; delete nothing.")
@click.option("--wait/--no-wait", default=False, help="Follow the operations, step by step, to their end.")
@timeout_option("1h", "How long --wait waits")
@output_option(("text", "name"))
@click.pass_context
def delete(
    ctx: click.Context,
    kind: str | None,
    names: tuple[str, ...],
    paths: tuple[str, ...],
    recursive: bool,
    cluster: str | None,
    keep_etcd_volumes: bool,
    delete_backups: bool,
    ignore_not_found: bool,
    dry_run: bool,
    wait: bool,
    timeout: float,
    fmt: str,
) -> None:
    """Delete clusters (and every AWS resource they own, including what Kubernetes created under
    kubernetes.io/cluster/<uid>) or node pools (their nodes drained through the lifecycle hook
    first), or cancel one-off upgrade schedules. -f FILE deletes what the manifests name (a node
    pool whose cluster the files also name goes with it). --dry-run: the server says what would go.

    \b
    Examples:
      kubestep delete cluster prod --wait
      kubestep delete cluster scratch --delete-backups
      kubestep delete backup k3x9a2b1/20261205T101500Z -c scratch   # one of a deleted cluster's
      kubestep delete backups k3x9a2b1 -c scratch                   # every one it left
      kubestep delete nodepool prod/batch
      kubestep delete schedule svc-upgrade-1a2b3c4d
      kubestep delete -f examples/cluster-ha.yaml
    """
    if paths and (kind or names):
        raise InputError("name resources, or give -f FILE, not both")
    if paths:
        targets = _from_files(paths, recursive)
    else:
        if not kind or not names:
            raise InputError("name what to delete: kubestep delete cluster NAME, or kubestep delete -f FILE")
        resource = kinds.kind_named(kind)
        if resource.singular == "operation":
            raise InputError("operations are not deleted; cancel a running one: kubestep operations cancel ID")
        if resource.singular not in ("cluster", "nodepool", "schedule", "backup"):
            raise InputError(f"{resource.plural} cannot be deleted")
        if resource.singular == "backup":
            targets = [("backup", backup_ref(name, cluster)) for name in names]
        else:
            targets = [(resource.singular, ref) for ref in kinds.refs(resource, names, cluster)]
    client = target.client(ctx)
    failures: list[ApiError] = []
    started = []
    for kind_name, ref in targets:
        try:
            label, operation = _delete_one(
                client,
                kind_name,
                ref,
                keep_etcd_volumes=keep_etcd_volumes,
                delete_backups=delete_backups,
                dry_run=dry_run,
                fmt=fmt,
            )
        except ApiError as exc:
            if exc.status == 404 and ignore_not_found:
                continue
            failures.append(exc)
            continue
        if operation:
            started.append((label, operation))
    if wait:
        for label, operation in started:
            done = wait_for(client, operation, timeout)
            if fmt == "text":
                click.echo(f"{label} deleted: operation {done['id']} {done['status']}")
    if failures:
        error = CliError("; ".join(f.one_line() for f in failures))
        if all(f.status in INPUT_STATUSES for f in failures):
            error.exit_code = 2
        raise error
