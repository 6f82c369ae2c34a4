"""`kubestep demo`: the main job in one command, on the embedded emulator. Start the runtime,
deploy the management service, create the HA cluster of examples/ with live progress, print
its AWS resources, delete it, and print what each operation cost."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubestep.api.client import ApiClient
from kubestep.cli import manifests, output, progress
from kubestep.cli.options import POSITIVE_TIME_SCALE
from kubestep.flow.steps import human

if TYPE_CHECKING:
    from rich.table import Table

# The resource kinds (kubestep.resources, kubestep.inventory) and rich's tables are imported
# when the demo runs: `kubestep -h` imports this module too.

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster-ha.yaml"


def _section(title: str) -> None:
    click.echo(f"\n== {title}")


def resources_table(found: dict[str, list[dict]]) -> Table:
    """Every resource of the inventory, kind by kind in the kinds' list order
    (`kubestep.resources.kinds`)."""
    from rich.table import Table

    from kubestep.resources import kinds

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("KIND", "NAME / ID", "DETAILS"):
        table.add_column(column)
    for kind in kinds.KINDS:
        for resource in sorted(found.get(kind.name, []), key=lambda r: str(r.get("name") or r["id"])):
            name = resource.get("name") or resource["id"]
            details = " ".join(f"{key}={_shown(value)}" for key, value in resource.items() if key not in ("id", "name"))
            table.add_row(kind.label or kind.name, str(name), details)
    return table


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) if len(value) <= 3 else f"{len(value)} items"
    return str(value)


@click.command(short_help="Create and delete an HA cluster on a fresh emulator, step by step.")
@click.option("--keep", is_flag=True, help="Keep the cluster and the runtime running (Ctrl-C stops).")
@click.option(
    "--time-scale",
    type=POSITIVE_TIME_SCALE,
    default=0.02,
    show_default=True,
    help="Factor for waits, retries and boots.",
)
@click.option("-f", "--filename", "path", default=str(EXAMPLE), show_default=True, help="Cluster manifest.")
@click.option(
    "--latency",
    type=click.Choice(("instant", "realistic", "slow")),
    default="instant",
    show_default=True,
    help="How long AWS keeps resources in their intermediate states (compressed by --time-scale).",
)
def demo(keep: bool, time_scale: float, path: str, latency: str) -> None:
    """Everything in one command on a fresh emulator of its own: deploy the management service,
    provision its network, create the HA cluster of examples/cluster-ha.yaml step by step, print
    its AWS resources, delete it, check nothing is left, and print each operation's wall time,
    state transitions, Lambda invocations and AWS API calls. --keep leaves the cluster and the
    runtime running."""
    from kubestep.cli.local import require_local_runtime, running_runtime

    require_local_runtime("demo")
    if keep and (other := running_runtime()):
        from kubestep_local.home import describe_runtime

        # --keep makes the demo's runtime the one `kubestep` talks to; one per home.
        click.echo(
            f"error: a local runtime is already running ({describe_runtime(other)}); `kubestep local down` stops it",
            err=True,
        )
        raise SystemExit(1)
    from rich.table import Table

    from kubestep import inventory
    from kubestep_local.runtime import LocalRuntime, RuntimeConfig

    plan = manifests.plan(manifests.read_documents(path), path)
    if len(plan.clusters) != 1:
        raise click.UsageError(f"{path} must hold exactly one AWSCluster")
    body = plan.clusters[0]
    name = body["cluster"]["metadata"]["name"]
    wall = time.monotonic()
    # Its own fresh emulator on free ports, whatever `kubestep local up` keeps running or saved.
    runtime = LocalRuntime(RuntimeConfig(port=0, api_port=0, time_scale=time_scale, latency=latency))
    summary: list[tuple[str, str, float, dict]] = []
    try:
        _section("Starting the embedded AWS emulator and deploying the management service")
        t0 = time.monotonic()
        runtime.start()
        outputs = runtime.deploy()
        click.echo(
            f"  stack deployed in {time.monotonic() - t0:.1f}s: {len(outputs)} outputs, "
            f"AWS endpoint {runtime.endpoint_url}, API {runtime.api_url}"
        )
        sfn = runtime.boto3_client("stepfunctions")

        _section("ProvisionNetwork: the management service's dedicated VPC")
        t0 = time.monotonic()
        description = runtime.provision_network(wait=False)
        description = progress.follow(sfn, description["executionArn"], kind="ProvisionNetwork", target="network")
        summary.append(
            ("ProvisionNetwork", description["status"], time.monotonic() - t0, {"arn": description["executionArn"]})
        )
        if description["status"] != "SUCCEEDED":
            raise click.ClickException(f"ProvisionNetwork {description['status']}: {description.get('cause')}")

        api = ApiClient(runtime.api_url, sign=False)
        _section(f"CreateCluster {name}: POST /v1/clusters")
        t0 = time.monotonic()
        operation = api.create_cluster(body)
        click.echo(f"  operation {operation['id']} (execution {operation['executionArn']})")
        replicas = len(body["cluster"]["spec"]["controlPlane"].get("availabilityZones") or []) or None
        totals = {"nodePool": len(body["nodePools"]), **({"replica": replicas} if replicas else {})}
        description = progress.follow(sfn, operation["executionArn"], kind="CreateCluster", target=name, totals=totals)
        summary.append(
            ("CreateCluster", description["status"], time.monotonic() - t0, {"arn": operation["executionArn"]})
        )
        if description["status"] != "SUCCEEDED":
            raise click.ClickException(f"CreateCluster {description['status']}: {description.get('cause')}")

        cluster = api.get_cluster(name)
        status = cluster["status"]
        _section(
            f"Cluster {name}: {status['phase']}, Kubernetes {status['version']}, endpoint https://{status['endpoint']}:443"
        )
        found = inventory.cluster_resources(status["uid"], runtime.boto3_client)
        output.console().print(resources_table(found))

        if keep:
            runtime.write_state_file()
            click.echo(
                f"\n--keep: the runtime keeps running (API {runtime.api_url}); "
                "try `kubestep get clusters` in another terminal; Ctrl-C stops it."
            )
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
            return

        _section(f"DeleteCluster {name}: DELETE /v1/clusters/{name}")
        t0 = time.monotonic()
        operation = api.delete_cluster(name)
        description = progress.follow(sfn, operation["executionArn"], kind="DeleteCluster", target=name)
        summary.append(
            ("DeleteCluster", description["status"], time.monotonic() - t0, {"arn": operation["executionArn"]})
        )
        if description["status"] != "SUCCEEDED":
            raise click.ClickException(f"DeleteCluster {description['status']}: {description.get('cause')}")
        left = inventory.count(inventory.cluster_resources(status["uid"], runtime.boto3_client))
        click.echo(f"  resources left with uid {status['uid']}: {left}")
        if left:
            raise click.ClickException(f"{left} resources of the cluster were left behind")

        _section("Summary")
        stats = runtime.stats()
        table = Table(box=None, pad_edge=False, header_style="bold")
        columns = ("OPERATION", "STATUS", "WALL TIME", "STATE TRANSITIONS", "LAMBDA INVOCATIONS", "AWS API CALLS")
        for column in (*columns, "MODELLED AWS TIME"):
            table.add_column(column)
        for kind, state, seconds, ref in summary:
            s = stats.get(ref["arn"])
            modelled = runtime.modelled_time(ref["arn"])["modelledSeconds"]
            table.add_row(
                kind,
                state,
                f"{seconds:.1f}s",
                str(s.state_transitions if s else "-"),
                str(s.lambda_invocations if s else "-"),
                str(s.aws_api_calls if s else "-"),
                human(modelled),
            )
        output.console().print(table)
        click.echo(
            f"\ntotal wall time {time.monotonic() - wall:.1f}s (time scale {time_scale}: "
            f"a 20 s instance boot took {20 * time_scale:.1f}s)"
        )
        click.echo(
            f"modelled AWS time: what the waits would take on AWS (latency profile {latency}; Lambda run time "
            "as measured, every wait divided by the time scale)"
        )
        for what, totals in runtime.latency.report().items():
            click.echo(f"  {what}: {int(totals['count'])} x {human(totals['eachSeconds'])}")
    finally:
        runtime.stop()
