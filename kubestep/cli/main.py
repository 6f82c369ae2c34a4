"""`kubestep` — the command-line tool (the `anthos-gke` analogue).

Errors are one line on stderr; exit code 1 for a failed operation, 2 for bad usage or input."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from kubestep.api.client import ApiClient, ApiError
from kubestep.cli import manifests, output
from kubestep.cli.target import Target
from kubestep.errors import InvalidSpec

FORMATS = click.Choice(["table", "json", "yaml"])


class KubestepGroup(click.Group):
    """Turns expected errors into one line and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            click.echo(f"error: {exc.one_line()}", err=True)
            sys.exit(2 if exc.status in (400, 413, 422) else 1)
        except InvalidSpec as exc:
            click.echo(f"error: invalid input: {exc}", err=True)
            sys.exit(2)
        except OperationFailed as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


class OperationFailed(Exception):
    pass


@click.group(cls=KubestepGroup)
@click.option("--endpoint", envvar="KUBESTEP_API_URL", help="Management API URL (the stack's ApiUrl output).")
@click.option("--region", envvar="AWS_REGION", help="AWS region for SigV4 signing.")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS credentials profile.")
@click.version_option(package_name="kubestep")
@click.pass_context
def main(ctx: click.Context, endpoint: str | None, region: str | None, profile: str | None) -> None:
    """Kubernetes clusters on AWS, run by a serverless management service on Step Functions."""
    ctx.obj = Target(endpoint, region, profile)


def _client(ctx: click.Context) -> ApiClient:
    return ctx.find_object(Target).client()


def wait_for(client: ApiClient, operation: dict, timeout: float, *, quiet: bool = False) -> dict:
    """Follow an operation to its end, printing the cluster's new events as they happen."""
    seen: set[tuple] = set()
    cluster = operation.get("target")
    deadline = time.monotonic() + timeout
    while True:
        current = client.operation(operation["id"])
        if cluster and not quiet:
            try:
                events = client.events(cluster)
            except ApiError:
                events = []
            for event in events:
                key = (event["reason"], event["message"], event.get("count"))
                if event.get("operationId") == operation["id"] and key not in seen:
                    seen.add(key)
                    click.echo(f"  {event['type']:<7} {event['reason']}: {event['message']}", err=True)
        if current["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise OperationFailed(f"operation {operation['id']} still running after {timeout:.0f}s")
        time.sleep(1.0)
    if current["status"] != "SUCCEEDED":
        reason = f"{current.get('error') or ''} {current.get('cause') or ''}".strip()
        raise OperationFailed(f"operation {current['id']} {current['status']}: {reason}")
    return current


# ---------------------------------------------------------------- apply / get / describe / delete


@main.command()
@click.option("-f", "--filename", "path", required=True, help="Manifest file (YAML or JSON; '-' for stdin).")
@click.option("--wait/--no-wait", default=False, help="Wait for the operations to finish.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait with --wait.")
@click.pass_context
def apply(ctx: click.Context, path: str, wait: bool, timeout: float) -> None:
    """Create the clusters (with their node pools) and node pools in FILE."""
    plan = manifests.plan(manifests.read_documents(path), path)
    client = _client(ctx)
    started = []
    for body in plan.clusters:
        name = body["cluster"]["metadata"]["name"]
        try:
            existing = client.get_cluster(name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            existing = None
        if existing is not None:
            phase = existing["status"]["phase"]
            hint = f"; `kubestep delete cluster {name}` first to create it again" if phase == "ERROR" else ""
            click.echo(f"awscluster/{name} exists (phase {phase}); unchanged{hint}")
            continue
        operation = client.create_cluster(body)
        click.echo(f"awscluster/{name} creating (operation {operation['id']})")
        started.append(operation)
    for pool in plan.node_pools:
        operation = client.create_node_pool(pool["spec"]["clusterName"], pool)
        click.echo(f"awsnodepool/{pool['metadata']['name']} creating (operation {operation['id']})")
        started.append(operation)
    if wait:
        for operation in started:
            wait_for(client, operation, timeout)
            click.echo(f"operation {operation['id']} succeeded")


@main.group()
def get() -> None:
    """List resources."""


@get.command("clusters")
@click.option("-o", "--output", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def get_clusters(ctx: click.Context, fmt: str) -> None:
    """List clusters."""
    clusters = _client(ctx).list_clusters()
    output.emit(clusters, fmt, output.cluster_table)


@get.command("nodepools")
@click.argument("cluster")
@click.option("-o", "--output", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def get_node_pools(ctx: click.Context, cluster: str, fmt: str) -> None:
    """List a cluster's node pools."""
    output.emit(_client(ctx).list_node_pools(cluster), fmt, output.node_pool_table)


@main.group()
def describe() -> None:
    """Show one resource in detail."""


@describe.command("cluster")
@click.argument("name")
@click.option("-o", "--output", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def describe_cluster(ctx: click.Context, name: str, fmt: str) -> None:
    """Phase, version, endpoint, replicas, node pools, recent events, current operation."""
    client = _client(ctx)
    cluster = client.get_cluster(name)
    events = client.events(name)
    if fmt != "table":
        click.echo(manifests.dumps({**cluster, "events": events}, fmt))
        return
    operation = None
    if cluster["status"].get("currentOperation"):
        try:
            operation = client.operation(cluster["status"]["currentOperation"])
        except ApiError:
            operation = None
    output.describe_cluster(cluster, events, operation)


@main.group()
def delete() -> None:
    """Delete resources."""


@delete.command("cluster")
@click.argument("name")
@click.option("--keep-etcd-volumes", is_flag=True, help="Keep the replicas' etcd volumes.")
@click.option("--wait/--no-wait", default=False)
@click.option("--timeout", default=3600.0, show_default=True)
@click.pass_context
def delete_cluster(ctx: click.Context, name: str, keep_etcd_volumes: bool, wait: bool, timeout: float) -> None:
    """Delete a cluster and every AWS resource it owns."""
    client = _client(ctx)
    operation = client.delete_cluster(name, keep_etcd_volumes=keep_etcd_volumes)
    click.echo(f"awscluster/{name} deleting (operation {operation['id']})")
    if wait:
        wait_for(client, operation, timeout)
        click.echo(f"awscluster/{name} deleted")


@main.command()
@click.argument("cluster")
@click.option("-o", "--output", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def events(ctx: click.Context, cluster: str, fmt: str) -> None:
    """A cluster's events (they outlive the cluster)."""
    output.emit(_client(ctx).events(cluster), fmt, output.event_table)


@main.group()
def operations() -> None:
    """Follow operations."""


@operations.command("wait")
@click.argument("operation_id")
@click.option("--timeout", default=3600.0, show_default=True)
@click.pass_context
def operations_wait(ctx: click.Context, operation_id: str, timeout: float) -> None:
    """Wait for an operation; exit 1 if it fails."""
    client = _client(ctx)
    result = wait_for(client, client.operation(operation_id), timeout)
    click.echo(f"operation {result['id']} {result['status']}")


@operations.command("get")
@click.argument("operation_id")
@click.option("-o", "--output", "fmt", type=FORMATS, default="yaml", show_default=True)
@click.pass_context
def operations_get(ctx: click.Context, operation_id: str, fmt: str) -> None:
    """Show an operation."""
    click.echo(manifests.dumps(_client(ctx).operation(operation_id), "json" if fmt == "json" else "yaml"))


# Local runtime and demo commands live in their own modules.
from kubestep.cli import credentials as _credentials  # noqa: E402
from kubestep.cli import demo as _demo  # noqa: E402
from kubestep.cli import local as _local  # noqa: E402

main.add_command(_local.local)
main.add_command(_demo.demo)
for _command in _credentials.COMMANDS:
    main.add_command(_command)
from kubestep.cli import reliability as _reliability  # noqa: E402 - repair, sweep (issue 11)

for _command in _reliability.COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
