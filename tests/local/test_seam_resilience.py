"""Crashes, timeouts and dead zygotes behave like Lambda: an error for that invocation, then
fresh workers."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile

from kubestep_local.runtime import LocalRuntime

SLOW_CODE = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"remaining": context.get_remaining_time_in_millis()}
"""


def test_worker_exit_is_a_runtime_error_then_recovers(runtime: LocalRuntime) -> None:
    lam = runtime.boto3_client("lambda")
    response = lam.invoke(FunctionName="stub-tasks", Payload=b'{"task": "exit"}')
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.ExitError"
    response = lam.invoke(FunctionName="stub-tasks", Payload=b'{"task": "echo"}')
    assert "FunctionError" not in response


def test_timeout_kills_the_worker(runtime: LocalRuntime) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("slow.py", SLOW_CODE)
    role = runtime.boto3_client("iam").create_role(RoleName="slow-role", AssumeRolePolicyDocument="{}")
    lam = runtime.boto3_client("lambda")
    lam.create_function(
        FunctionName="slow",
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="slow.handler",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=1,
    )
    started = time.monotonic()
    response = lam.invoke(FunctionName="slow", Payload=b'{"sleep": 30}')
    # Cut at its 1 s timeout, long before the handler's 30 s sleep ends: the bound leaves a loaded
    # machine's cold start room (4 s against a 5 s sleep timed out under the suite at load 20).
    assert time.monotonic() - started < 20
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    ok = json.loads(lam.invoke(FunctionName="slow", Payload=b"{}")["Payload"].read())
    assert 0 < ok["remaining"] <= 1000


def test_a_dead_zygote_is_replaced(runtime: LocalRuntime) -> None:
    lam = runtime.boto3_client("lambda")
    lam.invoke(FunctionName="stub-tasks", Payload=b'{"task": "echo"}')
    pools = [pool for pool in runtime.workers.pools() if pool.name == "stub-tasks"]
    assert pools and pools[0]._zygote is not None
    os.kill(pools[0]._zygote.pid, signal.SIGKILL)
    pools[0]._zygote.wait()
    time.sleep(0.2)  # its workers die with it (PDEATHSIG)
    for _ in range(3):  # idle workers are gone too: each call must still succeed
        response = lam.invoke(FunctionName="stub-tasks", Payload=b'{"task": "echo"}')
        assert "FunctionError" not in response, response["Payload"].read()
