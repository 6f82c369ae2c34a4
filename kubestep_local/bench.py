"""`kubestep bench`: the reference operations in the emulator, measured.

ProvisionNetwork, CreateCluster (the HA cluster of examples/cluster-ha.yaml: three replicas, two
node pools) and DeleteCluster run one after the other under a latency profile; for each: the
modelled AWS time against its lower bound (`critical_path`), the wall time, state transitions,
Lambda invocations and GB-seconds, AWS API calls by action (mutating or read; a Describe/List
with no filter, id or name flagged: against EC2's token buckets it reads the whole account), and
what it costs on AWS at list prices. Then N clusters created at once (the `instant` profile: the
emulator's own throughput), with the wall time, throughput, peak memory and throttled calls.
The result is a dict (the JSON file), a table, and a PNG timeline of the create's steps with
its critical path marked.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubestep.aws.errors import THROTTLING
from kubestep_local.critical_path import Shape, lower_bound
from kubestep_local.recorder import CallRecord, Invocation

# List prices, us-east-1, on-demand (the management plane only: the cluster's own instances,
# volumes, NLB and NAT gateways are the user's whatever tool makes them).
# https://aws.amazon.com/step-functions/pricing/ : Standard workflows, $0.025 per 1,000 state transitions.
PRICE_PER_TRANSITION = 0.025 / 1000
# https://aws.amazon.com/lambda/pricing/ : $0.20 per 1M requests; x86, $0.0000166667 per GB-second.
PRICE_PER_INVOCATION = 0.20 / 1_000_000
PRICE_PER_GB_SECOND = 0.0000166667
# https://aws.amazon.com/dynamodb/pricing/on-demand/ : $0.625 per million write request units,
# $0.125 per million read request units (one unit per item up to 1 KB / 4 KB; counted per call).
PRICE_PER_DYNAMODB_WRITE = 0.625 / 1_000_000
PRICE_PER_DYNAMODB_READ = 0.125 / 1_000_000
# https://aws.amazon.com/secrets-manager/pricing/ : $0.05 per 10,000 API calls.
PRICE_PER_SECRETS_CALL = 0.05 / 10_000
# EC2, Auto Scaling, Elastic Load Balancing, IAM, Route 53 and SQS control-plane calls at this
# volume: no charge.

READ_PREFIXES = ("Describe", "Get", "Head", "List", "Query", "Scan", "BatchGet")
# Parameters that narrow a read to named resources or a filter.
NARROWING = (
    *("filters", "filter", "ids", "names", "arns", "name", "id", "arn", "key", "prefix", "url", "identifier"),
    *("types", "rule"),
)


def is_read(record: CallRecord) -> bool:
    operation = record.operation or record.action.partition(":")[2]
    return operation.startswith(READ_PREFIXES)


def is_unfiltered(record: CallRecord) -> bool:
    """A Describe/List call that names nothing and filters nothing (pagination aside)."""
    operation = record.operation or record.action.partition(":")[2]
    if not operation.startswith(("Describe", "List")):
        return False
    params = {k: v for k, v in (record.params or {}).items() if k not in ("MaxResults", "NextToken", "Marker")}
    return not any(k.lower().endswith(NARROWING) and v for k, v in params.items())


@dataclass(frozen=True)
class Operation:
    kind: str
    arn: str
    wall_seconds: float
    status: str
    rerun: dict[str, Any] | None = None
    """A create's steps run again once it finished (`rerun.rerun_steps`): what they mutated."""


def measure(runtime: Any, op: Operation, shape: Shape, memory_mib: dict[str, int]) -> dict[str, Any]:
    """One operation's figures (the JSON's `operations[]` entry)."""
    from kubestep.workflows import workflow

    stats = runtime.stats().get(op.arn)
    modelled = runtime.modelled_time(op.arn)["modelledSeconds"]
    bound = lower_bound(workflow(op.kind).render(), runtime.latency.profile, shape, name=op.kind)
    invocations = [i for i in runtime.recorder.invocations() if i.execution_arn == op.arn]
    calls = [c for c in runtime.recorder.call_records() if c.execution_arn == op.arn]
    gb_seconds = sum(_gb_seconds(i, memory_mib) for i in invocations)
    transitions = stats.state_transitions if stats else 0
    entered, attempts = task_attempts(runtime, op.arn)
    retries = max(sum(attempts.values()) - entered, 0)
    return {
        "operation": op.kind,
        "status": op.status,
        "modelledSeconds": round(modelled, 1),
        "lowerBoundSeconds": round(bound.seconds, 1),
        "ratio": round(modelled / bound.seconds, 2) if bound.seconds else None,
        "criticalPath": bound.as_dict()["criticalPath"],
        "wallSeconds": round(op.wall_seconds, 2),
        "stateTransitions": transitions,
        "taskRetries": retries,
        "gateAttempts": {gate: attempts[gate] for gate in GATES},
        "lambdaInvocations": len(invocations),
        "lambdaGbSeconds": round(gb_seconds, 3),
        "awsApiCalls": _calls(calls),
        "costUsd": _cost(transitions + retries, len(invocations), gb_seconds, calls),
        **({"rerun": op.rerun} if op.rerun is not None else {}),
    }


# The health gates: each attempt is a poll (a Lambda invocation, a billed transition when retried).
GATES = ("CheckReplicaHealth", "CheckNodePoolHealth")


def task_attempts(runtime: Any, execution_arn: str) -> tuple[int, Counter[str]]:
    """(Task states entered, attempts per state name): the attempts beyond each state's first
    are the polls of waiting steps, and Standard workflows bill every retry as a state
    transition. An attempt's state is the one its chain of `previousEventId`s leads back to (Map
    iterations and Parallel branches interleave)."""
    sfn = runtime.boto3_client("stepfunctions")
    entered, attempts, state_of = 0, Counter[str](), dict[int, str]()
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            if event["type"] == "TaskStateEntered":
                entered += 1
                state_of[event["id"]] = event["stateEnteredEventDetails"]["name"]
            elif event.get("previousEventId") in state_of:
                state_of[event["id"]] = state_of[event["previousEventId"]]
            if event["type"] == "TaskScheduled":
                attempts[state_of.get(event["id"], "?")] += 1
    return entered, attempts


def _gb_seconds(invocation: Invocation, memory_mib: dict[str, int]) -> float:
    # Lambda bills each invocation's duration rounded up to the millisecond.
    billed = -(-invocation.duration_seconds * 1000 // 1) / 1000
    return billed * memory_mib.get(invocation.function_name, 512) / 1024


def _calls(calls: list[CallRecord]) -> dict[str, Any]:
    by_action = Counter(c.action for c in calls)
    reads = [c for c in calls if is_read(c)]
    unfiltered = Counter(c.action for c in calls if is_unfiltered(c))
    return {
        "total": len(calls),
        "mutating": len(calls) - len(reads),
        "read": len(reads),
        "unfilteredDescribes": sum(unfiltered.values()),
        "unfilteredByAction": dict(unfiltered.most_common()),
        "throttled": sum(1 for c in calls if c.error in THROTTLING),
        "byAction": {
            action: {"count": n, "kind": "read" if is_read(_first(calls, action)) else "mutating"}
            for action, n in by_action.most_common()
        },
    }


def _first(calls: list[CallRecord], action: str) -> CallRecord:
    return next(c for c in calls if c.action == action)


def _cost(transitions: int, invocations: int, gb_seconds: float, calls: list[CallRecord]) -> dict[str, float]:
    dynamodb = [c for c in calls if c.action.startswith("dynamodb:")]
    dynamodb_reads = sum(1 for c in dynamodb if is_read(c))
    secrets = sum(1 for c in calls if c.action.startswith("secretsmanager:"))
    parts = {
        "stepFunctions": transitions * PRICE_PER_TRANSITION,
        "lambda": invocations * PRICE_PER_INVOCATION + gb_seconds * PRICE_PER_GB_SECOND,
        "dynamodb": dynamodb_reads * PRICE_PER_DYNAMODB_READ
        + (len(dynamodb) - dynamodb_reads) * PRICE_PER_DYNAMODB_WRITE,
        "secretsManager": secrets * PRICE_PER_SECRETS_CALL,
    }
    return {**{k: round(v, 6) for k, v in parts.items()}, "total": round(sum(parts.values()), 6)}


# -- running the operations ------------------------------------------------------------------------
def reference_body(path: Path, name: str | None = None) -> dict[str, Any]:
    from kubestep.cli import manifests

    plan = manifests.plan(manifests.read_documents(str(path)), str(path))
    if len(plan.clusters) != 1:
        raise ValueError(f"{path} must hold exactly one AWSCluster")
    body = copy.deepcopy(plan.clusters[0])
    return reference_body_named(body, name) if name else body


def shape_of(body: dict[str, Any], zones: int) -> Shape:
    replicas = len(body["cluster"]["spec"]["controlPlane"].get("availabilityZones") or []) or 3
    return Shape(replicas=replicas, node_pools=len(body.get("nodePools") or []), zones=zones)


def run_reference(runtime: Any, body: dict[str, Any], echo: Callable[[str], None]) -> list[Operation]:
    """ProvisionNetwork, CreateCluster of `body`, DeleteCluster, one after the other."""
    from kubestep.api.client import ApiClient
    from kubestep_local.rerun import rerun_steps

    api = ApiClient(runtime.api_url, sign=False)
    name = body["cluster"]["metadata"]["name"]
    done: list[Operation] = []
    t0 = time.monotonic()
    network = runtime.provision_network(wait=True, timeout=3600)
    done.append(Operation("ProvisionNetwork", network["executionArn"], time.monotonic() - t0, network["status"]))
    echo(f"ProvisionNetwork {network['status']} in {done[-1].wall_seconds:.1f}s")
    for kind, start in (
        ("CreateCluster", lambda: api.create_cluster(body)),
        ("DeleteCluster", lambda: api.delete_cluster(name)),
    ):
        t0 = time.monotonic()
        arn = start()["executionArn"]
        result = runtime.wait_execution(arn, timeout=3600)
        wall = time.monotonic() - t0
        echo(f"{kind} {result['status']} in {wall:.1f}s")
        if result["status"] != "SUCCEEDED":
            raise RuntimeError(f"{kind} {result['status']}: {result.get('cause')}")
        rerun = None
        if kind == "CreateCluster":
            rerun = rerun_steps(runtime, arn, name).as_dict()
            echo(f"CreateCluster's {rerun['steps']} steps again: {rerun['mutatingCalls']} mutating calls")
        done.append(Operation(kind, arn, wall, result["status"], rerun))
    return done


def run_concurrent(
    runtime: Any, body: dict[str, Any], count: int, prefix: str, memory_mib: dict[str, int]
) -> dict[str, Any]:
    """`count` clusters created at once through the API; each waited for."""
    from kubestep.api.client import ApiClient

    api = ApiClient(runtime.api_url, sign=False)
    sampler = MemorySampler()
    sampler.start()
    runtime.simulator.report_lag.take()  # this run's lag only
    calls_before = len(runtime.recorder.call_records())
    t0, cpu0 = time.monotonic(), time.process_time()
    arns = [api.create_cluster(reference_body_named(body, f"{prefix}{i}"))["executionArn"] for i in range(count)]
    results = [runtime.wait_execution(arn, timeout=3600) for arn in arns]
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    peak = sampler.stop()
    reports = runtime.simulator.report_lag.take()
    new_calls = runtime.recorder.call_records()[calls_before:]
    stats = runtime.stats()
    transitions = sum(stats[a].state_transitions for a in arns if a in stats)
    counted = [task_attempts(runtime, arn) for arn in arns]
    retries = sum(max(sum(attempts.values()) - entered, 0) for entered, attempts in counted)
    gate_attempts = sum((attempts for _, attempts in counted), Counter[str]())
    wanted = set(arns)
    invocations = [i for i in runtime.recorder.invocations() if i.execution_arn in wanted]
    own_calls = [c for c in new_calls if c.execution_arn in wanted]
    return {
        "clusters": count,
        "succeeded": sum(1 for r in results if r["status"] == "SUCCEEDED"),
        # Why the others did not: the executions' errors, counted (e.g. ResourceTimeout when the
        # emulator ran slower than the time scale lets the handlers' deadlines wait).
        "failures": dict(Counter(r.get("error") or r["status"] for r in results if r["status"] != "SUCCEEDED")),
        "wallSeconds": round(wall, 2),
        # The runtime process's CPU (moto, the interpreter, the simulator; not the Lambda
        # workers'): on a shared machine a steadier measure than the wall time.
        "runtimeCpuSeconds": round(cpu, 2),
        "clustersPerMinute": round(count * 60 / wall, 2) if wall else None,
        "peakMemoryMiB": round(peak / 2**20, 1),
        "throttledCalls": sum(1 for c in new_calls if c.error in THROTTLING),
        # The instance simulator's reports in this run, per kind (boot, periodic): how many, the
        # largest lag behind their due time, a periodic report's mean cost. A periodic report
        # later than the health gates' staleness window reads as a dead instance.
        "instanceReports": reports,
        "stateTransitions": transitions,
        "taskRetries": retries,
        # How the cost grows with N: per create, what it was billed for and what it asked of AWS.
        "perCreate": {
            "runtimeCpuSeconds": round(cpu / count, 2),
            "stateTransitions": round((transitions + retries) / count, 1),
            "lambdaInvocations": round(len(invocations) / count, 1),
            "awsApiCalls": round(len(own_calls) / count, 1),
            "dynamodbGetItem": round(sum(1 for c in own_calls if c.action == "dynamodb:GetItem") / count, 1),
            "gateAttempts": {gate: round(gate_attempts[gate] / count, 1) for gate in GATES},
        },
        "costUsd": _cost(
            transitions + retries,
            len(invocations),
            sum(_gb_seconds(i, memory_mib) for i in invocations),
            own_calls,
        )["total"],
    }


def reference_body_named(body: dict[str, Any], name: str) -> dict[str, Any]:
    """`body` as cluster `name` (its node pools name their cluster too)."""
    named = copy.deepcopy(body)
    named["cluster"]["metadata"]["name"] = name
    for pool in named.get("nodePools") or []:
        pool.setdefault("spec", {})["clusterName"] = name
    return named


# Memory grows with workers and state over seconds: twice a second is fine enough for its peak.
SAMPLE_SECONDS = 0.5


class MemorySampler:
    """Peak resident memory of this process and its descendants (the Lambda workers), sampled
    from /proc every SAMPLE_SECONDS: each sample reads every process's stat, CPU the runtime
    under measurement would otherwise have."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return max(self.peak, tree_rss())

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, tree_rss())


def tree_rss(root: int | None = None) -> int:
    """Bytes resident in `root` (this process) and every process descended from it."""
    root = root or os.getpid()
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


# -- the timeline ------------------------------------------------------------------------------------
def step_intervals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Task state's run (entered to exited), in seconds from the execution's start."""
    from kubestep.execution_history import entered_state

    if not events:
        return []
    start: datetime = events[0]["timestamp"]
    by_id = {e["id"]: e for e in events if "id" in e}
    out = []
    for event in events:
        if event["type"] != "TaskStateExited":
            continue
        name = event["stateExitedEventDetails"]["name"]
        entered = entered_state(event, by_id, name)
        if entered is None:
            continue
        out.append(
            {
                "state": name,
                "start": (entered["timestamp"] - start).total_seconds(),
                "end": (event["timestamp"] - start).total_seconds(),
            }
        )
    return sorted(out, key=lambda s: (s["start"], s["state"]))


def write_gantt(path: Path, steps: list[dict[str, Any]], critical: set[str], title: str) -> Path:
    """A PNG: one bar per step run, the critical path's steps in red."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.patches import Patch

    height = max(3.0, 0.28 * len(steps) + 1.5)
    figure, axes = pyplot.subplots(figsize=(12, height))
    for row, step in enumerate(steps):
        colour = "#d62728" if step["state"] in critical else "#4c78a8"
        axes.barh(row, max(step["end"] - step["start"], 0.01), left=step["start"], color=colour)
    axes.set_yticks(range(len(steps)), [s["state"] for s in steps], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("wall seconds since the execution started (waits compressed by the time scale)")
    axes.set_title(title)
    axes.legend(
        handles=[
            Patch(color="#d62728", label="critical path (lower bound)"),
            Patch(color="#4c78a8", label="other steps"),
        ],
        loc="lower right",
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def write_json(path: Path, result: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


# -- the whole bench ---------------------------------------------------------------------------------
def run_bench(
    *,
    manifest: Path,
    out_dir: Path,
    latency: str = "realistic",
    time_scale: float = 0.05,
    concurrency: tuple[int, ...] = (1, 10),
    concurrent_time_scale: float | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Start a fresh runtime of its own, run and measure everything, write `bench.json` and
    `create-timeline.png` into `out_dir`, stop the runtime; the result is the JSON's content.
    The concurrent creates run at `concurrent_time_scale` (default `time_scale`): the handlers'
    deadlines are modelled time scaled to the wall clock, so an emulator that many creates slow
    down needs a larger scale for the same deadlines to hold."""
    from kubestep_local.runtime import LocalRuntime, RuntimeConfig

    body = reference_body(manifest)
    runtime = LocalRuntime(RuntimeConfig(port=0, api_port=0, time_scale=time_scale, latency=latency))
    try:
        runtime.start()
        runtime.deploy()
        memory = {
            f["FunctionName"]: int(f["MemorySize"])
            for page in runtime.boto3_client("lambda").get_paginator("list_functions").paginate()
            for f in page["Functions"]
        }
        operations = run_reference(runtime, body, echo)
        zones = len(runtime.boto3_client("ec2").describe_availability_zones()["AvailabilityZones"])
        shape = shape_of(body, min(zones, 3))
        measured = [measure(runtime, op, shape, memory) for op in operations]
        create = next(op for op in operations if op.kind == "CreateCluster")
        steps = step_intervals(
            runtime.boto3_client("stepfunctions").get_execution_history(executionArn=create.arn, maxResults=1000)[
                "events"
            ]
        )
        critical = {s["state"] for s in next(m for m in measured if m["operation"] == "CreateCluster")["criticalPath"]}
        timeline = write_gantt(
            out_dir / "create-timeline.png",
            steps,
            critical,
            f"CreateCluster ({shape.replicas} replicas, {shape.node_pools} node pools), latency {latency}, "
            f"time scale {time_scale}",
        )
        runtime.set_latency("instant")
        concurrent_scale = time_scale if concurrent_time_scale is None else concurrent_time_scale
        runtime.set_time_scale(concurrent_scale)
        runs = []
        for count in concurrency:
            echo(f"{count} CreateCluster at once (latency instant) ...")
            runs.append(run_concurrent(runtime, body, count, f"bench{count}-", memory))
            echo(f"  {runs[-1]['succeeded']}/{count} RUNNING in {runs[-1]['wallSeconds']}s")
        single = next((r for r in runs if r["clusters"] == 1), None)
        for run in runs:
            run["timesOneCreate"] = round(run["wallSeconds"] / single["wallSeconds"], 2) if single else None
        result = {
            "latency": latency,
            "timeScale": time_scale,
            "concurrentTimeScale": concurrent_scale,
            "manifest": str(manifest),
            "operations": measured,
            "createSteps": steps,
            "concurrent": runs,
            "files": {"timeline": timeline.name},
        }
        write_json(out_dir / "bench.json", result)
        return result
    finally:
        runtime.stop()
