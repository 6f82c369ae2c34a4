"""`kubestep bench` (README): one command runs the reference operations and writes a JSON and a
PNG timeline. Their shape is checked here, not the speed; both stay under the test's tmp dir
as artifacts."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (the first, right after the signature)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_bench_writes_its_table_json_and_timeline(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    env = {**os.environ, "KUBESTEP_HOME": str(SHARED_HOME)}  # reuses the synthesized assembly
    command = [sys.executable, "-m", "kubestep.cli.main", "bench", "--time-scale", "0.01", "--concurrent", "1,2"]
    # The concurrent creates at their own scale: the functions' workers are replaced for it.
    command += ["--concurrent-time-scale", "0.02"]
    result = subprocess.run(
        [*command, "--out", str(out)], env=env, capture_output=True, text=True, timeout=1500, cwd=ROOT
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-4000:]
    report = json.loads((out / "bench.json").read_text())
    assert report["latency"] == "realistic" and report["timeScale"] == 0.01
    assert report["concurrentTimeScale"] == 0.02
    operations = {op["operation"]: op for op in report["operations"]}
    assert list(operations) == ["ProvisionNetwork", "CreateCluster", "DeleteCluster"]
    for name, op in operations.items():
        assert op["status"] == "SUCCEEDED", name
        assert op["lowerBoundSeconds"] > 0 and op["modelledSeconds"] > 0 and op["ratio"] > 0, op
        assert op["criticalPath"] and op["stateTransitions"] > 0 and op["lambdaInvocations"] > 0
        assert op["taskRetries"] >= 0
        calls = op["awsApiCalls"]
        assert calls["total"] == calls["mutating"] + calls["read"] > 0
        assert sum(a["count"] for a in calls["byAction"].values()) == calls["total"]
        assert op["costUsd"]["total"] > 0
        assert name in printed
    # The create's critical path runs through the control plane's gate; the timeline has its steps.
    create = operations["CreateCluster"]
    assert create["taskRetries"] > 0, "the health gates poll: each poll is a retry, billed as a transition"
    assert "CheckReplicaHealth" in {s["state"] for s in create["criticalPath"]}
    # Each replica's gate looks at least once, each pool's too; every look is a Lambda invocation.
    gates = create["gateAttempts"]
    assert gates["CheckReplicaHealth"] >= 3 and gates["CheckNodePoolHealth"] >= 2, gates
    assert sum(gates.values()) <= create["lambdaInvocations"]
    assert {"EnsureLoadBalancer", "CheckReplicaHealth", "CheckNodePoolHealth"} <= {
        s["state"] for s in report["createSteps"]
    }
    # Every create step finds what it made and keeps it: run again, they change nothing.
    rerun = create["rerun"]
    assert rerun["steps"] >= 20 and rerun["errors"] == {}, rerun
    assert rerun["mutatingCalls"] == 0, rerun["mutatingByAction"]
    assert "re-run" in printed
    assert [run["clusters"] for run in report["concurrent"]] == [1, 2]
    assert all(run["succeeded"] == run["clusters"] and run["peakMemoryMiB"] > 0 for run in report["concurrent"])
    assert all(run["failures"] == {} for run in report["concurrent"])
    for run in report["concurrent"]:  # how the cost grows with N: per create
        each = run["perCreate"]
        assert each["stateTransitions"] > 0 and each["lambdaInvocations"] > 0
        assert each["awsApiCalls"] >= each["dynamodbGetItem"] > 0
        assert each["gateAttempts"]["CheckReplicaHealth"] >= 3 and each["gateAttempts"]["CheckNodePoolHealth"] >= 2
        # The instance simulator's reports in the run: every instance's boot report, then its
        # periodic ones, with the largest lag behind their due time (printed as REPORT LAG).
        reports = run["instanceReports"]
        assert reports["boot"]["reports"] >= 5 * run["clusters"]  # 3 replicas, the general pool's 2 nodes
        assert reports["periodic"]["reports"] > 0 and reports["periodic"]["largestLagSeconds"] >= 0
        assert reports["periodic"]["meanWriteMs"] > 0
        # The runtime process's CPU over the run, and per create.
        assert run["runtimeCpuSeconds"] > 0
        assert abs(each["runtimeCpuSeconds"] - run["runtimeCpuSeconds"] / run["clusters"]) <= 0.01
    assert "REPORT LAG" in printed and "RUNTIME CPU" in printed
    width, height = png_size(out / report["files"]["timeline"])
    assert width >= 800 and height >= 300
