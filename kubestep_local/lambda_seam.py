"""Run deployed Lambda functions in warm local worker processes instead of moto's Docker path.

moto executes Lambda code only through Docker, which the development machines do not have. We
replace ``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) -> (payload, errored,
logs)`` (moto 5.2.5, ``moto/awslambda/models.py:981``) so every invocation -- from boto3
``lambda.invoke``, from the Step Functions interpreter, from the EventBridge and API Gateway
stand-ins -- runs the handler **from the code zip CloudFormation deployed**, in a pool of warm
worker processes per function (see ``_worker.py``).

Besides running code, the seam records every AWS API call each function makes (for the IAM
check of the synthesized policies) and attributes invocations to the Step Functions execution
that made them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kubestep_local._worker import recv_msg, send_msg

LOG = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
DEFAULT_POOL_SIZE = 8
DEFAULT_PROJECT_PACKAGES = ("kubestep", "lambdas")
EXECUTION_HEADER = "x-kubestep-execution-arn"

# Environment of the runtime process that must not leak into functions: the function gets its
# own configuration (and AWS credentials/endpoint pointing at the emulator) like on AWS.
_SCRUBBED_PREFIXES = ("AWS_", "MOTO_", "KUBESTEP_", "POWERTOOLS_", "_X_AMZN", "TEST_SERVER_MODE")

_tls = threading.local()


class ApiCall(NamedTuple):
    function_name: str
    operation_id: str | None
    action: str


@dataclass(frozen=True)
class CallRecord:
    function_name: str
    operation_id: str | None
    execution_arn: str | None
    action: str


@dataclass(frozen=True)
class Invocation:
    function_name: str
    operation_id: str | None
    execution_arn: str | None
    errored: bool
    error_type: str | None
    duration_seconds: float
    cold: bool


class _Worker:
    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one invocation; None if the worker died or timed out (then it is killed)."""
        try:
            self.sock.settimeout(timeout)
            send_msg(self.sock, request)
            return recv_msg(self.sock)
        except (TimeoutError, OSError, ValueError):
            self.kill()
            return None

    def healthy(self) -> bool:
        """An idle worker never writes: a readable socket means EOF, i.e. the process is gone."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def kill(self) -> None:
        # Only signal a worker whose socket is still open: after EOF it is gone, and its pid may
        # already belong to another process.
        if self.healthy():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.sock.close()


class _FunctionPool:
    """A zygote with the handler imported, and up to ``size`` forked warm workers."""

    def __init__(
        self,
        name: str,
        asset_dir: Path,
        packages: Iterable[str],
        handler: str,
        env: dict[str, str],
        size: int,
        log_path: Path,
    ) -> None:
        self.name = name
        self.asset_dir = asset_dir
        self.packages = ",".join(packages)
        self.handler = handler
        self.env = env
        self.size = size
        self.log_path = log_path
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()  # guards _idle/_busy/_zygote state
        self._fork_lock = threading.Lock()  # one fork request on the control socket at a time
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._zygote: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._closed = False

    # -- zygote ----------------------------------------------------------------------------
    def _ensure_zygote(self) -> socket.socket:
        with self._fork_lock:
            if self._control is not None:
                return self._control
            if self._closed:
                raise RuntimeError(f"pool of {self.name} is closed")
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                # -P: keep kubestep_local/ (this script's directory) off sys.path, so nothing of
                # the working tree shadows the deployed asset.
                self._zygote = subprocess.Popen(
                    [
                        sys.executable,
                        "-P",
                        str(WORKER_SCRIPT),
                        str(child.fileno()),
                        str(self.asset_dir),
                        self.packages,
                        self.handler,
                    ],
                    pass_fds=[child.fileno()],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=str(self.asset_dir),
                )
            child.close()
            parent.settimeout(120)
            ready = recv_msg(parent)
            if not ready or not ready.get("ready"):
                self._zygote.kill()
                raise RuntimeError(f"Lambda worker for {self.name} failed to start; see {self.log_path}")
            if ready.get("import_error"):
                LOG.warning("%s: %s", self.name, ready["import_error"]["errorMessage"])
            self._control = parent
            return parent

    def _fork(self) -> _Worker:
        control = self._ensure_zygote()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        reply = None
        with self._fork_lock:
            try:
                send_msg(control, {"op": "fork"}, fds=[theirs.fileno()])
                reply = recv_msg(control)
            except OSError:
                reply = None
            if (not reply or "pid" not in reply) and self._control is control:
                # The zygote died: forget it, so the next invocation starts a new one.
                self._control = None
                with contextlib.suppress(OSError):
                    control.close()
                if self._zygote is not None:
                    self._zygote.kill()
                    self._zygote.wait()
        theirs.close()
        if not reply or "pid" not in reply:
            ours.close()
            raise RuntimeError(f"Lambda zygote for {self.name} died; see {self.log_path}")
        return _Worker(reply["pid"], ours)

    # -- invocations -------------------------------------------------------------------------
    def invoke(self, request: dict[str, Any], timeout: float) -> tuple[dict[str, Any] | None, bool]:
        """Run one request on a warm worker (forking one if all are busy); (reply, cold)."""
        with self._slots:
            worker = None
            while worker is None:
                with self._lock:
                    worker = self._idle.pop() if self._idle else None
                if worker is None:
                    break
                if not worker.healthy():  # died while idle (e.g. with its zygote)
                    worker.kill()
                    worker = None
            cold = worker is None
            if worker is None:
                worker = self._fork()
            with self._lock:
                self._busy.add(worker)
            reply = None
            try:
                reply = worker.call(request, timeout)
            finally:
                with self._lock:
                    self._busy.discard(worker)
                    if reply is not None and not self._closed:
                        self._idle.append(worker)
                    else:
                        worker.kill()
            return reply, cold

    def prewarm(self, workers: int) -> None:
        self._ensure_zygote()
        with self._lock:
            missing = max(0, min(workers, self.size) - len(self._idle) - len(self._busy))
        for _ in range(missing):
            worker = self._fork()
            with self._lock:
                if self._closed:
                    worker.kill()
                else:
                    self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = self._idle + list(self._busy)
            self._idle = []
        for worker in workers:
            worker.kill()
        # Waits for a zygote start in progress (prewarm), so its control socket gets closed too.
        with self._fork_lock:
            control, self._control = self._control, None
        if control is not None:
            with contextlib.suppress(OSError):
                control.close()  # EOF: the zygote exits, its workers die with it (PDEATHSIG)
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()


def _operation_id(event: Any) -> str | None:
    if isinstance(event, dict):
        value = event.get("operationId")
        if isinstance(value, str) and value:
            return value
    return None


class LambdaSeam:
    """Owns the worker pools and the moto patches that route invocations to them."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        workdir: Path | None = None,
        project_packages: Iterable[str] = DEFAULT_PROJECT_PACKAGES,
        log_dir: Path | None = None,
        save_logs: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.pool_size = pool_size
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="kubestep-lambda-"))
        self.project_packages = tuple(project_packages)
        self.log_dir = log_dir or self.workdir / "logs"
        self.save_logs = save_logs
        # Local-only variables for every function (e.g. KUBESTEP_LOCAL_TIME_SCALE).
        self.extra_env = dict(extra_env or {})
        self._lock = threading.Lock()
        self._pools: dict[str, tuple[tuple[Any, ...], _FunctionPool]] = {}
        self._extract_locks: dict[str, threading.Lock] = {}
        self._calls: list[CallRecord] = []
        self._invocations: list[Invocation] = []
        self._saved: dict[str, Any] = {}
        self._installed = False
        # Snapshot now: the runtime's environment changes under it (pytest sets
        # PYTEST_CURRENT_TEST per phase), which must not retire warm pools.
        self._base_env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}

    # -- patching moto -----------------------------------------------------------------------
    def install(self) -> None:
        """Patch moto (idempotent). Only one seam may be installed per process."""
        global _ACTIVE
        if self._installed:
            return
        if _ACTIVE is not None and _ACTIVE is not self:
            raise RuntimeError("another LambdaSeam is already installed in this process")
        from moto.awslambda.models import LambdaFunction
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        seam = self
        self._saved = {
            "_invoke_lambda": LambdaFunction.__dict__["_invoke_lambda"],
            "invoke": LambdaFunction.__dict__["invoke"],
            "integration": lambda_eval_utils.execute_lambda_function_integration,
            "boto_client_for": lambda_eval_utils.boto_client_for,
        }
        original_invoke = self._saved["invoke"]
        original_integration = self._saved["integration"]
        original_client_for = self._saved["boto_client_for"]

        def _invoke_lambda(fn: Any, event: Any = None) -> tuple[str, bool, str]:
            return seam.run(fn, event)

        def invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
            # moto parses the body before _invoke_lambda; keep the caller's execution ARN (sent
            # by the Step Functions interpreter, below) for attribution.
            _tls.execution_arn = request_headers.get(EXECUTION_HEADER) if request_headers else None
            try:
                result = original_invoke(fn, body, request_headers, response_headers)
            finally:
                _tls.execution_arn = None
            # moto says "Handled"; AWS reports a raised exception as "Unhandled".
            if response_headers.get("x-amz-function-error") == "Handled":
                response_headers["x-amz-function-error"] = "Unhandled"
            return result

        def integration(env: Any, *args: Any, **kwargs: Any) -> Any:
            # Runs in the interpreter's thread: remember which execution is invoking.
            try:
                _tls.sfn_execution = env.states.context_object.context_object_data["Execution"]["Id"]
            except Exception:  # noqa: BLE001 - attribution is best effort
                _tls.sfn_execution = None
            try:
                return original_integration(env, *args, **kwargs)
            finally:
                _tls.sfn_execution = None

        def boto_client_for(*args: Any, **kwargs: Any) -> Any:
            client = original_client_for(*args, **kwargs)
            execution_arn = getattr(_tls, "sfn_execution", None)
            if execution_arn:

                def _add_header(request: Any, **_: Any) -> None:
                    request.headers[EXECUTION_HEADER] = execution_arn

                client.meta.events.register("before-sign.lambda.Invoke", _add_header)
            return client

        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
        LambdaFunction.invoke = invoke  # type: ignore[method-assign]
        lambda_eval_utils.execute_lambda_function_integration = integration
        lambda_eval_utils.boto_client_for = boto_client_for
        _ACTIVE = self
        self._installed = True

    def uninstall(self) -> None:
        global _ACTIVE
        if not self._installed:
            return
        from moto.awslambda.models import LambdaFunction
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        LambdaFunction._invoke_lambda = self._saved["_invoke_lambda"]  # type: ignore[method-assign]
        LambdaFunction.invoke = self._saved["invoke"]  # type: ignore[method-assign]
        lambda_eval_utils.execute_lambda_function_integration = self._saved["integration"]
        lambda_eval_utils.boto_client_for = self._saved["boto_client_for"]
        _ACTIVE = None
        self._installed = False

    # -- running functions --------------------------------------------------------------------
    def _asset_dir(self, fn: Any) -> Path:
        """Extract the function's project packages from its deployed zip (once per code sha)."""
        code_id = hashlib.sha1(f"{fn.code_sha_256}:{fn.handler}".encode()).hexdigest()[:16]
        target = self.workdir / "code" / code_id
        with self._lock:
            lock = self._extract_locks.setdefault(code_id, threading.Lock())
        with lock:
            if target.is_dir():
                return target
            wanted = set(self.project_packages) | {fn.handler.split(".", 1)[0]}
            staging = Path(tempfile.mkdtemp(prefix=f"{code_id}-", dir=self.workdir))
            import io

            with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as archive:
                # Only the project's pure-Python packages: the asset's third-party dependencies
                # are built for the Lambda runtime (Python 3.13/arm64) and come from the local
                # environment instead.
                members = [
                    m
                    for m in archive.namelist()
                    if m.split("/", 1)[0] in wanted or m.split("/", 1)[0].removesuffix(".py") in wanted
                ]
                archive.extractall(staging, members)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(target)
            return target

    def _function_env(self, fn: Any) -> dict[str, str]:
        env = dict(self._base_env)
        env.update(
            {
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.update(self.extra_env)
        env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
        # Reserved Lambda variables (a function cannot override them on AWS either).
        env.update(
            {
                "_HANDLER": fn.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
                "AWS_REGION": fn.region,
                "AWS_DEFAULT_REGION": fn.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )
        return env

    def _pool_for(self, fn: Any) -> _FunctionPool:
        env = self._function_env(fn)
        key = (fn.code_sha_256, fn.handler, json.dumps(env, sort_keys=True))
        name = fn.function_name
        retired: _FunctionPool | None = None
        with self._lock:
            entry = self._pools.get(fn.function_arn)
            if entry is not None and entry[0] == key:
                return entry[1]
        asset_dir = self._asset_dir(fn)
        with self._lock:
            entry = self._pools.get(fn.function_arn)
            if entry is not None and entry[0] == key:
                return entry[1]
            if entry is not None:  # new code or configuration: retire the old workers
                retired = entry[1]
            pool = _FunctionPool(
                name,
                asset_dir,
                self.project_packages,
                fn.handler,
                env,
                self.pool_size,
                self.log_dir / f"{name}.worker.log",
            )
            self._pools[fn.function_arn] = (key, pool)
        if retired is not None:  # off the invoking thread: it may wait for a zygote start
            threading.Thread(target=retired.close, name=f"retire-{name}", daemon=True).start()
        return pool

    def run(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        """The replacement of ``LambdaFunction._invoke_lambda``: (payload, errored, logs)."""
        if event is None:
            event = {}
        execution_arn = getattr(_tls, "execution_arn", None)
        operation_id = _operation_id(event)
        request_id = str(uuid.uuid4())
        timeout = float(fn.timeout or 3)
        request = {
            "event": json.dumps(event),
            "context": {
                "function_name": fn.function_name,
                "function_version": str(fn.version),
                "invoked_function_arn": fn.function_arn,
                "memory_limit_in_mb": int(fn.memory_size or 128),
                "aws_request_id": request_id,
                "log_group_name": fn.logs_group_name,
                "log_stream_name": f"local/[{fn.version}]{request_id.replace('-', '')}",
                "timeout_seconds": timeout,
            },
        }
        started = time.monotonic()
        try:
            reply, cold = self._pool_for(fn).invoke(request, timeout + 0.5)
        except (RuntimeError, OSError):
            # The pool was retired under us (new code/configuration): once more on the new one.
            reply, cold = self._pool_for(fn).invoke(request, timeout + 0.5)
        duration = time.monotonic() - started
        if reply is None:
            payload = json.dumps(
                {
                    "errorType": "Sandbox.Timedout" if duration >= timeout else "Runtime.ExitError",
                    "errorMessage": (
                        f"{request_id} Task timed out after {timeout:.2f} seconds"
                        if duration >= timeout
                        else f"RequestId: {request_id} Error: Runtime exited without providing a reason"
                    ),
                }
            )
            reply = {"payload": payload, "errored": True, "logs": "", "calls": []}
        error_type = None
        if reply["errored"]:
            with contextlib.suppress(Exception):
                error_type = json.loads(reply["payload"]).get("errorType")
        with self._lock:
            self._invocations.append(
                Invocation(
                    fn.function_name,
                    operation_id,
                    execution_arn,
                    reply["errored"],
                    error_type,
                    duration,
                    cold,
                )
            )
            self._calls.extend(
                CallRecord(fn.function_name, operation_id, execution_arn, action) for action in reply["calls"]
            )
        self._record_logs(fn, request_id, reply["logs"], duration, reply["errored"])
        return reply["payload"], reply["errored"], reply["logs"]

    def _record_logs(self, fn: Any, request_id: str, logs: str, duration: float, errored: bool) -> None:
        report = (
            f"START RequestId: {request_id}\n{logs}"
            f"{'' if logs.endswith(chr(10)) or not logs else chr(10)}"
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\t"
            f"Duration: {duration * 1000:.2f} ms{'' if not errored else chr(9) + 'Status: error'}\n"
        )
        with contextlib.suppress(OSError):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / f"{fn.function_name}.log", "a", encoding="utf-8") as out:
                out.write(report)
        if self.save_logs:
            # CloudWatch Logs in the emulator, like the Lambda service does on AWS.
            with contextlib.suppress(Exception):
                fn.logs_backend.ensure_log_group(fn.logs_group_name)
                fn.save_logs(report)

    def prewarm(self, functions: Iterable[Any], workers: int = 1) -> list[threading.Thread]:
        """Start zygotes (and ``workers`` forked workers) for moto function objects in background."""
        threads = []
        for fn in functions:

            def _warm(fn: Any = fn) -> None:
                try:
                    self._pool_for(fn).prewarm(workers)
                except Exception as exc:  # noqa: BLE001 - a cold start later is fine
                    LOG.debug("prewarm of %s failed: %s", fn.function_name, exc)

            thread = threading.Thread(target=_warm, name=f"prewarm-{fn.function_name}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    # -- records ------------------------------------------------------------------------------
    def calls(self) -> list[ApiCall]:
        """Every AWS API call made by functions: (function_name, operation_id, action)."""
        with self._lock:
            return [ApiCall(c.function_name, c.operation_id, c.action) for c in self._calls]

    def call_records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._calls)

    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    def invocation_counts(self) -> Counter[tuple[str, str | None]]:
        """Invocations per (function name, operation id)."""
        with self._lock:
            return Counter((i.function_name, i.operation_id) for i in self._invocations)

    def reset_records(self) -> None:
        with self._lock:
            self._calls.clear()
            self._invocations.clear()

    def pool_pids(self) -> list[int]:
        """Process ids of all zygotes and workers (for leak checks)."""
        pids = []
        with self._lock:
            pools = [pool for _, pool in self._pools.values()]
        for pool in pools:
            with pool._lock:
                if pool._zygote is not None and pool._zygote.poll() is None:
                    pids.append(pool._zygote.pid)
                pids.extend(w.pid for w in [*pool._idle, *pool._busy])
        return pids

    def close(self) -> None:
        self.uninstall()
        with self._lock:
            pools = [pool for _, pool in self._pools.values()]
            self._pools.clear()
        for pool in pools:
            pool.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


_ACTIVE: LambdaSeam | None = None
