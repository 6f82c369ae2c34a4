"""Lambda: every invocation routed to the runtime's workers instead of moto's Docker path,
attributed to the Step Functions execution that made it; deployed functions read as plain data
(``FunctionInfo``); invocation logs written where Lambda writes them."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.handlers import SimpleHandler

from kubestep_local.moto_compat.core import GATE, LOG, REQUEST_LOCK, PatchSet, iter_backends

# Attribution of Lambda invocations to the Step Functions execution that made them.
EXECUTION_HEADER = "x-kubestep-execution-arn"


@dataclass(frozen=True)
class FunctionInfo:
    """A deployed Lambda function, as the worker pool needs it."""

    name: str
    arn: str
    account: str
    region: str
    handler: str
    runtime: str
    version: str
    memory_mb: int
    timeout_seconds: float
    log_group: str
    code_sha256: str
    environment: dict[str, str]
    code_zip: bytes = field(repr=False, compare=False)


def _function_info(fn: Any) -> FunctionInfo:
    return FunctionInfo(
        name=fn.function_name,
        arn=fn.function_arn,
        account=fn.account_id,
        region=fn.region,
        handler=fn.handler,
        runtime=fn.run_time,
        version=str(fn.version),
        memory_mb=int(fn.memory_size or 128),
        timeout_seconds=float(fn.timeout or 3),
        log_group=fn.logs_group_name,
        code_sha256=fn.code_sha_256,
        environment={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        code_zip=fn.code_bytes,
    )


# (function, event, execution ARN or None) -> (payload, errored, logs)
LambdaRunner = Callable[[FunctionInfo, Any, "str | None"], tuple[str, bool, str]]


class InvocationRefused(Exception):
    """A LambdaRunner refuses an invocation: the Invoke call itself fails, as when the Lambda
    service answers ``ServiceException`` (HTTP 500); Step Functions reports
    ``Lambda.<code>``."""

    def __init__(self, code: str = "ServiceException", message: str = "Lambda was unable to run the function") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def route_lambda_invocations(patches: PatchSet, runner: LambdaRunner) -> None:
    """Run every Lambda invocation through ``runner`` instead of moto's Docker path.

    moto executes Lambda code only in Docker. ``LambdaFunction._invoke_lambda(self, event) ->
    (payload, errored, logs)`` (moto/awslambda/models.py:981) is where every invocation passes --
    boto3 ``lambda.invoke``, the Step Functions interpreter, the EventBridge and API Gateway
    stand-ins. The Step Functions interpreter's Lambda client sends the execution ARN in a header,
    so each invocation can be attributed to the execution that made it. A raised error is
    reported ``Unhandled``, as Lambda does (Lambda API reference, Invoke: X-Amz-Function-Error).
    """
    from moto.awslambda.models import LambdaFunction
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    tls = threading.local()
    original_invoke = LambdaFunction.invoke

    def _invoke_lambda(fn: Any, event: Any = None) -> tuple[str, bool, str]:
        try:
            return runner(_function_info(fn), event, getattr(tls, "execution_arn", None))
        except InvocationRefused as exc:
            from moto.awslambda.exceptions import LambdaClientError

            error = LambdaClientError(exc.code, exc.message)
            error.code = 500  # a service error, as Lambda answers it
            raise error from None

    def invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        # moto parses the body before _invoke_lambda; keep the caller's execution ARN.
        tls.execution_arn = request_headers.get(EXECUTION_HEADER) if request_headers else None
        try:
            result = original_invoke(fn, body, request_headers, response_headers)
        finally:
            tls.execution_arn = None
        # moto says "Handled"; AWS reports a raised exception as "Unhandled".
        if response_headers.get("x-amz-function-error") == "Handled":
            response_headers["x-amz-function-error"] = "Unhandled"
        return result

    patches.set(LambdaFunction, "_invoke_lambda", _invoke_lambda)
    patches.set(LambdaFunction, "invoke", invoke)
    _attribute_interpreter_invocations(patches, lambda_eval_utils, tls)


def _attribute_interpreter_invocations(patches: PatchSet, lambda_eval_utils: Any, tls: threading.local) -> None:
    """The interpreter's Lambda task remembers, in its thread, which execution invokes; the
    in-process route hands it to the backend as that header, and for the calls that still go over
    HTTP its Lambda client (one per region and service: moto makes a new boto3 client for every
    invocation, milliseconds of CPU each) sends it in a header at send time."""
    original_integration = lambda_eval_utils.execute_lambda_function_integration
    original_client_for = lambda_eval_utils.boto_client_for

    def integration(env: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            tls.sfn_execution = env.states.context_object.context_object_data["Execution"]["Id"]
        except Exception:  # noqa: BLE001 - attribution is best effort
            tls.sfn_execution = None
        try:
            return original_integration(env, *args, **kwargs)
        finally:
            tls.sfn_execution = None

    clients: dict[tuple[Any, ...], Any] = {}
    clients_lock = threading.Lock()

    def _add_header(request: Any, **_: Any) -> None:
        execution_arn = getattr(tls, "sfn_execution", None)
        if execution_arn:
            request.headers[EXECUTION_HEADER] = execution_arn

    def boto_client_for(region: Any, service: Any, state_credentials: Any = None) -> Any:
        key = (region, service, repr(state_credentials))
        with clients_lock:
            client = clients.get(key)
            if client is None:
                client = original_client_for(region=region, service=service, state_credentials=state_credentials)
                client.meta.events.register("before-sign.lambda.Invoke", _add_header)
                clients[key] = client
        return client

    patches.set(lambda_eval_utils, "execute_lambda_function_integration", integration)
    patches.set(lambda_eval_utils, "boto_client_for", boto_client_for)
    _invoke_from_the_interpreter_in_process(patches, lambda_eval_utils, tls)


# The Invoke parameters the in-process route serves: a synchronous invocation of a function's
# latest code, as Step Functions' Lambda tasks make it. Anything else (InvocationType, LogType,
# ClientContext, Qualifier: moto's server reads the qualifier from the payload, see
# ``_backend_answer``) goes over HTTP.
_IN_PROCESS_PARAMETERS = frozenset({"FunctionName", "Payload"})
# moto's interpreter signs its Lambda calls with this access key (boto_client_for): the account
# moto's server derives from it is the account the in-process route invokes in.
_INTERPRETER_ACCESS_KEY = "ak"


def _invoke_from_the_interpreter_in_process(patches: PatchSet, lambda_eval_utils: Any, tls: threading.local) -> None:
    """moto's interpreter invokes a Task's function with a boto3 client against its own HTTP
    server in the same process (moto/stepfunctions/parser/asl/component/state/exec/state_task/
    lambda_eval_utils.py ``_invoke_lambda_function``): botocore builds, signs and sends the
    request, werkzeug and Flask route it, moto's Lambda responses call the backend, botocore
    parses the answer: milliseconds of CPU per Task, under the one GIL. Here the
    interpreter calls the same backend method (``LambdaBackend.invoke``) directly, with the
    account and region the server would derive, and botocore's own parser reads the status,
    headers and body moto's Lambda responses would have sent; an error is raised as the
    ``ClientError`` botocore raises, so a Task fails with the same ``Lambda.<code>`` (Step
    Functions developer guide, handling errors: Lambda service exceptions) and the same answer
    (Lambda API reference, Invoke: StatusCode, FunctionError, Payload). The seam, its fault
    injection and its recorder run inside that backend method as before. Calls the route does
    not serve (other parameters, or moto's request authorization turned on) go over HTTP as
    before (a speed fix only: the answer is the same)."""
    import botocore.session
    from botocore.awsrequest import HeadersDict
    from botocore.exceptions import ClientError
    from botocore.parsers import create_parser
    from botocore.response import StreamingBody

    over_http = lambda_eval_utils._invoke_lambda_function
    operation = botocore.session.get_session().get_service_model("lambda").operation_model("Invoke")
    parser = create_parser(operation.metadata["protocol"])

    def _invoke_lambda_function(parameters: dict[str, Any], region: str, state_credentials: Any) -> Any:
        event = _served_in_process(parameters)
        if event is None:
            return over_http(parameters=parameters, region=region, state_credentials=state_credentials)
        status, headers, body = _backend_answer(parameters, event, region, getattr(tls, "sfn_execution", None))
        if status >= 300:  # botocore reads an error's body whole (endpoint.convert_to_response_dict)
            parsed = parser.parse({"status_code": status, "headers": HeadersDict(headers), "body": body}, None)
            raise ClientError(parsed, operation.name)
        streamed = StreamingBody(io.BytesIO(body), len(body))
        response = {"status_code": status, "headers": HeadersDict(headers), "body": streamed}
        invocation = parser.parse(response, operation.output_shape)
        invocation["Payload"] = lambda_eval_utils._from_payload(invocation["Payload"])
        return invocation

    patches.set(lambda_eval_utils, "_invoke_lambda_function", _invoke_lambda_function)


def _served_in_process(parameters: dict[str, Any]) -> dict[str, Any] | None:
    """The event of an Invoke the in-process route serves (a JSON object), else None."""
    from moto import settings

    if not math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT) or not set(parameters) <= _IN_PROCESS_PARAMETERS:
        return None
    payload = parameters.get("Payload")
    try:
        event = json.loads(payload) if payload else None
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _backend_answer(
    parameters: dict[str, Any], event: dict[str, Any], region: str, execution_arn: str | None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) as moto's Lambda responses answer a synchronous Invoke
    (moto/awslambda/responses.py ``invoke``; the error path moto/core/responses.py
    ``call_action``; the request id ``_enrich_response``). moto's server looks the qualifier up
    as ``qualifier`` in the query string, where botocore sends ``Qualifier``, then in the JSON
    body -- the event (moto/core/responses.py ``_get_param``): so does this."""
    from moto.awslambda.models import lambda_backends
    from moto.iam.models import get_account_id_from
    from moto.utilities.aws_headers import gen_amzn_requestid_long
    from werkzeug.datastructures import Headers
    from werkzeug.exceptions import HTTPException

    account = os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(_INTERPRETER_ACCESS_KEY)
    payload = parameters.get("Payload")
    body = payload.decode("utf-8") if isinstance(payload, bytes) else (payload or "")
    request_headers = Headers({EXECUTION_HEADER: execution_arn} if execution_arn else {})
    headers: dict[str, str] = {}
    try:
        backend = lambda_backends[account][region]
        answer = backend.invoke(parameters["FunctionName"], event.get("qualifier"), body, request_headers, headers)
    except HTTPException as error:
        headers = {**dict(error.get_headers() or []), "status": str(error.code)}
        gen_amzn_requestid_long(headers)
        return int(error.code or 500), headers, str(error.get_body()).encode()
    except Exception:  # noqa: BLE001 - the server answers a crash with a bare 500, logged
        LOG.exception("the in-process Lambda Invoke crashed")
        return 500, {"content-type": "text/plain"}, SimpleHandler.error_body
    gen_amzn_requestid_long(headers)
    if answer is None:
        return 404, headers, b"{}"
    headers.pop("x-amz-log-result", None)  # sent only for LogType Tail, which goes over HTTP
    headers["content-type"] = "application/json"
    if sys.getsizeof(answer) > _MAX_RESPONSE_BYTES:
        headers["x-amz-function-error"] = "Unhandled"
        answer = json.dumps(_RESPONSE_TOO_LARGE).encode("utf-8")
    return 200, headers, answer if isinstance(answer, bytes) else str(answer).encode("utf-8")


# moto's limit on a synchronous answer and its error (moto/awslambda/responses.py ``invoke``).
_MAX_RESPONSE_BYTES = 6_000_000
_RESPONSE_TOO_LARGE = {
    "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    "errorType": "Function.ResponseSizeTooLarge",
}


def lambda_functions(account: str | None = None, region: str | None = None) -> list[FunctionInfo]:
    from moto.awslambda.models import lambda_backends

    functions = []
    for acc, reg, backend in iter_backends(lambda_backends):
        if (account is None or acc == account) and (region is None or reg == region):
            with contextlib.suppress(Exception):
                functions.extend(_function_info(fn) for fn in backend.list_functions())
    return functions


def append_function_log(function: FunctionInfo, text: str) -> None:
    """Write one invocation's log lines to the function's CloudWatch log group, as Lambda does."""
    from moto.awslambda.models import lambda_backends

    with GATE.shared(), REQUEST_LOCK:
        per_account = dict.get(lambda_backends, function.account)
        backend = dict.get(per_account, function.region) if per_account is not None else None
        if backend is None:
            return
        fn = backend.get_function(function.arn)
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        fn.save_logs(text)
