"""A persistent runtime (`python -m kubestep_local`, what `kubestep local up` runs) keeps the
emulator's state across a stop and a crash, aborts what was running, names what it could not
restore, and refuses a second runtime or a taken port at once (issue 7, defect 7)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from kubestep_local.moto_compat import ABORTED_ON_RESTORE_CAUSE
from kubestep_local.state import StateStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _command(template: Path, *extra: str, port: int = 0) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kubestep_local",
        "--port",
        str(port),
        "--api-port",
        "0",
        "--no-network",
        "--template",
        str(template),
        *extra,
    ]


def _start(template: Path, home: Path, *extra: str, port: int = 0) -> tuple[subprocess.Popen[str], dict]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KUBESTEP_HOME": str(home)}
    process = subprocess.Popen(
        _command(template, *extra, port=port),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail(f"runtime exited before becoming ready: {process.stderr.read()[-2000:]}")
    return process, json.loads(line)


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def _client(ready: dict, service: str):
    return boto3.client(
        service,
        endpoint_url=ready["endpoint_url"],
        region_name=ready["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _put_marker(ready: dict, value: str) -> None:
    _client(ready, "dynamodb").put_item(
        TableName=ready["outputs"]["TableName"],
        Item={"pk": {"S": "MARKER"}, "sk": {"S": value}},
    )


def _markers(ready: dict) -> list[str]:
    items = _client(ready, "dynamodb").query(
        TableName=ready["outputs"]["TableName"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "MARKER"}},
    )["Items"]
    return sorted(i["sk"]["S"] for i in items)


def _status_events(ready: dict, name: str) -> list[dict]:
    items = _client(ready, "dynamodb").query(
        TableName=ready["outputs"]["TableName"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "EVENT#Step Functions Execution Status Change"}},
    )["Items"]
    events = [json.loads(i["body"]["S"]) for i in items]
    return [e for e in events if e["detail"]["name"] == name]


class Scenario:
    """One home through several runtimes, in the order of the tests below (each runtime start
    costs seconds, so the steps share them)."""

    home: Path
    running_arn: str
    finished_arn: str


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    scenario = Scenario()
    scenario.home = tmp_path_factory.mktemp("persistent-home")
    return scenario


def test_a_stop_saves_the_state_and_a_second_runtime_or_taken_port_fails_at_once(
    stub_template: Path, scenario: Scenario
) -> None:
    home = scenario.home
    # Real time: the RetryCatch execution waits 10 s between retries, so it is RUNNING at the stop.
    process, ready = _start(stub_template, home, "--time-scale", "1")
    try:
        assert ready["restore"] is None  # nothing saved yet
        _put_marker(ready, "before-stop")
        sfn = _client(ready, "stepfunctions")
        scenario.running_arn = sfn.start_execution(
            stateMachineArn=ready["outputs"]["RetryCatchStateMachineArn"],
            name="running-at-stop",
            input=json.dumps({"key": "k1", "succeedAfter": 3}),
        )["executionArn"]
        scenario.finished_arn = sfn.start_execution(
            stateMachineArn=ready["outputs"]["FailingStateMachineArn"], name="failed-before-stop", input="{}"
        )["executionArn"]

        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KUBESTEP_HOME": str(home)}
        started = time.monotonic()
        second = subprocess.run(
            _command(stub_template), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        (line,) = second.stderr.strip().splitlines()
        assert line.startswith("error: a local runtime is already running")
        assert f"pid {process.pid}" in line and str(home) in line and ready["endpoint_url"] in line
        assert second.stdout == ""
        port = int(ready["endpoint_url"].rsplit(":", 1)[1])
        taken = subprocess.run(
            _command(stub_template, port=port),
            cwd=PROJECT_ROOT,
            env={**env, "KUBESTEP_HOME": str(home / "other")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert taken.returncode == 1
        (line,) = taken.stderr.strip().splitlines()
        assert line == f"error: port {port} (the AWS endpoint) is in use; pick another with --port (0 picks a free one)"
        assert time.monotonic() - started < 30  # measured: ~2 s each; it used to hang > 300 s

        deadline = time.monotonic() + 30
        while not _status_events(ready, "failed-before-stop") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_status_events(ready, "failed-before-stop")) == 1
        assert sfn.describe_execution(executionArn=scenario.running_arn)["status"] == "RUNNING"
    finally:
        _stop(process)
    summary = StateStore(home).summary()
    assert summary and summary["savedAt"] and summary["lastError"] is None


def test_the_next_start_restores_it_and_running_executions_come_back_aborted(
    stub_template: Path, scenario: Scenario
) -> None:
    process, ready = _start(stub_template, scenario.home, "--time-scale", "0.01", "--snapshot-interval", "0.3")
    store = StateStore(scenario.home)
    try:
        report = ready["restore"]
        assert report["restored"] is True
        assert report["abortedExecutions"] == ["running-at-stop"]
        assert _markers(ready) == ["before-stop"]
        sfn = _client(ready, "stepfunctions")
        description = sfn.describe_execution(executionArn=scenario.running_arn)
        assert description["status"] == "ABORTED"
        assert description["cause"] == ABORTED_ON_RESTORE_CAUSE
        history = sfn.get_execution_history(executionArn=scenario.running_arn)["events"]
        assert history[0]["type"] == "ExecutionStarted"
        assert history[-1]["type"] == "ExecutionAborted"
        assert sfn.describe_execution(executionArn=scenario.finished_arn)["status"] == "FAILED"
        # The abort is announced like any other (the management service releases the run's lock
        # on it); what was delivered before the stop is not delivered again.
        deadline = time.monotonic() + 30
        while not _status_events(ready, "running-at-stop") and time.monotonic() < deadline:
            time.sleep(0.1)
        (aborted,) = _status_events(ready, "running-at-stop")
        assert aborted["detail"]["status"] == "ABORTED"
        assert len(_status_events(ready, "failed-before-stop")) == 1
        # The restored emulator works: new executions run on the restored stack.
        new = sfn.start_execution(stateMachineArn=ready["outputs"]["FanoutStateMachineArn"], input='{"items": [0.1]}')[
            "executionArn"
        ]
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=new)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sfn.describe_execution(executionArn=new)["status"] == "SUCCEEDED"

        # Then a crash: what the last periodic snapshot holds survives.
        _put_marker(ready, "before-crash")
        # Until a periodic snapshot holds the put (an uncompressed pickle: the marker's text is in
        # it): a fixed wait after the put lost the race on a loaded machine.
        deadline = time.monotonic() + 60
        while b"before-crash" not in (store.load() or b"") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b"before-crash" in (store.load() or b""), "no periodic snapshot took the put within 60 s"
    finally:
        process.kill()  # no clean stop: what a crash or the OOM killer does
        process.wait()


def test_a_crash_keeps_the_last_periodic_snapshot(stub_template: Path, scenario: Scenario) -> None:
    process, ready = _start(stub_template, scenario.home, "--time-scale", "0.01")
    try:
        assert ready["restore"]["restored"] is True
        assert ready["restore"]["abortedExecutions"] == []
        assert _markers(ready) == ["before-crash", "before-stop"]
    finally:
        _stop(process)


def test_an_unrestorable_state_is_named_and_set_aside(stub_template: Path, scenario: Scenario) -> None:
    store = StateStore(scenario.home)
    store.save(b"not a snapshot", ["prod", "staging"])
    process, ready = _start(stub_template, scenario.home, "--time-scale", "0.01")
    try:
        report = ready["restore"]
        assert report["restored"] is False
        assert report["lostClusters"] == ["prod", "staging"]
        assert "unreadable snapshot" in report["error"]
        assert Path(report["setAside"]).is_file()
        assert _markers(ready) == []
        _put_marker(ready, "after-loss")
    finally:
        _stop(process)


def test_fresh_discards_the_saved_state(stub_template: Path, scenario: Scenario) -> None:
    process, ready = _start(stub_template, scenario.home, "--time-scale", "0.01", "--fresh")
    try:
        assert ready["restore"] == {"restored": False, "discarded": True, "lostClusters": None}
        assert _markers(ready) == []
    finally:
        _stop(process)


def test_a_port_taken_by_another_program_is_named(stub_template: Path, tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KUBESTEP_HOME": str(tmp_path)}
        command = _command(stub_template)
        command[command.index("--api-port") + 1] = str(port)
        result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: port {port} (the management API) is in use; pick another with --api-port (0 picks a free one)"
    )


def test_a_crash_before_the_periodic_snapshot_loses_no_finished_operation_and_names_a_running_one(
    stub_template: Path, tmp_path: Path
) -> None:
    """A `kill -9` before the first 30 s snapshot made a new cluster vanish without notice at the
    next start. An execution's start and end are saved within seconds; one started after the last
    save comes back ABORTED or, if no snapshot holds it, is named as lost."""
    home = tmp_path / "home"
    process, ready = _start(stub_template, home, "--time-scale", "1")  # the default 30 s interval
    try:
        sfn = _client(ready, "stepfunctions")
        finished = sfn.start_execution(
            stateMachineArn=ready["outputs"]["FanoutStateMachineArn"], name="finished", input='{"items": [0.1]}'
        )["executionArn"]
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=finished)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sfn.describe_execution(executionArn=finished)["status"] == "SUCCEEDED"
        ended = datetime.now(UTC)
        store = StateStore(home)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # saved because it ended, long before the 30 s interval
            saved = (store.summary() or {}).get("savedAt")
            # savedAt has whole seconds: a snapshot of the next second or later began after the end.
            if saved and datetime.fromisoformat(saved) >= ended.replace(microsecond=0) + timedelta(seconds=1):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"no snapshot after the execution ended (summary {store.summary()})")
        sfn.start_execution(
            stateMachineArn=ready["outputs"]["RetryCatchStateMachineArn"],
            name="running-at-crash",
            input=json.dumps({"key": "k9", "succeedAfter": 3}),
        )
    finally:
        process.kill()  # no clean stop, no periodic snapshot yet
        process.wait()
    process, ready = _start(stub_template, home, "--time-scale", "0.01")
    try:
        report = ready["restore"]
        assert report["restored"] is True, report
        sfn = _client(ready, "stepfunctions")
        assert sfn.describe_execution(executionArn=finished)["status"] == "SUCCEEDED"
        lost = [entry["name"] for entry in report["lostOperations"]]
        assert ("running-at-crash" in report["abortedExecutions"]) != ("running-at-crash" in lost), report
        assert "finished" not in lost
        if lost:
            (entry,) = report["lostOperations"]
            assert "RetryCatch" in entry["stateMachine"] and entry["startedAt"], entry
        assert not StateStore(home).journal_entries(), "reported once"
    finally:
        _stop(process)
