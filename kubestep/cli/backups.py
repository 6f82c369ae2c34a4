"""`kubestep backup cluster NAME`: ask the cluster's etcd leader for a backup now
(`kubestep get backups CLUSTER` lists them); `kubestep restore cluster NAME --from BACKUP`:
restore the cluster's etcd from one of them."""

from __future__ import annotations

import click

from kubestep.cli import kinds, target
from kubestep.cli.base import Command, Group
from kubestep.cli.options import timeout_option
from kubestep.cli.waiting import wait_for


@click.group(cls=Group)
def backup() -> None:
    """Take etcd backups now (scheduled ones follow the cluster's spec.backup)."""


@backup.command("cluster", cls=Command)
@click.argument("name")
@click.pass_context
def backup_cluster(ctx: click.Context, name: str) -> None:
    """Ask the cluster's etcd leader for a snapshot now: it uploads it to the service's backup
    bucket within a minute; `kubestep get backups NAME` lists it."""
    kinds.check_name("cluster", name)
    answer = target.client(ctx).backup_cluster(name)
    click.echo(f"awscluster/{name} backup requested at {answer['requestedAt']}: {answer['message']}")


@click.group(cls=Group)
def restore() -> None:
    """Restore a cluster's etcd from one of its backups."""


@restore.command("cluster", cls=Command)
@click.argument("name")
@click.option(
    "--from",
    "backup_id",
    required=True,
    metavar="BACKUP",
    help="The backup's id (`kubestep get backups NAME`), or UID/ID; another cluster incarnation's is refused.",
)
@click.option("--dry-run", is_flag=True, help="Show which replicas stop and which snapshot comes back; change nothing.")
@click.option("--wait/--no-wait", default=False, help="Wait until the cluster is RUNNING on the restored etcd.")
@timeout_option()
@click.pass_context
def restore_cluster(ctx: click.Context, name: str, backup_id: str, dry_run: bool, wait: bool, timeout: float) -> None:
    """Restore the cluster's etcd from BACKUP (RestoreCluster): the control plane stops (the API is
    unavailable), every replica restores the snapshot on its etcd volume with a new cluster
    token, each passes the health gate, nodes launched after the snapshot are replaced.
    Everything written to the cluster since the snapshot is lost."""
    kinds.check_name("cluster", name)
    client = target.client(ctx)
    if dry_run:
        plan = client.restore_cluster(name, backup_id, dry_run=True)
        snapshot = plan["backup"]
        click.echo(
            f"awscluster/{name} would be restored from backup {snapshot['backupId']} (taken {snapshot['takenAt']}, "
            f"etcd revision {snapshot['revision']}, {snapshot['size']} bytes, Kubernetes "
            f"{snapshot.get('kubernetesVersion') or '?'}; {snapshot['location']})"
        )
        for replica in plan["replicas"]:
            click.echo(
                f"  replica {replica['replica']}: {replica.get('instanceId') or 'no instance'} stops "
                f"({replica.get('autoScalingGroup')}); etcd volume {replica.get('etcdVolume')} kept and restored"
            )
        click.echo(f"  nodes: {plan['nodes']}")
        click.echo(f"  {plan['message']}")
        click.echo("dry run: nothing was changed")
        return
    operation = client.restore_cluster(name, backup_id)
    click.echo(f"awscluster/{name} restoring from backup {backup_id} (operation {operation['id']})")
    if not wait:
        return
    wait_for(client, operation, timeout)
    click.echo(f"awscluster/{name} restored from backup {backup_id}: RUNNING")


COMMANDS = [backup, restore]
