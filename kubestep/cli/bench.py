"""`kubestep bench`: the reference operations on a fresh emulator, measured against their lower
bound (kubestep_local/bench.py does the work; this prints it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubestep.cli import output
from kubestep.cli.demo import EXAMPLE
from kubestep.cli.options import POSITIVE_TIME_SCALE
from kubestep.flow.steps import human

if TYPE_CHECKING:  # rich is imported when a table is printed
    from rich.table import Table


@click.command(short_help="Measure the reference operations in the emulator against their lower bound.")
@click.option(
    "--time-scale",
    type=POSITIVE_TIME_SCALE,
    default=0.05,
    show_default=True,
    help="Factor for waits, retries and boots.",
)
@click.option(
    "--latency",
    type=click.Choice(("instant", "realistic", "slow")),
    default="realistic",
    show_default=True,
    help="The latency profile of the reference operations (the concurrent creates run instant).",
)
@click.option("-f", "--filename", "path", default=str(EXAMPLE), show_default=True, help="Cluster manifest.")
@click.option("--out", "out_dir", default="kubestep-bench", show_default=True, help="Directory for the JSON and PNG.")
@click.option(
    "--concurrent",
    "counts",
    default="1,10",
    show_default=True,
    help="How many clusters to create at once, comma-separated (e.g. 1,10,50).",
)
@click.option(
    "--concurrent-time-scale",
    type=POSITIVE_TIME_SCALE,
    default=None,
    help="Time scale of the concurrent creates (default: --time-scale); larger when many creates "
    "slow the emulator past the handlers' scaled deadlines.",
)
def bench(
    time_scale: float, latency: str, path: str, out_dir: str, counts: str, concurrent_time_scale: float | None
) -> None:
    """Run ProvisionNetwork, CreateCluster (examples/cluster-ha.yaml: three replicas, two node
    pools) and DeleteCluster on a fresh emulator and print, per operation, the modelled AWS time
    against its lower bound (the longest chain of AWS waits the workflow must sit through), the
    wall time, state transitions (and the task retries, each billed as one), Lambda invocations and
    GB-seconds, AWS API calls (mutating, read, unfiltered describes) and the cost at list prices;
    then N clusters created at once.
    Writes OUT/bench.json and OUT/create-timeline.png (the create's steps, critical path in red)."""
    from kubestep.cli.local import require_local_runtime

    require_local_runtime("bench")
    try:
        concurrency = tuple(int(n) for n in counts.split(",") if n.strip())
    except ValueError:
        raise click.BadParameter("comma-separated whole numbers, e.g. 1,10,50", param_hint="--concurrent") from None
    if not concurrency or min(concurrency) < 1:
        raise click.BadParameter("each count must be at least 1", param_hint="--concurrent")
    from kubestep_local.bench import run_bench

    result = run_bench(
        manifest=Path(path),
        out_dir=Path(out_dir),
        latency=latency,
        time_scale=time_scale,
        concurrency=concurrency,
        concurrent_time_scale=concurrent_time_scale,
        echo=lambda text: click.echo(text, err=True),
    )
    output.console().print(operations_table(result["operations"]))
    output.console().print(concurrency_table(result["concurrent"]))
    for op in result["operations"]:
        if "rerun" in op:
            rerun = op["rerun"]
            mutated = ", ".join(f"{a} x{n}" for a, n in rerun["mutatingByAction"].items()) or "none"
            steps, count = rerun["steps"], rerun["mutatingCalls"]
            click.echo(f"{op['operation']} re-run ({steps} steps): {count} mutating calls ({mutated})")
        flagged = op["awsApiCalls"]["unfilteredByAction"]
        if flagged:
            click.echo(f"{op['operation']}: unfiltered describes: {', '.join(f'{a} x{n}' for a, n in flagged.items())}")
    click.echo(f"wrote {Path(out_dir) / 'bench.json'} and {Path(out_dir) / result['files']['timeline']}")


def operations_table(operations: list[dict]) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold", title="Reference operations")
    columns = (
        "OPERATION",
        "MODELLED",
        "LOWER BOUND",
        "RATIO",
        "WALL",
        "TRANSITIONS (+RETRIES)",
        "LAMBDA",
        "GB-S",
        "API CALLS (MUT/READ)",
        "UNFILTERED",
        "COST USD",
    )
    for column in columns:
        table.add_column(column)
    for op in operations:
        calls = op["awsApiCalls"]
        table.add_row(
            op["operation"],
            human(op["modelledSeconds"]),
            human(op["lowerBoundSeconds"]),
            f"{op['ratio']:.2f}" if op["ratio"] else "-",
            f"{op['wallSeconds']:.1f}s",
            f"{op['stateTransitions']} (+{op['taskRetries']})",
            str(op["lambdaInvocations"]),
            f"{op['lambdaGbSeconds']:.1f}",
            f"{calls['total']} ({calls['mutating']}/{calls['read']})",
            str(calls["unfilteredDescribes"]),
            f"{op['costUsd']['total']:.5f}",
        )
    return table


def concurrency_table(runs: list[dict]) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold", title="Clusters created at once (latency instant)")
    columns = (
        *("CLUSTERS", "RUNNING", "WALL", "x ONE CREATE", "PER MINUTE", "PEAK MEMORY", "THROTTLED", "COST USD"),
        "REPORT LAG",
    )
    for column in (*columns, "PER CREATE: TRANSITIONS", "LAMBDA", "API CALLS", "RUNTIME CPU"):
        table.add_column(column)
    for run in runs:
        each = run["perCreate"]
        table.add_row(
            str(run["clusters"]),
            str(run["succeeded"]),
            f"{run['wallSeconds']:.1f}s",
            str(run["timesOneCreate"] or "-"),
            str(run["clustersPerMinute"]),
            f"{run['peakMemoryMiB']:.0f} MiB",
            str(run["throttledCalls"]),
            f"{run['costUsd']:.5f}",
            report_lag(run.get("instanceReports") or {}),
            str(each["stateTransitions"]),
            str(each["lambdaInvocations"]),
            str(each["awsApiCalls"]),
            f"{each['runtimeCpuSeconds']:.2f}s",
        )
    return table


def report_lag(reports: dict) -> str:
    """The instance simulator's largest lag behind a periodic report's due time (and a report's
    mean cost): a lag past the health gates' staleness window reads as a dead instance."""
    periodic = reports.get("periodic")
    if not periodic:
        return "-"
    return f"{periodic['largestLagSeconds']:.1f}s ({periodic.get('meanWriteMs', 0):.0f} ms/report)"
