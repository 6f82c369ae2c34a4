"""Lambda worker process for the embedded local runtime (run as a script, never imported).

One *base zygote* per deployed code zip imports what all its functions share (the shared
imports: third-party libraries and the project modules that read no function setting at import
time) once, then forks one *function zygote* per function (code sha + environment), which takes
the function's own environment and imports its handler. A function zygote forks warm workers on
request, so growing a pool to the workflows' ``MaxConcurrency`` costs a ``fork()`` instead of
re-importing boto3/pydantic/powertools (seconds on a 2-core machine), and a runtime's five
functions import those libraries once instead of five times.

This file only imports the standard library at module level: the project packages (``kubestep``,
``lambdas``) must come from the deployed asset, so nothing may import them before the asset's
directory has been put first on the import path.

Protocol (``AF_UNIX`` stream sockets, messages are 4-byte big-endian length + JSON):

* base control socket (fd given on the command line):
  base -> parent ``{"ready": true, "threads": n, "env_read": [name]}`` once (``threads``: the
  base's OS threads, 1 when it is safe to fork; ``env_read``: the variables its shared imports
  read, each one a variable the runtime gives the base with the function's own value);
  parent -> base ``{"op": "zygote", "asset_dir", "handler", "env"}`` with two fds attached (the
  new function zygote's control socket, its log file); base -> parent ``{"pid": <zygote pid>}``.
* function zygote control socket (the fd the base passed it):
  zygote -> parent ``{"ready": true, "pid": <its pid>, "import_error": {...} | null}`` once;
  parent -> zygote ``{"op": "fork", "services": [name]}`` with one socket fd attached
  (SCM_RIGHTS): ``services``, the AWS services the runtime's workers have called so far, whose
  SDK models the zygote loads before it forks (``_warm_sdk``), and the project's clients of
  them (``_warm_clients``);
  zygote -> parent ``{"pid": <worker pid>}``.
* worker socket: parent -> worker ``{"event": <json text>, "context": {...}}``;
  worker -> parent ``{"payload": str, "errored": bool, "logs": str, "calls": [call]}``, each call
  ``{"action", "service", "operation", "region", "params", "response", "error"}`` and, when fault
  injection hit it, ``"error_injected"`` (the error is the injected one: the call never reached
  the emulator) and ``"lost_responses"`` (answers of attempts that took effect but were lost);
  params and responses with secret material and large blobs removed (``_redact``). A worker a
  ``crash`` fault kills first sends ``{"calls_before_crash": [call]}``.
"""

from __future__ import annotations

import contextlib
import cProfile
import ctypes
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

_HEADER = struct.Struct(">I")
_MAX_LOG_BYTES = 256 * 1024

# IAM action prefixes that differ from botocore's signing name.
_IAM_PREFIX_OVERRIDES = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "apigateway", "tagging": "tag"}
# S3 operations whose IAM action has another name (Amazon S3 User Guide, "Actions, resources, and
# condition keys for Amazon S3": HeadObject needs s3:GetObject, ListObjectsV2 s3:ListBucket).
_IAM_ACTION_OVERRIDES = {"s3:HeadObject": "s3:GetObject", "s3:ListObjectsV2": "s3:ListBucket"}


def iam_action(prefix: str, operation_name: str) -> str:
    """The IAM action a botocore call is authorized as."""
    action = f"{_IAM_PREFIX_OVERRIDES.get(prefix, prefix)}:{operation_name}"
    return _IAM_ACTION_OVERRIDES.get(action, action)


def send_msg(sock: socket.socket, obj: Any, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    frame = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [frame], fds)
    else:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_msg(sock: socket.socket) -> Any | None:
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    body = _recv_exact(sock, _HEADER.unpack(header)[0])
    return None if body is None else json.loads(body)


class _AssetFinder(importlib.abc.MetaPathFinder):
    """Resolve the asset's top-level project packages from the asset directory, first.

    A meta-path finder (rather than only ``sys.path[0]``) also beats an editable install of the
    project in the local environment, whose finder would otherwise map ``kubestep`` to the
    working tree instead of the code CloudFormation deployed.
    """

    def __init__(self, root: str, names: set[str]) -> None:
        self.root = root
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [self.root])


class LambdaContext:
    """The subset of the AWS Lambda Python context object handlers (and Powertools) use."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.function_name: str = data["function_name"]
        self.function_version: str = data.get("function_version", "$LATEST")
        self.invoked_function_arn: str = data["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(data.get("memory_limit_in_mb", 128))
        self.aws_request_id: str = data["aws_request_id"]
        self.log_group_name: str = data.get("log_group_name", "")
        self.log_stream_name: str = data.get("log_stream_name", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + float(data.get("timeout_seconds", 3))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_calls: list[dict[str, Any]] = []
_reply_socket: socket.socket | None = None  # this worker's socket to the runtime
# The call botocore is making on this thread (fault injection reports its lost answer to it).
_current = threading.local()

# Request/response members never recorded: secret material, and blobs the IAM check has no use for.
_REDACTED_KEYS = frozenset(
    {
        "SecretString",
        "SecretBinary",
        "Plaintext",
        "CiphertextBlob",
        "UserData",
        "AssumeRolePolicyDocument",
        "Password",
        "Token",
        "SessionToken",
        "SecretAccessKey",
        "Credentials",
    }
)
_MAX_STRING = 2048
# Kept whole: an instance role's policy (no secret in it) is what the IAM check evaluates the
# instances' own calls against (tests/iam).
_KEPT_WHOLE = frozenset({"PolicyDocument"})
# Leaves _redact keeps as they are (a str only up to _MAX_STRING): exact types, not subclasses.
_KEPT_LEAVES = frozenset({str, bool, int, float, type(None)})
# Read calls' responses are not recorded: the resources they act on are named in the request.
_READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Query", "Scan")


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 12:
        return "<nested>"
    if isinstance(value, dict):
        kept: dict[Any, Any] = {}
        for k, v in value.items():
            if k == "ResponseMetadata":
                continue
            if k in _REDACTED_KEYS:
                kept[k] = "<redacted>"
            elif k in _KEPT_WHOLE:
                kept[k] = v
            elif depth < 12 and type(v) in _KEPT_LEAVES and (type(v) is not str or len(v) <= _MAX_STRING):
                kept[k] = v  # what _redact(v, depth + 1) gives, without the call (most members)
            else:
                kept[k] = _redact(v, depth + 1)
        return kept
    if isinstance(value, (list, tuple)):
        return [
            v
            if depth < 12 and type(v) in _KEPT_LEAVES and (type(v) is not str or len(v) <= _MAX_STRING)
            else _redact(v, depth + 1)
            for v in value[:200]
        ]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return value if len(value) <= _MAX_STRING else f"<{len(value)} chars>"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "get_expression"):  # a boto3 DynamoDB condition (Key(...).eq(...))
        return _condition(value)
    return str(value)  # datetimes, decimals, streaming bodies


def record_safe(value: Any) -> Any:
    """A call's parameters or response as the recorder keeps them (secret material removed)."""
    return _redact(value)


def _condition(condition: Any) -> Any:
    """A boto3 condition as the expression DynamoDB receives (the key values decide LeadingKeys)."""
    try:
        from boto3.dynamodb.conditions import ConditionExpressionBuilder

        try:
            built = ConditionExpressionBuilder().build_expression(condition, is_key_condition=True)
        except Exception:  # noqa: BLE001 - not a key condition
            built = ConditionExpressionBuilder().build_expression(condition)
        return {
            "Expression": built.condition_expression,
            "Names": built.attribute_name_placeholders,
            "Values": _redact(built.attribute_value_placeholders, 1),
        }
    except Exception:  # noqa: BLE001
        return str(condition)


def _install_call_recorder() -> None:
    """Record every AWS API call made through botocore in this process: the IAM-style action, the
    request's parameters and (for calls that change something) the response, so the IAM check can
    rebuild the resources and condition keys of each call (tests/iam)."""
    try:
        from botocore.client import BaseClient
        from botocore.exceptions import ClientError
    except ImportError:  # pragma: no cover - botocore is always there in practice
        return
    original = BaseClient._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        call: dict[str, Any] | None = None
        try:
            metadata = self.meta.service_model.metadata
            prefix = metadata.get("signingName") or metadata.get("endpointPrefix") or "unknown"
            call = {
                "action": iam_action(prefix, operation_name),
                "service": self.meta.service_model.service_name,
                "operation": operation_name,
                "region": self.meta.region_name,
                "params": _redact(api_params),
                "response": None,
                "error": None,
            }
            _calls.append(call)
        except Exception:  # noqa: BLE001 - recording must never break the call
            pass
        outer, _current.call = getattr(_current, "call", None), call
        try:
            result = original(self, operation_name, api_params)
        except ClientError as exc:
            if call is not None:
                error = exc.response.get("Error", {})
                call["error"] = error.get("Code")
                if _faults is not None and str(error.get("Message", "")).startswith(_faults.INJECTED_MESSAGE):
                    call["error_injected"] = True  # the answer of fault injection, not of the service
            raise
        finally:
            _current.call = outer
        if call is not None and not operation_name.startswith(_READ_PREFIXES):
            with contextlib.suppress(Exception):
                call["response"] = _redact(result)
        return result

    BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


def _note_injected(kind: str, answer: Any) -> None:
    """Fault injection hit an attempt of the current call: the answer of an attempt that took
    effect although it was lost is recorded with the call (``lost_responses``), for calls that
    change something."""
    call = getattr(_current, "call", None)
    if call is not None and answer is not None and not call["operation"].startswith(_READ_PREFIXES):
        call.setdefault("lost_responses", []).append(_redact(answer))
    if kind == "crash" and _reply_socket is not None:
        # The worker dies next: the calls it made so far (this one took effect) still go to the
        # recorder, as a message before the reply that never comes.
        send_msg(_reply_socket, {"calls_before_crash": list(_calls)})


_faults: Any = None


def _install_faults() -> None:
    """Fault injection (kubestep_local/faults.py, loaded by path: it is not in the asset), when
    the runtime names a fault plan."""
    global _faults
    # faults.ENV_VAR, spelled out: this file imports nothing of the project before the asset's
    # path is set (the test suite checks the two agree).
    path = os.environ.get("KUBESTEP_LOCAL_FAULTS")
    if not path:
        return
    spec = importlib.util.spec_from_file_location(
        "kubestep_local_faults", os.path.join(os.path.dirname(__file__), "faults.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.install(path)
    module.injection_listener = _note_injected
    _faults = module


def _share_sdk_data() -> None:
    """One botocore data loader for every session of this process: each session would otherwise
    load the endpoint data and every service model it uses anew. A worker's sessions then start
    with what the zygote loaded before forking it."""
    import botocore.loaders
    import botocore.session

    loaders: dict[str | None, Any] = {}
    create = botocore.loaders.create_loader

    def create_loader(search_path_string: str | None = None) -> Any:
        if search_path_string not in loaders:
            loaders[search_path_string] = create(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = create_loader  # what Session._register_data_loader calls


def _warm_sdk(services: list[str]) -> None:
    """Load what a client of each service reads from botocore's data (the models, the endpoint
    rules): a fork inherits it, and a worker's first client of a service costs no JSON parsing.
    The pool names the services the runtime's workers called: the next worker will likely call
    them too."""
    import botocore.session

    loader = botocore.session.create_loader(os.environ.get("AWS_DATA_PATH"))
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        with contextlib.suppress(Exception):  # a name this botocore does not ship
            loader.load_data(name)
    for service in services:
        for type_name in ("service-2", "endpoint-rule-set-1"):
            with contextlib.suppress(Exception):
                loader.load_service_model(service, type_name)


def _warm_clients(services: list[str]) -> None:
    """Make the project's clients of those services (``kubestep.aws.client``, cached per service
    and region) in the function's region, so a worker starts with them instead of building each
    (~10 ms of CPU a client, models already loaded). Nothing that must be a worker's own is
    shared: a client connects on its first call only (botocore's URLLib3Session hands urllib3 a
    PoolManager, whose pools open connections lazily) and the zygote calls nothing; its
    credentials are the function environment's static keys, the same in every worker of this
    zygote (one zygote per code and environment); everything else a fork copies."""
    make = getattr(sys.modules.get("kubestep.aws"), "client", None)
    region = os.environ.get("AWS_REGION")
    if make is None or not region:
        return
    for service in services:
        with contextlib.suppress(Exception):  # a service name botocore does not know
            make(service, region)


def _load_handler(spec: str) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, func_name = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - reported per invocation, like the Lambda runtime
        return None, {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": f"Unable to import module '{module_name}': {exc}",
            "stackTrace": traceback.format_exception(exc),
        }
    handler = getattr(module, func_name, None)
    if handler is None:
        return None, {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
            "stackTrace": [],
        }
    return handler, None


def _set_pdeathsig() -> None:
    # Linux only: die with the parent (the zygote), so workers never outlive the runtime.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _error(exc: BaseException) -> dict[str, Any]:
    tb = exc.__traceback__
    # Skip worker_loop's own frame: the Lambda runtime reports only the handler's frames.
    tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(tb),
    }


# A directory for each worker's CPU profile, `<function>-<pid>.prof`: cProfile's statistics of its
# invocations so far, in CPU (process) time, so waiting on the emulator counts for nothing.
PROFILE_ENV = "KUBESTEP_LOCAL_PROFILE"


class _Profile:
    """The invocations' CPU profile when PROFILE_ENV names a directory; nothing otherwise."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.profiler = cProfile.Profile(time.process_time) if directory else None

    @contextlib.contextmanager
    def invocation(self, function_name: str) -> Any:
        if self.profiler is None or self.directory is None:
            yield
            return
        self.profiler.enable()
        try:
            yield
        finally:
            self.profiler.disable()
            self.profiler.dump_stats(os.path.join(self.directory, f"{function_name}-{os.getpid()}.prof"))


def worker_loop(sock: socket.socket, handler: Any, import_error: dict[str, Any] | None) -> None:
    global _reply_socket
    _reply_socket = sock
    profile = _Profile(os.environ.get(PROFILE_ENV))
    # Capture the handler's output at the file-descriptor level: loggers (Powertools) keep a
    # reference to the original sys.stdout, so swapping sys.stdout would miss their lines.
    capture = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
    os.dup2(capture.fileno(), 1)
    os.dup2(capture.fileno(), 2)
    while True:
        request = recv_msg(sock)
        if request is None:  # parent went away
            os._exit(0)
        _calls.clear()
        capture.seek(0)
        capture.truncate()
        errored = False
        if import_error is not None:
            payload, errored = json.dumps(import_error), True
        else:
            context = LambdaContext(request["context"])
            try:
                event = json.loads(request["event"])
                if _faults is not None:
                    _faults.begin_invocation(context.function_name, event)
                with profile.invocation(context.function_name):
                    result = handler(event, context)
                try:
                    payload = json.dumps(result)
                except (TypeError, ValueError) as exc:
                    errored = True
                    payload = json.dumps(
                        {
                            "errorType": "Runtime.MarshalError",
                            "errorMessage": f"Unable to marshal response: {exc}",
                            "stackTrace": [],
                        }
                    )
            except Exception as exc:  # noqa: BLE001 - every handler error is a function error
                errored = True
                payload = json.dumps(_error(exc))
                traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        capture.seek(0)
        logs = capture.read(_MAX_LOG_BYTES).decode("utf-8", "replace")
        send_msg(sock, {"payload": payload, "errored": errored, "logs": logs, "calls": list(_calls)})


class _EnvReads(os._Environ):  # type: ignore[type-arg]
    """``os.environ`` that notes the variables read through it (``*`` for a walk over all of
    them), while ``recording`` is set: what the base's shared imports read of the environment."""

    recording = True
    names: set[str]

    def __getitem__(self, key: str) -> str:
        if self.recording:
            self.names.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if self.recording and isinstance(key, str):
            self.names.add(key)
        return super().__contains__(key)

    def __iter__(self) -> Any:
        if self.recording:
            self.names.add("*")
        return super().__iter__()


def _import_shared(modules: list[str], finder: _AssetFinder) -> list[str]:
    """Import the shared modules and return the environment variables that took. A project
    module only from the asset (an asset without the package skips it), and third-party ones
    only for an asset of the project: a bare handler zip needs none of them. A module that fails
    is left to the handler's import, which reports it like the Lambda runtime."""
    if not any(finder.find_spec(name) is not None for name in finder.names):
        return []
    real = os.environ
    reads = _EnvReads(real._data, real.encodekey, real.decodekey, real.encodevalue, real.decodevalue)
    reads.names = set()
    os.environ = reads  # noqa: B003 - the same variables: os.getenv and the modules read through it
    try:
        for name in modules:
            top = name.partition(".")[0]
            if top in finder.names and finder.find_spec(top) is None:
                continue
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    finally:
        reads.recording = False  # a module that kept it (`from os import environ`) still works
        os.environ = real  # noqa: B003
    return sorted(reads.names)


def _os_threads() -> int:
    """The process's OS threads (Python's and any a C extension started)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: Python's own threads are all we can see
        return threading.active_count()


def base_main(control_fd: int, asset_dir: str, packages: str, shared: str) -> None:
    """The base zygote: the shared imports from the asset, then a function zygote per request."""
    control = socket.socket(fileno=control_fd)
    sys.path.insert(0, asset_dir)
    finder = _AssetFinder(asset_dir, set(filter(None, packages.split(","))))
    sys.meta_path.insert(0, finder)
    _install_call_recorder()
    _share_sdk_data()
    env_read = _import_shared(list(filter(None, shared.split(","))), finder)
    # Auto-reap the function zygotes: the runtime tracks them (pidfd), not the base.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    send_msg(control, {"ready": True, "threads": _os_threads(), "env_read": env_read})
    while True:
        request, fds = _recv_request(control, 2)
        # The shared imports leave the function zygotes' garbage collections (see _serve_forks).
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            control.close()
            _function_zygote(request, fds[0], fds[1], finder, asset_dir)
            os._exit(0)
        for fd in fds:
            os.close(fd)
        send_msg(control, {"pid": pid})


def _recv_request(control: socket.socket, nfds: int) -> tuple[dict[str, Any], list[int]]:
    """The next request on a control socket and its fds; exit when the runtime is gone."""
    try:
        msg, fds, _flags, _addr = socket.recv_fds(control, _HEADER.size, nfds)
    except OSError:
        os._exit(0)
    if not msg:  # the runtime closed the control socket (or died): leave, workers follow
        os._exit(0)
    body = _recv_exact(control, _HEADER.unpack(msg)[0])
    if body is None or len(fds) != nfds:
        os._exit(0)
    return json.loads(body), fds


def _function_zygote(
    request: dict[str, Any], control_fd: int, log_fd: int, finder: _AssetFinder, base_dir: str
) -> None:
    """In the fork of the base: become the function's zygote, with its environment only (what
    Lambda gives it), its log, its asset directory, its handler."""
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.clear()
    os.environ.update(request["env"])
    asset_dir = request["asset_dir"]
    os.chdir(asset_dir)
    # The same code zip as the base's directory, plus the handler's module: imports still to come
    # resolve here first.
    sys.path[sys.path.index(base_dir)] = asset_dir
    finder.root = asset_dir
    _serve_forks(socket.socket(fileno=control_fd), request["handler"])


def _serve_forks(control: socket.socket, handler_spec: str) -> None:
    _install_faults()
    handler, import_error = _load_handler(handler_spec)
    send_msg(control, {"ready": True, "pid": os.getpid(), "import_error": import_error})
    while True:
        request, fds = _recv_request(control, 1)
        services = request.get("services", [])
        _warm_sdk(services)
        _warm_clients(services)
        # What the zygote holds (the handler's modules, the SDK's models) leaves the workers'
        # garbage collections: each would otherwise walk all of it again, and copy every page it
        # shares with the zygote by touching the objects' headers (Python's gc.freeze advice).
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # handlers may use subprocess
            _set_pdeathsig()
            control.close()
            worker_loop(socket.socket(fileno=fds[0]), handler, import_error)
            os._exit(0)
        os.close(fds[0])
        send_msg(control, {"pid": pid})


if __name__ == "__main__":
    base_main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
