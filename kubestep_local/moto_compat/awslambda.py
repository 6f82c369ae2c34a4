"""Lambda: every invocation routed to the runtime's workers instead of moto's Docker path,
attributed to the Step Functions execution that made it; deployed functions read as plain data
(``FunctionInfo``); invocation logs written where Lambda writes them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubestep_local.moto_compat.core import GATE, REQUEST_LOCK, PatchSet, iter_backends

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
    """The interpreter's Lambda task remembers, in its thread, which execution invokes; its
    Lambda client (one per region and service: moto makes a new boto3 client for every
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
