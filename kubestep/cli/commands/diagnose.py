"""`kubestep diagnose snapshot CLUSTER`: a tarball of what support needs about a cluster (see
`kubestep.diagnose`), and a summary of what looks wrong."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kubestep import diagnose as snapshots
from kubestep import files
from kubestep.cli import target
from kubestep.cli.base import Group
from kubestep.cli.errors import CliError, InputError
from kubestep.cli.target import Target, read_local_state


@click.group(cls=Group)
def diagnose() -> None:
    """Gather what support needs to troubleshoot a cluster."""


def aws_clients(resolved: Target, api_region: str | None) -> Callable[[str], Any]:
    """boto3 clients with the CLI's own AWS access: the emulator of the local runtime found
    through its state file, else the credentials and region requests are signed with (for the
    local runtime named by KUBESTEP_API_URL, `kubestep local env` also sets AWS_ENDPOINT_URL)."""
    import boto3

    cache: dict[str, Any] = {}
    local = read_local_state() if not resolved.sign else None
    if local and local.get("endpoint_url"):
        options: dict[str, Any] = {
            "endpoint_url": local["endpoint_url"],
            "region_name": local.get("region") or "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }

        def make(service: str) -> Any:
            return boto3.client(service, **options)
    else:
        session = boto3.Session(profile_name=resolved.profile, region_name=resolved.region or api_region)

        def make(service: str) -> Any:
            return session.client(service)

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = make(service)
        return cache[service]

    return client


@diagnose.command("snapshot", short_help="Write a tarball of a cluster's records, events, operations, resources.")
@click.argument("cluster")
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The tarball to write (never overwritten) [default: ./kubestep-diagnose-CLUSTER-TIME.tar.gz].",
)
@click.option(
    "--operations",
    type=click.IntRange(1, snapshots.MAX_OPERATIONS),
    default=snapshots.DEFAULT_OPERATIONS,
    show_default=True,
    help="How many of the cluster's latest operations to include, with their execution histories.",
)
@click.option(
    "--aws/--no-aws",
    "use_aws",
    default=True,
    help="Also read the Step Functions histories and the cluster's AWS resources by tag with your AWS access "
    "(--no-aws: only what the management API serves).",
)
@click.pass_context
def snapshot(ctx: click.Context, cluster: str, output: Path | None, operations: int, use_aws: bool) -> None:
    """Write a .tar.gz with the cluster's record, node pools, etcd configuration (members, no
    secrets), events, its last operations with their steps and execution histories, an
    inventory of its AWS resources by tag, and summary.md / summary.json naming what looks
    wrong (failed operations and their failing step, Warning events, ERROR or DEGRADED phase,
    unhealthy replicas, drift). Secret material is scrubbed before anything is written. Never
    overwrites a file, nor writes through a symlink or onto a device (exit 2)."""
    if output is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        output = Path(f"kubestep-diagnose-{cluster}-{stamp}.tar.gz")
    try:
        files.check_new(output, "--output")  # before anything is read: a file, link or device there is kept
    except files.UnsafeTarget as exc:
        raise InputError(str(exc)) from None
    resolved = target.target_of(ctx)
    client = target.client(ctx)
    aws = aws_clients(resolved, client.region) if use_aws else None
    taken = snapshots.collect(client, cluster, operations=operations, aws=aws)
    if (
        "cluster.json" not in taken.files
        and not taken.files.get("events.json")
        and not taken.files.get("operations.json")
    ):
        reasons = "; ".join(taken.problems) or "nothing found"
        raise CliError(f"nothing to snapshot for cluster {cluster!r}: {reasons}")
    try:
        names = snapshots.write_tarball(taken, output)
    except files.UnsafeTarget as exc:  # something appeared there while the snapshot was taken
        raise InputError(str(exc)) from None
    click.echo(f"wrote {output} ({len(names)} files, {output.stat().st_size // 1024 + 1} KiB)")
    for finding in taken.findings:
        click.echo(
            f"  {finding.severity.upper():8} {finding.title}" + (f": {finding.detail}" if finding.detail else "")
        )
    if not taken.findings:
        click.echo("  nothing looks wrong")
    for problem in taken.problems:
        click.echo(f"  not collected: {problem}")
