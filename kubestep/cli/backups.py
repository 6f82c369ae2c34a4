"""`kubestep backup cluster NAME`: ask the cluster's etcd leader for a backup now
(`kubestep get backups CLUSTER` lists them)."""

from __future__ import annotations

import click

from kubestep.cli import kinds, target
from kubestep.cli.base import Command, Group


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


COMMANDS = [backup]
