"""Warm worker processes that run deployed Lambda functions from their code zip.

Per code zip one *base zygote* imports what its functions share (``DEFAULT_SHARED_IMPORTS``)
once and forks, per function (code sha + configuration), a *function zygote* that takes the
function's environment, imports the handler and forks warm workers on request (``_worker.py``):
a runtime's functions import boto3/pydantic/powertools once, and growing a pool to the
workflows' ``MaxConcurrency`` costs a ``fork()``. Each worker runs one invocation at a time, with
the function's environment and ``AWS_ENDPOINT_URL`` pointing at the emulator; a crash or timeout
kills that worker only, like a Lambda sandbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubestep_local._worker import PROFILE_ENV, recv_msg, send_msg
from kubestep_local.moto_compat import FunctionInfo

LOG = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
DEFAULT_POOL_SIZE = 8
DEFAULT_PROJECT_PACKAGES = ("kubestep", "lambdas")

# Environment of the runtime process that must not leak into functions: the function gets its
# own configuration (and AWS credentials/endpoint pointing at the emulator) like on AWS.
_SCRUBBED_PREFIXES = ("AWS_", "MOTO_", "KUBESTEP_", "POWERTOOLS_", "_X_AMZN", "TEST_SERVER_MODE")

# What every function of the project imports, imported once per code zip by its base zygote. None
# may read a function's setting at import time: the Logger/Tracer/Metrics of lambdas._tasks,
# Powertools' resolver and routers (kubestep.api), X-Ray's recorder (aws_xray_sdk.core, which
# starts a botocore session) do, so they stay out and each function zygote imports them. A
# project module is imported from the asset only; an asset without the project's packages (a bare
# handler zip) gets none of these. tests/unit/test_base_zygote.py checks what they read.
DEFAULT_SHARED_IMPORTS = (
    "botocore.session",
    "botocore.client",
    "boto3",
    "pydantic",
    "aws_lambda_powertools",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.middlewares",
    "aws_lambda_powertools.logging.correlation_paths",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parameters",
    "kubestep.aws",
    "kubestep.errors",
    "kubestep.flow.dispatch",
    "kubestep.settings",
    "kubestep.store",
    "kubestep.workflows",
    *(
        f"kubestep.workflows.{name}"
        for name in (
            "auto_repair",
            "create_cluster",
            "create_node_pool",
            "delete_backups",
            "delete_cluster",
            "delete_node_pool",
            "deprovision_network",
            "execution_events",
            "plan_repairs",
            "plan_upgrades",
            "provision_network",
            "repair_cluster",
            "restore_cluster",
            "sweep_orphans",
            "update_cluster",
            "update_node_pool",
        )
    ),
)

# The variables the shared imports read at import time (Powertools' package logger and user agent,
# its middleware factory, pydantic's plugin loader, botocore's and sysconfig's home), and those
# the interpreter and the C library read at start (PYTHON*, locale, time zone). A base zygote
# starts with the function's own values of these and nothing else, so what the shared imports
# made of them is what the function's own imports would have made; functions that differ in one
# get a base each.
IMPORT_TIME_ENV = frozenset(
    {
        "HOME",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "POWERTOOLS_DEBUG",
        "POWERTOOLS_TRACE_MIDDLEWARES",
        "PYDANTIC_DISABLE_PLUGINS",
        "LANG",
        "LANGUAGE",
        "TZ",
    }
)
IMPORT_TIME_ENV_PREFIXES = ("PYTHON", "_PYTHON", "LC_")


def read_at_import(name: str) -> bool:
    """Whether a base zygote is given the variable (one that its imports may read)."""
    return name in IMPORT_TIME_ENV or name.startswith(IMPORT_TIME_ENV_PREFIXES)


def import_time_env(env: dict[str, str]) -> dict[str, str]:
    """The part of a function's environment its base zygote starts with."""
    return {name: value for name, value in env.items() if read_at_import(name)}


class _Worker:
    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one invocation; None if the worker died or timed out (then it is killed), or
        ``{"died": True, "calls": [...]}`` if it died after telling the calls it made (fault
        injection's ``crash``: the recorder must know what they did)."""
        calls_before_crash = None
        try:
            self.sock.settimeout(timeout)
            send_msg(self.sock, request)
            reply = recv_msg(self.sock)
            while reply is not None and "calls_before_crash" in reply:
                calls_before_crash = reply["calls_before_crash"]
                reply = recv_msg(self.sock)
        except (TimeoutError, OSError, ValueError):
            self.kill()
            reply = None
        if reply is None and calls_before_crash is not None:
            return {"died": True, "calls": calls_before_crash}
        return reply

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


class _ForkedZygote:
    """A function zygote, the base zygote's child (not ours to wait for). On Linux a pidfd, which
    keeps naming this process after it died (its pid could name another by then); elsewhere its
    pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        # ProcessLookupError: it is gone already.
        self._pidfd: int | None = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        self.returncode: int | None = None  # 0 once it ended (the base reaped it: no status)

    def poll(self) -> int | None:
        return self.wait(timeout=0) if self.returncode is None else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Its end, waited for up to ``timeout`` seconds (TimeoutExpired after a positive one;
        None at once with 0 if it still runs)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if self._pidfd is not None:
                if select.select([self._pidfd], [], [], timeout)[0]:
                    os.close(self._pidfd)
                    self._pidfd, self.returncode = None, 0
                    break
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    self.returncode = 0
                    break
                if deadline is None or time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
            if timeout is not None and timeout > 0:
                raise subprocess.TimeoutExpired(f"Lambda zygote {self.pid}", timeout)
            return None
        return self.returncode

    def kill(self) -> None:
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)


def _ready_message(control: socket.socket) -> dict[str, Any] | None:
    """A zygote's first message on its control socket, when it says it is ready (None: it died,
    timed out or said something else)."""
    control.settimeout(120)
    try:
        ready = recv_msg(control)
    except OSError:
        return None
    return ready if ready and ready.get("ready") else None


class BaseZygote:
    """The base zygote of a code zip: its shared imports done once, it forks the function
    zygotes (each with its own environment, log and handler). Started on first use; a dead one
    is replaced on the next."""

    def __init__(
        self,
        asset_dir: Path,
        packages: Iterable[str],
        shared_imports: Iterable[str],
        env: dict[str, str],
        log_path: Path,
    ) -> None:
        self.asset_dir = asset_dir
        self.packages = ",".join(packages)
        self.shared_imports = ",".join(shared_imports)
        self.env = env
        self.log_path = log_path
        self.env_read: list[str] = []  # what its shared imports read of the environment
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._closed = False

    def _ensure(self) -> socket.socket:
        if self._control is not None and self._process is not None and self._process.poll() is None:
            return self._control
        if self._closed:
            raise RuntimeError(f"base zygote of {self.asset_dir} is closed")
        self._forget()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # -P: keep kubestep_local/ (this script's directory) off sys.path, so nothing of
            # the working tree shadows the deployed asset.
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    str(WORKER_SCRIPT),
                    str(child.fileno()),
                    str(self.asset_dir),
                    self.packages,
                    self.shared_imports,
                ],
                pass_fds=[child.fileno()],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=str(self.asset_dir),
            )
        child.close()
        ready = _ready_message(parent)
        if ready is None:
            parent.close()
            self._forget()
            raise RuntimeError(f"Lambda base zygote failed to start; see {self.log_path}")
        if ready.get("threads") != 1:  # a fork would copy no thread but a lock one held
            LOG.warning("Lambda base zygote runs %s threads before forking", ready.get("threads"))
        self.env_read = ready.get("env_read") or []
        foreign = [name for name in self.env_read if not read_at_import(name)]
        if foreign:  # the functions would see the base's value (none) of these at import time
            LOG.warning("Lambda base zygote's shared imports read %s, not given to it", ", ".join(foreign))
        self._control = parent
        return parent

    def _forget(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            with contextlib.suppress(OSError):
                control.close()
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def start_zygote(
        self, asset_dir: Path, handler: str, env: dict[str, str], log_path: Path
    ) -> tuple[socket.socket, _ForkedZygote]:
        """Fork a function zygote; its control socket (its ready message still to read) and process."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        request = {"op": "zygote", "asset_dir": str(asset_dir), "handler": handler, "env": env}
        for attempt in range(2):  # once more on a fresh base when the old one died
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            reply = None
            with self._lock:
                control = self._ensure()
                try:
                    with open(log_path, "ab") as log:
                        send_msg(control, request, fds=[theirs.fileno(), log.fileno()])
                    reply = recv_msg(control)
                    zygote = _ForkedZygote(reply["pid"]) if reply and "pid" in reply else None
                except (OSError, ValueError):
                    zygote = None
                if zygote is None:
                    self._forget()
            theirs.close()
            if zygote is not None:
                return ours, zygote
            ours.close()
            if attempt:
                raise RuntimeError(f"Lambda base zygote died; see {self.log_path}")
        raise AssertionError("unreachable")

    def pids(self) -> list[int]:
        with self._lock:
            process = self._process
        return [process.pid] if process is not None and process.poll() is None else []

    def close(self) -> None:
        with self._lock:
            self._closed = True
            control, self._control = self._control, None
            process = self._process
        if control is not None:
            with contextlib.suppress(OSError):
                control.close()  # EOF: the base exits; its function zygotes live on their own sockets
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class CalledServices:
    """The AWS services Lambda workers have called so far (thread-safe): a zygote loads their SDK
    models and makes the project's clients of them before each fork (``_worker._warm_sdk``), so a
    worker it forks starts with them instead of building each (the EC2 model alone is ~0.14 s of
    CPU). The runtime's pools share one: a function's first workers, forked in a burst before
    any of them has called anything, start with what the runtime's other functions called."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: set[str] = set()

    def note(self, reply: dict[str, Any] | None) -> None:
        """The services of the calls a worker's reply reports."""
        called = {call.get("service") for call in (reply or {}).get("calls") or ()}
        called.discard(None)
        called.discard("")
        with self._lock:
            self._names |= called

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._names)


class FunctionPool:
    """A function zygote with the handler imported, and up to ``size`` forked warm workers."""

    def __init__(
        self,
        name: str,
        asset_dir: Path,
        packages: Iterable[str],
        handler: str,
        env: dict[str, str],
        size: int,
        log_path: Path,
        base: BaseZygote | None = None,
        services: CalledServices | None = None,
    ) -> None:
        self.name = name
        self.asset_dir = asset_dir
        self.handler = handler
        self.env = env
        self.size = size
        self.log_path = log_path
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()  # guards _idle/_busy/_zygote state
        self._fork_lock = threading.Lock()  # one fork request on the control socket at a time
        self._services = services or CalledServices()  # of this pool's workers, and others' if shared
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._zygote: _ForkedZygote | None = None
        self._control: socket.socket | None = None
        self._closed = False
        # Without a base given, one of its own with no shared imports: a zygote as if alone.
        self._own_base = base is None
        self.base = base or BaseZygote(
            asset_dir, packages, (), import_time_env(env), log_path.with_suffix(".base" + log_path.suffix)
        )

    # -- zygote ----------------------------------------------------------------------------
    def _ensure_zygote(self) -> socket.socket:
        with self._fork_lock:
            if self._control is not None:
                return self._control
            if self._closed:
                raise RuntimeError(f"pool of {self.name} is closed")
            parent, self._zygote = self.base.start_zygote(self.asset_dir, self.handler, self.env, self.log_path)
            ready = _ready_message(parent)
            if ready is None:
                parent.close()
                self._zygote.kill()
                self._zygote.wait()
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
                # The zygote loads their SDK models first: every worker it forks inherits them.
                send_msg(control, {"op": "fork", "services": self._services.names()}, fds=[theirs.fileno()])
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
                self._services.note(reply)
                with self._lock:
                    self._busy.discard(worker)
                    if reply is not None and not reply.get("died") and not self._closed:
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

    def pids(self) -> list[int]:
        """The zygote's and the workers' process ids."""
        with self._lock:
            pids = [w.pid for w in [*self._idle, *self._busy]]
            if self._zygote is not None and self._zygote.poll() is None:
                pids.append(self._zygote.pid)
        return pids

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
        if self._own_base:
            self.base.close()


class WorkerPools:
    """One ``FunctionPool`` per deployed function; a new code zip or configuration retires the old."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        workdir: Path,
        log_dir: Path,
        project_packages: Iterable[str] = DEFAULT_PROJECT_PACKAGES,
        shared_imports: Iterable[str] = DEFAULT_SHARED_IMPORTS,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.pool_size = pool_size
        self.workdir = workdir
        self.log_dir = log_dir
        self.project_packages = tuple(project_packages)
        self.shared_imports = tuple(shared_imports)
        # Local-only variables for every function (e.g. KUBESTEP_LOCAL_TIME_SCALE).
        self.extra_env = dict(extra_env or {})
        self._lock = threading.Lock()
        self._pools: dict[str, tuple[tuple[Any, ...], FunctionPool]] = {}
        # Per code zip and the import-time part of the environment (import_time_env).
        self._bases: dict[tuple[Any, ...], BaseZygote] = {}
        self._extract_locks: dict[str, threading.Lock] = {}
        self._services = CalledServices()  # shared by every pool: see CalledServices
        # Snapshot now: the runtime's environment changes under it (pytest sets
        # PYTEST_CURRENT_TEST per phase), which must not retire warm pools.
        self._base_env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        # Where the workers write their CPU profiles, when asked (_worker.PROFILE_ENV).
        if os.environ.get(PROFILE_ENV):
            self.extra_env.setdefault(PROFILE_ENV, os.environ[PROFILE_ENV])

    def _asset_dir(self, fn: FunctionInfo) -> Path:
        """The function's project packages and handler module from its deployed zip (once per
        code sha and handler)."""
        code_id = hashlib.sha1(f"{fn.code_sha256}:{fn.handler}".encode()).hexdigest()[:16]
        return self._extract(fn, code_id, set(self.project_packages) | {fn.handler.split(".", 1)[0]})

    def _base_asset_dir(self, fn: FunctionInfo) -> Path:
        """The project packages of the function's deployed zip (once per code sha), which its
        base zygote runs from."""
        code_id = "base-" + hashlib.sha1(fn.code_sha256.encode()).hexdigest()[:16]
        return self._extract(fn, code_id, set(self.project_packages))

    def _extract(self, fn: FunctionInfo, code_id: str, wanted: set[str]) -> Path:
        target = self.workdir / "code" / code_id
        with self._lock:
            lock = self._extract_locks.setdefault(code_id, threading.Lock())
        with lock:
            if target.is_dir():
                return target
            staging = Path(tempfile.mkdtemp(prefix=f"{code_id}-", dir=self.workdir))
            with zipfile.ZipFile(io.BytesIO(fn.code_zip)) as archive:
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

    def _base_for(self, fn: FunctionInfo, env: dict[str, str], asset_dir: Path) -> BaseZygote:
        """The base zygote the function's zygote forks from (call with ``_lock`` held: a pool
        registered in the same hold keeps it from being retired)."""
        base_env = import_time_env(env)
        key = (fn.code_sha256, json.dumps(base_env, sort_keys=True))
        if key not in self._bases:
            base_id = hashlib.sha1(repr(key).encode()).hexdigest()[:12]
            self._bases[key] = BaseZygote(
                asset_dir,
                self.project_packages,
                self.shared_imports,
                base_env,
                self.log_dir / f"lambda-base-{base_id}.worker.log",
            )
        return self._bases[key]

    def function_env(self, fn: FunctionInfo) -> dict[str, str]:
        env = dict(self._base_env)
        env.update(
            {
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.update(self.extra_env)
        env.update(fn.environment)
        # Reserved Lambda variables (a function cannot override them on AWS either).
        env.update(
            {
                "_HANDLER": fn.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group,
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

    def pool_for(self, fn: FunctionInfo) -> FunctionPool:
        env = self.function_env(fn)
        key = (fn.code_sha256, fn.handler, json.dumps(env, sort_keys=True))
        retired: FunctionPool | None = None
        with self._lock:
            entry = self._pools.get(fn.arn)
            if entry is not None and entry[0] == key:
                return entry[1]
        asset_dir = self._asset_dir(fn)
        base_asset_dir = self._base_asset_dir(fn)
        with self._lock:
            entry = self._pools.get(fn.arn)
            if entry is not None and entry[0] == key:
                return entry[1]
            if entry is not None:  # new code or configuration: retire the old workers
                retired = entry[1]
            base = self._base_for(fn, env, base_asset_dir)
            pool = FunctionPool(
                fn.name,
                asset_dir,
                self.project_packages,
                fn.handler,
                env,
                self.pool_size,
                self.log_dir / f"{fn.name}.worker.log",
                base,
                self._services,
            )
            self._pools[fn.arn] = (key, pool)
        if retired is not None:  # off the invoking thread: it may wait for a zygote start
            threading.Thread(target=self._retire, args=(retired,), name=f"retire-{fn.name}", daemon=True).start()
        return pool

    def _retire(self, pool: FunctionPool) -> None:
        """Close a replaced pool, and its base zygote when no current pool forks from it (a new
        code zip: its functions get a base of their own)."""
        pool.close()
        with self._lock:
            if any(current.base is pool.base for _, current in self._pools.values()):
                return
            for key, base in list(self._bases.items()):
                if base is pool.base:
                    del self._bases[key]
        pool.base.close()

    def invoke(self, fn: FunctionInfo, request: dict[str, Any], timeout: float) -> tuple[dict[str, Any] | None, bool]:
        """Run one request on a warm worker of the function; (reply or None if it died, cold)."""
        try:
            return self.pool_for(fn).invoke(request, timeout)
        except (RuntimeError, OSError):
            # The pool was retired under us (new code/configuration): once more on the new one.
            return self.pool_for(fn).invoke(request, timeout)

    def prewarm(self, functions: Iterable[FunctionInfo], workers: int = 1) -> list[threading.Thread]:
        """Start zygotes (and ``workers`` forked workers) for the functions, in the background."""
        threads = []
        for fn in functions:

            def _warm(fn: FunctionInfo = fn) -> None:
                try:
                    self.pool_for(fn).prewarm(workers)
                except Exception as exc:  # noqa: BLE001 - a cold start later is fine
                    LOG.debug("prewarm of %s failed: %s", fn.name, exc)

            thread = threading.Thread(target=_warm, name=f"prewarm-{fn.name}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def pools(self) -> list[FunctionPool]:
        with self._lock:
            return [pool for _, pool in self._pools.values()]

    def pids(self) -> list[int]:
        """Process ids of all zygotes (base and function) and workers (for leak checks)."""
        with self._lock:
            bases = list(self._bases.values())
        return [pid for pool in self.pools() for pid in pool.pids()] + [pid for base in bases for pid in base.pids()]

    def close(self) -> None:
        with self._lock:
            pools = [pool for _, pool in self._pools.values()]
            self._pools.clear()
            bases = list(self._bases.values())
            self._bases.clear()
        for pool in pools:
            pool.close()
        for base in bases:
            base.close()
