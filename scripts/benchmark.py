"""Benchmark of the management service on the embedded runtime: prints numbers, asserts none.

    source scripts/env.sh && python scripts/benchmark.py [--clusters 3] [--time-scale 0.02]

Measures start-up (emulator, synth, deploy, network), one HA create/delete, N creates at once
(Map fan-out, worker pools, lock per cluster), per-operation state transitions, Lambda
invocations and AWS API calls, and the peak memory of the runtime and its worker processes.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from kubestep.api.client import ApiClient  # noqa: E402
from kubestep.aws.errors import THROTTLING  # noqa: E402
from kubestep.cli import manifests  # noqa: E402
from kubestep.store import Store  # noqa: E402
from kubestep_local.runtime import LocalRuntime, RuntimeConfig  # noqa: E402


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    total = 0
    children = {pid}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) in children or int(entry.name) == pid:
                    children.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    for child in children:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class PeakMemory(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.peak = max(self.peak, rss_mib(os.getpid()))


def body(name: str) -> dict:
    plan = manifests.plan(manifests.read_documents(str(ROOT / "examples" / "cluster-ha.yaml")))
    request = plan.clusters[0]
    request["cluster"]["metadata"]["name"] = name
    for pool in request["nodePools"]:
        pool["spec"]["clusterName"] = name
    return request


def cross_talk(runtime: LocalRuntime, clusters: int) -> str:
    """Every Auto Scaling group and instance of the benchmark's clusters carries its own
    cluster's name and uid together (kubestep's tags), none another's."""
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=runtime.endpoint_url,
        region_name=runtime.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    store = Store.for_table(runtime.outputs["TableName"], dynamodb=dynamodb)
    uids = {c.name: c.uid for c in store.clusters.all()}
    foreign = checked = 0
    pages = runtime.boto3_client("autoscaling").get_paginator("describe_auto_scaling_groups").paginate()
    groups = [g for page in pages for g in page["AutoScalingGroups"]]
    reservations = runtime.boto3_client("ec2").describe_instances()["Reservations"]
    for resource in groups + [i for r in reservations for i in r["Instances"]]:
        tags = {t["Key"]: t["Value"] for t in resource.get("Tags", [])}
        gone = resource.get("State", {}).get("Name") in ("shutting-down", "terminated")  # deleted bench-0's
        if tags.get("gke:cluster", "").startswith("bench-") and not gone:
            checked += 1
            foreign += uids.get(tags["gke:cluster"]) != tags.get("gke:cluster-uid")
    running = sum(1 for c in store.clusters.all() if c.name.startswith("bench-") and c.phase == "RUNNING")
    return f"{running}/{clusters} RUNNING; {checked} groups and instances checked, {foreign} with another's uid"


def throttling(runtime: LocalRuntime, ended: list[dict]) -> int:
    sfn = runtime.boto3_client("stepfunctions")
    seen = 0
    for operation in ended:
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=operation["executionArn"]):
            seen += sum(1 for e in page["events"] if any(code in str(e) for code in THROTTLING))
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=3, help="clusters created at once")
    parser.add_argument("--time-scale", type=float, default=0.02)
    args = parser.parse_args()

    memory = PeakMemory()
    memory.start()
    rows: list[tuple[str, float, str]] = []
    t0 = time.monotonic()
    runtime = LocalRuntime(RuntimeConfig(port=0, api_port=0, time_scale=args.time_scale))
    try:
        runtime.start()
        runtime.deploy()
        rows.append(("start + synth + deploy", time.monotonic() - t0, ""))
        t = time.monotonic()
        runtime.provision_network()
        rows.append(("ProvisionNetwork", time.monotonic() - t, ""))
        api = ApiClient(runtime.api_url, sign=False)

        t = time.monotonic()
        operation = api.create_cluster(body("bench-0"))
        api.wait_operation(operation["id"], timeout=600, poll=0.1)
        rows.append(("CreateCluster (HA, 2 pools)", time.monotonic() - t, operation["executionArn"]))
        t = time.monotonic()
        operation = api.delete_cluster("bench-0")
        api.wait_operation(operation["id"], timeout=600, poll=0.1)
        rows.append(("DeleteCluster", time.monotonic() - t, operation["executionArn"]))

        t = time.monotonic()
        operations = [api.create_cluster(body(f"bench-{i + 1}")) for i in range(args.clusters)]
        ended = [api.wait_operation(operation["id"], timeout=1800, poll=0.2) for operation in operations]
        rows.append((f"{args.clusters} x CreateCluster at once", time.monotonic() - t, ""))
        outcomes = Counter(e["status"] for e in ended)
        concurrent = f"{args.clusters} creates at once: {dict(outcomes)}; " + cross_talk(runtime, args.clusters)
        concurrent += f"; throttling retries in their histories: {throttling(runtime, ended)}"
        t = time.monotonic()
        operations = [api.delete_cluster(f"bench-{i + 1}") for i in range(args.clusters)]
        for operation in operations:
            api.wait_operation(operation["id"], timeout=600, poll=0.1)
        rows.append((f"{args.clusters} x DeleteCluster at once", time.monotonic() - t, ""))

        stats = runtime.stats()
        print(f"\n{concurrent}")
        print(f"\nkubestep benchmark (time scale {args.time_scale}, {os.cpu_count()} CPUs)\n")
        print(f"{'STEP':<32}{'WALL':>9}{'TRANSITIONS':>13}{'INVOCATIONS':>13}{'API CALLS':>11}")
        for name, seconds, arn in rows:
            s = stats.get(arn)
            counts = (s.state_transitions, s.lambda_invocations, s.aws_api_calls) if s else ("-", "-", "-")
            print(f"{name:<32}{seconds:>8.2f}s{counts[0]:>13}{counts[1]:>13}{counts[2]:>11}")
        invocations = runtime.recorder.invocations()
        warm = sorted(i.duration_seconds for i in invocations if not i.cold)
        if warm:
            print(
                f"\nLambda invocations: {len(invocations)}; warm median {warm[len(warm) // 2] * 1000:.1f} ms, "
                f"p95 {warm[int(len(warm) * 0.95)] * 1000:.1f} ms"
            )
    finally:
        runtime.stop()
        memory.stop.set()
    print(f"peak memory (runtime + workers): {memory.peak:.0f} MiB; total {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
