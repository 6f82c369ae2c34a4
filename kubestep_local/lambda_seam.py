"""The Lambda seam: every invocation moto receives runs on the warm worker pool, and is recorded.

moto runs Lambda code only in Docker, which the development machines do not have.
``moto_compat.route_lambda_invocations`` hands each invocation -- from boto3 ``lambda.invoke``,
the Step Functions interpreter (whose Lambda tasks call moto's Lambda backend in process, not
over loopback HTTP), the EventBridge and API Gateway stand-ins -- to ``LambdaSeam.run``,
which runs the handler **from the code zip CloudFormation deployed** on ``worker_pool.WorkerPools``,
answers as Lambda does (payload, function error, timeout, crash), writes the function's log to
CloudWatch Logs, and records the invocation and its AWS API calls in ``recorder.CallRecorder``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from kubestep_local import moto_compat
from kubestep_local.moto_compat import FunctionInfo
from kubestep_local.recorder import CallRecorder, Invocation
from kubestep_local.worker_pool import WorkerPools

LOG = logging.getLogger(__name__)


class Interceptor(Protocol):
    def before_invoke(self, fn: FunctionInfo, event: Any, execution_arn: str | None) -> None: ...

    def after_invoke(
        self,
        fn: FunctionInfo,
        event: Any,
        execution_arn: str | None,
        started_at: float,
        duration: float,
        died: bool,
    ) -> None: ...


_ACTIVE: LambdaSeam | None = None
_ACTIVE_LOCK = threading.Lock()


def _operation_id(event: Any) -> str | None:
    if isinstance(event, dict):
        value = event.get("operationId")
        if isinstance(value, str) and value:
            return value
    return None


class LambdaSeam:
    """Routes moto's Lambda invocations to ``pools`` and records them in ``recorder``."""

    def __init__(
        self,
        pools: WorkerPools,
        recorder: CallRecorder | None = None,
        *,
        log_dir: Path,
        save_logs: bool = True,
        interceptors: list[Interceptor] | None = None,
    ) -> None:
        self.pools = pools
        self.recorder = recorder or CallRecorder()
        self.log_dir = log_dir
        self.save_logs = save_logs
        # Fault injection and the compute timeline (LocalRuntime): told before and after each run.
        self.interceptors: list[Interceptor] = list(interceptors or [])
        self._patches = moto_compat.PatchSet()

    def install(self) -> None:
        """Patch moto (idempotent). Only one seam may be installed per process."""
        global _ACTIVE
        with _ACTIVE_LOCK:
            if self._patches:
                return
            if _ACTIVE is not None and _ACTIVE is not self:
                raise RuntimeError("another LambdaSeam is already installed in this process")
            moto_compat.route_lambda_invocations(self._patches, self.run)
            _ACTIVE = self

    def uninstall(self) -> None:
        global _ACTIVE
        with _ACTIVE_LOCK:
            self._patches.undo()
            if _ACTIVE is self:
                _ACTIVE = None

    def close(self) -> None:
        self.uninstall()
        self.pools.close()

    def run(self, fn: FunctionInfo, event: Any, execution_arn: str | None) -> tuple[str, bool, str]:
        """One invocation: (payload, errored, logs), as moto's ``_invoke_lambda`` returns them."""
        if event is None:
            event = {}
        request_id = str(uuid.uuid4())
        timeout = fn.timeout_seconds
        request = {
            "event": json.dumps(event),
            "context": {
                "function_name": fn.name,
                "function_version": fn.version,
                "invoked_function_arn": fn.arn,
                "memory_limit_in_mb": fn.memory_mb,
                "aws_request_id": request_id,
                "log_group_name": fn.log_group,
                "log_stream_name": f"local/[{fn.version}]{request_id.replace('-', '')}",
                "timeout_seconds": timeout,
            },
        }
        for interceptor in self.interceptors:
            interceptor.before_invoke(fn, event, execution_arn)  # may raise moto_compat.InvocationRefused
        started_at = time.time()
        started = time.monotonic()
        reply, cold = self.pools.invoke(fn, request, timeout + 0.5)
        duration = time.monotonic() - started
        died = reply is None or bool(reply.get("died"))
        for interceptor in self.interceptors:
            interceptor.after_invoke(fn, event, execution_arn, started_at, duration, died)
        if died:
            timed_out = duration >= timeout
            payload = json.dumps(
                {
                    "errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError",
                    "errorMessage": (
                        f"{request_id} Task timed out after {timeout:.2f} seconds"
                        if timed_out
                        else f"RequestId: {request_id} Error: Runtime exited without providing a reason"
                    ),
                }
            )
            # The calls a worker told before it died (a ``crash`` fault) took effect: recorded too.
            reply = {"payload": payload, "errored": True, "logs": "", "calls": (reply or {}).get("calls", [])}
        error_type = None
        if reply["errored"]:
            with contextlib.suppress(Exception):
                error_type = json.loads(reply["payload"]).get("errorType")
        invocation = Invocation(
            fn.name, _operation_id(event), execution_arn, reply["errored"], error_type, duration, cold
        )
        self.recorder.record(invocation, reply["calls"])
        self._record_logs(fn, request_id, reply["logs"], duration, reply["errored"])
        return reply["payload"], reply["errored"], reply["logs"]

    def _record_logs(self, fn: FunctionInfo, request_id: str, logs: str, duration: float, errored: bool) -> None:
        report = (
            f"START RequestId: {request_id}\n{logs}"
            f"{'' if logs.endswith(chr(10)) or not logs else chr(10)}"
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\t"
            f"Duration: {duration * 1000:.2f} ms{'' if not errored else chr(9) + 'Status: error'}\n"
        )
        with contextlib.suppress(OSError):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / f"{fn.name}.log", "a", encoding="utf-8") as out:
                out.write(report)
        if self.save_logs:
            # CloudWatch Logs in the emulator, like the Lambda service does on AWS.
            with contextlib.suppress(Exception):
                moto_compat.append_function_log(fn, report)
