"""`kubestep repair cluster NAME` and `kubestep sweep`: put a cluster back after hand
changes, and find (with `--yes`, delete) what clusters whose record is gone left behind."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import click

from kubestep.cli import output, target
from kubestep.cli.base import Command, Group
from kubestep.cli.options import Duration, output_option, timeout_option
from kubestep.cli.waiting import wait_for

if TYPE_CHECKING:  # rich is imported when a table is printed
    from rich.table import Table

# `0s` is a grace period too: everything orphaned, whatever its age.
GRACE_PERIOD = Duration(minimum=0)


@click.group(cls=Group)
def repair() -> None:
    """Put resources back as kubestep made them."""


@repair.command("cluster", cls=Command)
@click.argument("name")
@click.option(
    "--detect-only", is_flag=True, help="Only find and record the drift (`kubestep describe` shows it); change nothing."
)
@click.option("--wait/--no-wait", default=False, help="Wait for the repair and print what it changed.")
@timeout_option()
@click.pass_context
def repair_cluster(ctx: click.Context, name: str, detect_only: bool, wait: bool, timeout: float) -> None:
    """Put back what people deleted or changed by hand (RepairCluster): the cluster's drift is
    recorded (`kubestep describe` shows it), what is missing is made again, changed groups and rules
    restored, instances on an outdated launch template replaced one replica at a time; --wait
    prints what it repaired. --detect-only: record the drift, change nothing."""
    client = target.client(ctx)
    operation = client.repair_cluster(name, detect_only=detect_only)
    doing = "checking for drift" if detect_only else "repairing"
    click.echo(f"awscluster/{name} {doing} (operation {operation['id']})")
    if not wait:
        return
    done = wait_for(client, operation, timeout)
    result = done.get("result") or {}
    if detect_only:
        for key, what in (result.get("drift") or {}).items():
            click.echo(f"  drift  {key}: {what}")
        click.echo(f"awscluster/{name}: {len(result.get('drift') or {})} differences; nothing was changed")
        return
    repaired, remaining = result.get("repaired") or {}, result.get("remaining") or {}
    if not repaired and not remaining:
        click.echo(f"awscluster/{name}: nothing had drifted")
    for key, what in repaired.items():
        click.echo(f"  repaired  {key}: {what}")
    for key, what in remaining.items():
        click.echo(f"  still different  {key}: {what}")
    click.echo(f"awscluster/{name} repaired")


def _age(value: int | None) -> str:
    if value is None:
        return "-"
    hours, rest = divmod(value, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _counts(resources: dict[str, list[str]] | None) -> str:
    return ", ".join(f"{len(ids)} {kind}" for kind, ids in (resources or {}).items()) or "-"


def orphan_table(result: dict) -> Table:
    """One row per orphaned uid: what is deletable, what a delete kept (never swept), and what this
    sweep did with it — deleted (counted), left (and why), kept for its age, or would delete."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("UID", "CLUSTER", "RESOURCES", "RETAINED", "AGE", "ACTION"):
        table.add_column(column)
    deleted, dry_run = set(result.get("deleted") or []), result.get("dryRun", True)
    deleted_resources, left = result.get("deletedResources") or {}, result.get("left") or {}
    for orphan in result.get("orphans") or []:
        uid = orphan["uid"]
        if uid in left:
            action = f"deleted {_counts(deleted_resources.get(uid))}; left {_counts(left[uid].get('resources'))}: "
            action += left[uid].get("reason", "")
        elif uid in deleted:
            action = f"deleted {_counts(deleted_resources.get(uid) or orphan['resources'])}"
        elif not orphan["old"]:
            action = "kept (younger than the grace period)" if orphan.get("count", 1) else "nothing to delete"
        else:
            action = "would delete (--yes)" if dry_run else "left (see the operation)"
        table.add_row(
            uid,
            orphan.get("clusterName") or "-",
            _counts(orphan["resources"]),
            _counts(orphan.get("retained")),
            _age(orphan.get("ageSeconds")),
            action,
        )
    return table


@click.command(cls=Command)
@click.option("--yes", is_flag=True, help="Delete them (default: a dry run that lists them).")
@click.option(
    "--grace-period",
    type=GRACE_PERIOD,
    default="1h",
    show_default=True,
    help="Only what is older is deleted (30m, 1h30m, 2d, 0s).",
)
@output_option(("text", "json", "yaml"))
@timeout_option()
@click.pass_context
def sweep(ctx: click.Context, yes: bool, grace_period: float, fmt: str, timeout: float) -> None:
    """Resources this management service tagged for clusters whose record is gone (SweepOrphans;
    it also runs daily): a dry run lists them by cluster uid; --yes deletes those older than the
    grace period with DeleteCluster's steps. Etcd volumes kept by `delete cluster
    --keep-etcd-volumes` are listed as retained and never deleted; what AWS gives no creation time
    (security groups, target groups) is aged from when a sweep first saw it."""
    client = target.client(ctx)
    # The API counts whole seconds; a fraction of one more never makes something old sooner.
    operation = client.sweep_orphans(dry_run=not yes, grace_period_seconds=math.ceil(grace_period))
    done = wait_for(client, operation, timeout, progress=False)
    result = done.get("result") or {}
    if fmt != "text":
        click.echo(output.dumps(result, fmt))
        return
    if not result.get("orphans"):
        click.echo("no orphaned resources")
        return
    output.console().print(orphan_table(result))
    if not yes and any(o["old"] for o in result["orphans"]):
        click.echo("dry run: nothing was deleted; `kubestep sweep --yes` deletes what is older than the grace period")


COMMANDS = (repair, sweep)
