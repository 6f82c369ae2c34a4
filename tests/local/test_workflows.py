"""The stub stack deployed through the real deploy path, its state machines executed."""

from __future__ import annotations

import json
import time

from kubestep_local.runtime import LocalRuntime


def test_outputs_and_deployed_definition(runtime: LocalRuntime) -> None:
    outputs = runtime.outputs
    assert outputs["TableName"] == "stub-kubestep"
    assert outputs["ServiceName"] == "stub"
    sfn = runtime.boto3_client("stepfunctions")
    definition = json.loads(
        sfn.describe_state_machine(stateMachineArn=outputs["RetryCatchStateMachineArn"])["definition"]
    )
    flaky = definition["States"]["Flaky"]
    # DefinitionSubstitutions applied, and `$$` context paths left intact.
    assert flaky["Parameters"]["FunctionName"] == "arn:aws:lambda:us-east-1:123456789012:function:stub-tasks"
    assert flaky["Parameters"]["Payload"]["key.$"] == "$$.Execution.Name"
    table = runtime.boto3_client("dynamodb").describe_table(TableName="stub-kubestep")["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1"}


def test_map_branches_run_in_parallel(runtime: LocalRuntime) -> None:
    # Warm up so the timing measures parallelism, not cold starts.
    runtime.run_execution("Fanout", {"items": [0, 0, 0, 0]})
    started = time.monotonic()
    description = runtime.run_execution("Fanout", {"items": [1, 1, 1, 1]}, name="fanout-parallel")
    elapsed = time.monotonic() - started
    results = json.loads(description["output"])
    assert [r["slept"] for r in results] == [1, 1, 1, 1]
    assert len({r["pid"] for r in results}) == 4, "each branch in its own worker process"
    assert elapsed < 2.5, f"4 x 1 s branches took {elapsed:.2f} s: the pool serializes"
    stats = runtime.stats()[description["executionArn"]]
    assert stats.lambda_invocations == 4
    assert stats.status == "SUCCEEDED"


def test_retry_on_custom_error_and_catch_under_time_scale(runtime: LocalRuntime) -> None:
    # Workflow time: retries after 10 s + 20 s, a 30 s Wait = 60 s; at scale 0.01 -> 0.6 s.
    started = time.monotonic()
    description = runtime.run_execution("RetryCatch", {}, name="retry-catch-1")
    elapsed = time.monotonic() - started
    assert json.loads(description["output"]) == {
        "error": "Boom",
        "flaky": {"attempts": 3},
        "execution": "retry-catch-1",
    }
    assert elapsed < 5, f"time scale not applied: {elapsed:.2f} s"
    arn = description["executionArn"]
    stats = runtime.stats()[arn]
    assert stats.lambda_invocations == 4  # 2 x ResourcePending, success, Boom
    assert stats.aws_api_calls == 3
    assert stats.state_transitions >= 4
    calls = [c for c in runtime.recorder.calls() if c.operation_id == "retry-catch-1"]
    assert calls and {c.action for c in calls} == {"dynamodb:UpdateItem"}
    assert {c.function_name for c in calls} == {"stub-tasks"}
    errors = [i.error_type for i in runtime.recorder.invocations() if i.execution_arn == arn]
    assert errors == ["ResourcePending", "ResourcePending", None, "Boom"]


def test_uncaught_error_fails_the_execution(runtime: LocalRuntime) -> None:
    description = runtime.run_execution("Failing", {}, name="failing-1", check=False)
    assert description["status"] == "FAILED"
    assert description["error"] == "Boom"
    assert json.loads(description["cause"])["errorMessage"] == "it went boom"


def test_unnamed_executions_get_unique_names(runtime: LocalRuntime) -> None:
    first = runtime.start_execution("Fanout", {"items": []})
    second = runtime.start_execution("Fanout", {"items": []})
    assert first != second
    assert not first.endswith(":None")
    runtime.wait_execution(first)
    runtime.wait_execution(second)


def test_handler_environment_and_code_origin(runtime: LocalRuntime) -> None:
    response = runtime.boto3_client("lambda").invoke(FunctionName="stub-tasks", Payload=b'{"task": "echo"}')
    result = json.loads(response["Payload"].read())
    assert result["function"] == "stub-tasks"
    assert result["remaining"] is True
    assert result["memory"] == 512
    assert result["arn"].endswith(":function:stub-tasks")
    assert result["endpoint"] == runtime.endpoint_url
    assert result["region"] == "us-east-1"
    assert result["service"] == "stub"
    assert float(result["timeScale"]) == runtime.time_scale.scale
    # The handler comes from the deployed zip (extracted per code sha), not from the synth's code directory...
    assert result["handlerFile"].startswith(str(runtime.workers.workdir / "code"))
    # ...while the asset's platform-specific dependencies are not loaded: the local ones are.
    assert ".venv" in result["nativeDep"] or "site-packages" in result["nativeDep"]
