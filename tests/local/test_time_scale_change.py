"""LocalRuntime.set_time_scale: a new scale reaches the interpreter at once and the functions with
their next workers (their own deadlines read KUBESTEP_LOCAL_TIME_SCALE)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

from kubestep_local.runtime import LocalRuntime

SCALE_CODE = """
import os

def handler(event, context):
    return {"scale": os.environ.get("KUBESTEP_LOCAL_TIME_SCALE")}
"""


def _scale_function(runtime: LocalRuntime) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("scale.py", SCALE_CODE)
    name = f"scale-{uuid.uuid4().hex[:8]}"
    role = runtime.boto3_client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    runtime.boto3_client("lambda").create_function(
        FunctionName=name, Runtime="python3.13", Role=role, Handler="scale.handler", Code={"ZipFile": buffer.getvalue()}
    )
    return name


def _scale_seen(runtime: LocalRuntime, function: str) -> str:
    response = runtime.boto3_client("lambda").invoke(FunctionName=function, Payload=b"{}")
    return json.loads(response["Payload"].read())["scale"]


def test_a_new_time_scale_reaches_the_interpreter_and_the_next_invocation(runtime: LocalRuntime) -> None:
    function = _scale_function(runtime)
    before = runtime.time_scale.scale
    assert float(_scale_seen(runtime, function)) == before
    old_workers = set(runtime.workers.pids())
    try:
        runtime.set_time_scale(before * 4)
        assert runtime.time_scale.seconds(10) == 10 * before * 4
        assert float(_scale_seen(runtime, function)) == before * 4
        # The old workers of that function were replaced, not told: a running worker keeps its env.
        assert old_workers - set(runtime.workers.pids())
    finally:
        runtime.set_time_scale(before)
    assert float(_scale_seen(runtime, function)) == before
