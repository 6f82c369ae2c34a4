"""`python -m kubestep_local`: ready line, state file, clean SIGTERM; workers die with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """All live descendants of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if state[state.rindex(")") + 2] != "Z":
            out.add(pid)
    return out


def _start(stub_template: Path, home: Path) -> tuple[subprocess.Popen[str], dict]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KUBESTEP_HOME": str(home)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubestep_local",
            "--port",
            "0",
            "--api-port",
            "0",
            "--time-scale",
            "0.01",
            "--no-network",
            "--template",
            str(stub_template),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail("runtime exited before becoming ready")
    return process, json.loads(line)


def _exercise(ready: dict) -> None:
    client = boto3.client(
        "stepfunctions",
        endpoint_url=ready["endpoint_url"],
        region_name=ready["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arn = client.start_execution(
        stateMachineArn=ready["outputs"]["FanoutStateMachineArn"], input='{"items": [0.1, 0.1, 0.1]}'
    )["executionArn"]
    while client.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.05)


def test_sigterm_is_a_clean_shutdown(stub_template: Path, tmp_path: Path) -> None:
    process, ready = _start(stub_template, tmp_path)
    try:
        state = json.loads((tmp_path / "local.json").read_text())
        assert state["pid"] == process.pid
        assert state["endpoint_url"] == ready["endpoint_url"]
        assert state["api_url"].startswith("http://127.0.0.1:")
        assert state["outputs"]["TableName"] == "stub-kubestep"
        _exercise(ready)
        workers = _children(process.pid)
        assert len(workers) >= 4  # zygotes + forked workers
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not (tmp_path / "local.json").exists()
    deadline = time.monotonic() + 5
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(workers)


def test_workers_die_with_a_killed_runtime(stub_template: Path, tmp_path: Path) -> None:
    process, ready = _start(stub_template, tmp_path)
    try:
        _exercise(ready)
        workers = _children(process.pid)
        assert workers
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(workers), "Lambda workers outlived a SIGKILLed runtime"
