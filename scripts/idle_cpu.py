"""What a local runtime costs at rest: N clusters RUNNING, nothing asked of it.

Starts a runtime in this process as the emulator tests start theirs (tests/deployed_stack.py:
no scheduled rules unless ``--scheduled-rules``, no prewarmed workers), creates N clusters
through the API, waits for them to be RUNNING and ``--settle`` seconds more, then measures
``--seconds`` of wall time in which nothing is asked: the process's CPU by thread group (the
kernel's per-thread clocks, as scripts/runtime_cpu.py reads them), the Lambda zygotes' and
workers' CPU, the invocations (which function, which execution) and the instances' AWS calls
made meanwhile. Prints CPU-seconds per idle minute:

    python scripts/idle_cpu.py [--clusters 1] [--seconds 30] [--time-scale 0.02] [-f FILE]

It asserts nothing; it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from runtime_cpu import cpu_by_group, descendants_cpu, thread_cpu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--filename", default=str(ROOT / "examples" / "cluster-ha.yaml"))
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0, help="idle wall seconds measured")
    parser.add_argument("--settle", type=float, default=5.0, help="wall seconds waited after RUNNING")
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--scheduled-rules", action="store_true", help="fire rate() rules (tests do not)")
    args = parser.parse_args()
    os.environ.setdefault("KUBESTEP_HOME", tempfile.mkdtemp(prefix="kubestep-idle-cpu-"))

    from kubestep.api.client import ApiClient
    from kubestep_local import bench
    from kubestep_local.runtime import LocalRuntime, RuntimeConfig

    body = bench.reference_body(Path(args.filename))
    runtime = LocalRuntime(
        RuntimeConfig(
            port=0,
            api_port=0,
            time_scale=args.time_scale,
            boot_delay_seconds=20.0,
            scheduled_rules=args.scheduled_rules,
            prewarm=False,
        )
    )
    runtime.start()
    try:
        runtime.deploy()
        runtime.provision_network(wait=True, timeout=3600)
        api = ApiClient(runtime.api_url, sign=False)
        arns = [
            api.create_cluster(bench.reference_body_named(body, f"idle{i}"))["executionArn"]
            for i in range(args.clusters)
        ]
        statuses = [runtime.wait_execution(arn, timeout=3600)["status"] for arn in arns]
        time.sleep(args.settle)
        invocations_before = len(runtime.recorder.invocations())
        calls_before = len(runtime.recorder.call_records())
        runtime.simulator.report_lag.take()
        reads_before = runtime.simulator.cluster_reads
        before, workers, cpu, wall = thread_cpu(), descendants_cpu(), time.process_time(), time.monotonic()
        time.sleep(args.seconds)
        after, workers = thread_cpu(), descendants_cpu() - workers
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        invocations = runtime.recorder.invocations()[invocations_before:]
        calls = runtime.recorder.call_records()[calls_before:]
        reports = runtime.simulator.report_lag.take()
        reads = runtime.simulator.cluster_reads - reads_before
    finally:
        runtime.stop()
    per_minute = 60.0 / wall
    by_group = cpu_by_group(before, after)
    print(
        f"{args.clusters} cluster(s) {statuses}, time scale {args.time_scale}, idle {wall:.1f} s, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"CPU-s per idle minute: runtime process {cpu * per_minute:.2f}, Lambda workers "
        f"{workers * per_minute:.2f}, total {(cpu + workers) * per_minute:.2f}"
    )
    for name, seconds in by_group.most_common():
        if seconds >= 0.005:
            print(f"  {name:42s} {seconds * per_minute:7.2f} s/min")
    ended = cpu - sum(by_group.values())
    print(f"  {'(threads that ended meanwhile)':42s} {ended * per_minute:7.2f} s/min")
    print("instance reports:", reports)
    print(f"the simulator's own reads of clusters (unrecorded): {reads}")
    print(
        "invocations:",
        dict(Counter((i.function_name.split("-")[-1], (i.execution_arn or "-").split(":")[-2]) for i in invocations)),
    )
    print("instances' calls:", dict(Counter((c.role_name and "instance", c.service, c.operation) for c in calls)))


if __name__ == "__main__":
    main()
