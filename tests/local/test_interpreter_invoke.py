"""The Step Functions interpreter's Lambda tasks reach moto's Lambda backend in process
(moto_compat.awslambda ``_invoke_from_the_interpreter_in_process``), with the answer, the error
names, the seam's fault injection and the recorder's entries the HTTP route gives.

The reference is moto's own route: a synchronous Invoke with an explicit ``InvocationType`` goes
over loopback HTTP through botocore (moto/stepfunctions/parser/asl/component/state/exec/
state_task/lambda_eval_utils.py ``_invoke_lambda_function``), so each case is asked both ways.
Error names follow the Step Functions developer guide (handling errors: ``Lambda.<code>`` for the
Lambda service's exceptions; the function's ``errorType`` for its own)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError
from moto.awslambda.responses import LambdaResponse
from moto.stepfunctions.parser.api import InvocationResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.utilities.collections import select_from_typed_dict

from kubestep_local.faults import Fault
from kubestep_local.runtime import LocalRuntime

FUNCTION = "stub-tasks"


@pytest.fixture
def http_invokes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Invoke requests of FUNCTION moto's HTTP server answers (its Lambda responses'
    ``invoke``; the EventBridge stand-in's invocations of other functions are not counted)."""
    seen: list[str] = []
    original = LambdaResponse.invoke

    def invoke(self: Any) -> Any:
        if FUNCTION in unquote(self.path):
            seen.append(self.path)
        return original(self)

    monkeypatch.setattr(LambdaResponse, "invoke", invoke)
    return seen


@pytest.fixture(autouse=True)
def no_faults_left(runtime: LocalRuntime) -> Iterator[None]:
    yield
    runtime.faults.clear()


def _asked(parameters: dict[str, Any], region: str, over_http: bool) -> Any:
    """One Invoke as the interpreter makes it: the answer it keeps, or the ClientError raised."""
    parameters = dict(parameters, Payload=lambda_eval_utils.to_payload_type(parameters.get("Payload")))
    if over_http:
        parameters["InvocationType"] = "RequestResponse"  # the default: only the route differs
    try:
        answer = lambda_eval_utils._invoke_lambda_function(parameters=parameters, region=region, state_credentials=None)
    except ClientError as error:
        name, cause = StateTaskServiceLambda._error_cause_from_client_error(error)
        request_id = error.response["ResponseMetadata"]["RequestId"]
        assert len(request_id) == 52, "moto's request id"
        return {
            "error": error.response["Error"],
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "name": name,
            "cause": cause.replace(request_id, "<id>"),
        }
    return select_from_typed_dict(typed_dict=InvocationResponse, obj=answer)


def _both_ways(runtime: LocalRuntime, parameters: dict[str, Any], http_invokes: list[str]) -> tuple[Any, Any]:
    before = len(http_invokes)
    in_process = _asked(parameters, runtime.region, over_http=False)
    assert len(http_invokes) == before, "the in-process route sent an HTTP request"
    over_http = _asked(parameters, runtime.region, over_http=True)
    assert len(http_invokes) == before + 1, "the reference did not go over HTTP"
    return in_process, over_http


def _function_arn(runtime: LocalRuntime) -> str:
    return runtime.boto3_client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]


CASES: dict[str, Callable[[str], dict[str, Any]]] = {
    "by name": lambda arn: {"FunctionName": FUNCTION, "Payload": {"task": "echo", "n": 1}},
    "by ARN": lambda arn: {"FunctionName": arn, "Payload": {"task": "echo"}},
    "by ARN with its version": lambda arn: {"FunctionName": f"{arn}:$LATEST", "Payload": {"task": "echo"}},
    "a raised error": lambda arn: {"FunctionName": FUNCTION, "Payload": {"task": "boom"}},
    "no payload": lambda arn: {"FunctionName": FUNCTION},
    "an unknown function": lambda arn: {"FunctionName": arn + "-absent", "Payload": {}},
    "an unknown version": lambda arn: {"FunctionName": f"{arn}:7", "Payload": {}},
    # moto's server takes the qualifier from the body (moto/core/responses.py ``_get_param``).
    "a qualifier in the event": lambda arn: {"FunctionName": FUNCTION, "Payload": {"qualifier": "7"}},
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_answer_is_the_http_answer(runtime: LocalRuntime, http_invokes: list[str], case: str) -> None:
    in_process, over_http = _both_ways(runtime, CASES[case](_function_arn(runtime)), http_invokes)
    if "Payload" in over_http and "remaining" in over_http["Payload"]:
        assert in_process["Payload"].keys() == over_http["Payload"].keys()
        in_process["Payload"]["event"] = over_http["Payload"]["event"]  # the same but for n
    assert in_process == over_http
    if case == "a raised error":
        assert in_process["FunctionError"] == "Unhandled" and in_process["Payload"]["errorType"] == "Boom"
    if case.startswith("an unknown"):
        assert in_process["name"] == "Lambda.ResourceNotFoundException" and in_process["status"] == 404


def test_a_service_exception_is_the_http_answer_and_the_function_never_runs(
    runtime: LocalRuntime, http_invokes: list[str]
) -> None:
    runtime.inject(Fault("service-exception", function=FUNCTION, times=2))
    # Counted by this test's own operation id: the package's runtime is shared, and another
    # module's leftovers (an API request finishing) may run a function meanwhile.
    marker = {"task": "echo", "operationId": "refused-invoke"}
    in_process, over_http = _both_ways(runtime, {"FunctionName": FUNCTION, "Payload": marker}, http_invokes)
    assert in_process == over_http
    assert in_process["name"] == "Lambda.ServiceException" and in_process["status"] == 500
    assert runtime.recorder.invocation_counts()[(FUNCTION, "refused-invoke")] == 0, "a refused Invoke runs nothing"


def test_each_invocation_is_recorded_once_either_way(runtime: LocalRuntime, http_invokes: list[str]) -> None:
    marker = {"FunctionName": FUNCTION, "Payload": {"task": "echo", "operationId": "in-process-recorded"}}
    _both_ways(runtime, marker, http_invokes)
    counts = runtime.recorder.invocation_counts()
    assert counts[(FUNCTION, "in-process-recorded")] == 2


def test_a_workflow_runs_its_lambda_tasks_without_http_and_each_is_attributed(
    runtime: LocalRuntime, http_invokes: list[str]
) -> None:
    # Flaky's Retry takes Lambda.ServiceException (twice at most): one refused Invoke is retried.
    runtime.inject(Fault("service-exception", function=FUNCTION, times=1))
    description = runtime.run_execution("RetryCatch", {}, name="in-process-1")
    assert json.loads(description["output"]) == {"error": "Boom", "flaky": {"attempts": 3}, "execution": "in-process-1"}
    assert http_invokes == [], "a Lambda task went over loopback HTTP"
    arn = description["executionArn"]
    failed = [
        event["taskFailedEventDetails"]["error"]
        for event in runtime.boto3_client("stepfunctions").get_execution_history(executionArn=arn)["events"]
        if event["type"] == "TaskFailed"
    ]
    assert failed[0] == "Lambda.ServiceException"
    errors = [i.error_type for i in runtime.recorder.invocations() if i.execution_arn == arn]
    assert errors == ["ResourcePending", "ResourcePending", None, "Boom"]
    assert runtime.stats()[arn].lambda_invocations == 4


@pytest.mark.parametrize(
    "parameters",
    [
        {"FunctionName": FUNCTION, "Qualifier": "7", "Payload": {}},
        {"FunctionName": FUNCTION, "Payload": [1, 2]},
        {"FunctionName": FUNCTION, "Payload": "text"},
    ],
    ids=["a Qualifier", "a list", "a string"],
)
def test_what_the_route_does_not_serve_goes_over_http_as_before(
    runtime: LocalRuntime, http_invokes: list[str], parameters: dict[str, Any]
) -> None:
    before = len(http_invokes)
    answers = [_asked(parameters, runtime.region, over_http=False), _asked(parameters, runtime.region, over_http=True)]
    assert len(http_invokes) == before + 2
    assert answers[0].keys() == answers[1].keys()
