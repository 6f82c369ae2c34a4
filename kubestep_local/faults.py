"""Fault injection for the local runtime: chosen AWS calls fail inside the Lambda workers.

A *fault plan* is a JSON file the runtime names to every function through
``KUBESTEP_LOCAL_FAULTS``; tests change it while workflows run (``LocalRuntime.faults``). Workers
re-read it when it changes and count firings under an exclusive ``flock``, so "3 times" means
three times across every warm worker of every function.

Kinds of AWS-call faults, injected at botocore's ``before-send`` (inside its retry loop, so
botocore's retry handler sees them as it would see AWS's own answers):

- ``throttle``: the service's throttling error (``kubestep.aws.errors.THROTTLING_BY_PROTOCOL``:
  EC2's, the query and XML APIs', the JSON APIs'), nothing reaches the service; botocore
  retries with backoff;
- ``error``: a hard error botocore does not retry (IAM's denial, ``UNAUTHORIZED_BY_PROTOCOL``),
  nothing reaches the service;
- ``lost-response``: the request reaches the emulator and takes effect, then the response is
  lost (``ReadTimeoutError``): botocore sends it again, as it does on AWS;
- ``crash``: the request takes effect, then the worker dies (SIGKILL) before the handler sees
  the answer; with no ``operation``, the worker dies as the invocation starts. The invocation
  ends ``Runtime.ExitError``.

And one Lambda-level kind, decided by the seam before any worker runs:
``service-exception``: the Invoke call fails with ``ServiceException`` (Step Functions:
``Lambda.ServiceException``).

A fault matches an AWS call by ``operation`` (the IAM-style action the recorder uses,
``ec2:CreateVolume``; ``*`` for any; ``mutating`` for any that changes something), and
optionally by ``cluster`` (the cluster the invocation works for: ``clusterName`` of its event,
or the manifest's name in a create request), ``task`` (the step), ``function`` (name or its
``<svc>-`` suffix) and ``match`` (text the request's URL or body contains, e.g. a cluster uid).
``times`` limits how often it fires (None: always).

The worker imports this file by path (it is not part of the deployed asset): only the standard
library at module level; botocore is imported when the hooks are installed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ENV_VAR = "KUBESTEP_LOCAL_FAULTS"
# `operation` matching any call that changes something (not Describe*, Get*, List*, ...).
MUTATING = "mutating"
READ_ONLY_VERBS = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Lookup", "Search")


def is_read_only(operation: str) -> bool:
    """An IAM-style action (``ec2:DescribeVolumes``) that changes nothing."""
    return operation.split(":", 1)[-1].startswith(READ_ONLY_VERBS)


AWS_KINDS = ("throttle", "error", "lost-response", "crash")
LAMBDA_KINDS = ("service-exception",)
KINDS = AWS_KINDS + LAMBDA_KINDS
# IAM action prefixes that differ from botocore's signing name (as the call recorder has them).
_IAM_PREFIX_OVERRIDES = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "apigateway", "tagging": "tag"}


@dataclass
class Fault:
    kind: str
    operation: str | None = None
    times: int | None = 1
    cluster: str | None = None
    task: str | None = None
    function: str | None = None
    match: str | None = None
    code: str | None = None
    abort: bool = False
    """``crash``: the execution that invoked the dying worker is stopped at that very moment (the
    management service's own process died; no ``Catch`` runs, the lock stays held)."""
    id: str = ""
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Fault.kind: must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if self.kind in ("throttle", "error", "lost-response") and not self.operation:
            raise ValueError(f"Fault.operation: a {self.kind} fault needs the AWS operation it hits")
        if self.kind in LAMBDA_KINDS and self.operation:
            raise ValueError("Fault.operation: Lambda-level faults hit invocations, not AWS calls")
        if self.times is not None and self.times < 1:
            raise ValueError(f"Fault.times: must be >= 1 or None (got {self.times})")
        if not self.id:
            self.id = uuid.uuid4().hex[:12]

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def hits(self, invocation: Invocation, operation: str | None, request_text: str = "") -> bool:
        """Whether this fault applies to ``operation`` (None: the invocation itself)."""
        return self.hits_besides_text(invocation, operation) and (self.match is None or self.match in request_text)

    def hits_besides_text(self, invocation: Invocation, operation: str | None) -> bool:
        """Whether this fault applies to ``operation``, its ``match`` on the request aside."""
        if self.exhausted:
            return False
        if operation is None:
            if self.operation is not None:
                return False
        elif self.operation == MUTATING:
            if is_read_only(operation):
                return False
        elif self.operation not in ("*", operation):
            return False
        if self.cluster is not None and invocation.cluster != self.cluster:
            return False
        if self.task is not None and invocation.task != self.task:
            return False
        return self.function is None or (
            invocation.function == self.function or invocation.function.endswith(f"-{self.function}")
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Invocation:
    """What a fault can know about the invocation a call belongs to."""

    function: str
    task: str | None = None
    cluster: str | None = None
    operation_id: str | None = None

    @classmethod
    def from_event(cls, function: str, event: Any) -> Invocation:
        if not isinstance(event, dict):
            return cls(function)
        cluster = event.get("clusterName")
        request = event.get("request")
        if cluster is None and isinstance(request, dict):
            cluster = request.get("clusterName")
            manifest = request.get("cluster")
            if cluster is None and isinstance(manifest, dict):
                cluster = (manifest.get("metadata") or {}).get("name")
        return cls(function, event.get("task"), cluster if isinstance(cluster, str) else None, event.get("operationId"))


@dataclass
class Firing:
    id: str
    kind: str
    operation: str | None
    function: str
    task: str | None
    cluster: str | None
    operation_id: str | None
    at: float = field(default_factory=time.time)


class FaultPlan:
    """The fault plan file: read and changed under ``flock`` by the runtime and every worker."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._cache_key: tuple[int, int] | None = None
        self._cache: list[Fault] = []

    # -- the file ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[Any]:
        flags = os.O_RDWR | os.O_CREAT
        fd = os.open(self.path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as handle:
                yield handle
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _read(handle: Any) -> dict[str, Any]:
        handle.seek(0)
        text = handle.read()
        data = json.loads(text) if text.strip() else {}
        data.setdefault("faults", [])
        data.setdefault("firings", [])
        return data

    @staticmethod
    def _write(handle: Any, data: dict[str, Any]) -> None:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(data))
        handle.flush()

    def _change(self, change: Any) -> Any:
        with self._locked(exclusive=True) as handle:
            data = self._read(handle)
            result = change(data)
            data["version"] = int(data.get("version", 0)) + 1
            self._write(handle, data)
        return result

    def snapshot(self) -> dict[str, Any]:
        try:
            with self._locked(exclusive=False) as handle:
                return self._read(handle)
        except FileNotFoundError:
            return {"faults": [], "firings": []}

    # -- the runtime's side --------------------------------------------------------------------
    def add(self, *faults: Fault) -> list[Fault]:
        def change(data: dict[str, Any]) -> None:
            data["faults"].extend(asdict(f) for f in faults)

        self._change(change)
        return list(faults)

    def remove(self, *faults: Fault | str) -> None:
        ids = {f if isinstance(f, str) else f.id for f in faults}

        def change(data: dict[str, Any]) -> None:
            data["faults"] = [f for f in data["faults"] if f["id"] not in ids]

        self._change(change)

    def clear(self) -> None:
        """Forget every fault and firing."""
        self._change(lambda data: data.update(faults=[], firings=[]))

    def faults(self) -> list[Fault]:
        return [Fault.from_dict(f) for f in self.snapshot()["faults"]]

    def get(self, fault: Fault | str) -> Fault | None:
        wanted = fault if isinstance(fault, str) else fault.id
        return next((f for f in self.faults() if f.id == wanted), None)

    def firings(self, fault: Fault | str | None = None) -> list[Firing]:
        wanted = None if fault is None else (fault if isinstance(fault, str) else fault.id)
        return [Firing(**f) for f in self.snapshot()["firings"] if wanted is None or f["id"] == wanted]

    @contextlib.contextmanager
    def injected(self, *faults: Fault) -> Iterator[list[Fault]]:
        """The faults are on inside the block only."""
        self.add(*faults)
        try:
            yield list(faults)
        finally:
            self.remove(*faults)

    # -- both sides ------------------------------------------------------------------------------
    def _current(self) -> list[Fault]:
        """The faults as of the file's last change (re-read only when it changed)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return []
        key = (stat.st_mtime_ns, stat.st_size)
        if key != self._cache_key:
            self._cache = [Fault.from_dict(f) for f in self.snapshot()["faults"]]
            self._cache_key = key
        return self._cache

    def may_hit(self, invocation: Invocation, operation: str | None, kinds: tuple = KINDS) -> bool:
        """Whether a fault of ``kinds`` hits ``operation`` if its request matches (the faults as of
        the file's last change; ``take`` decides under the lock)."""
        return any(f.kind in kinds and f.hits_besides_text(invocation, operation) for f in self._current())

    def take(
        self, invocation: Invocation, operation: str | None, request_text: str = "", kinds: tuple = KINDS
    ) -> Fault | None:
        """The first fault that hits, counted as fired (atomically across processes); or None."""
        if not any(f.kind in kinds and f.hits(invocation, operation, request_text) for f in self._current()):
            return None

        def change(data: dict[str, Any]) -> Fault | None:
            for item in data["faults"]:
                fault = Fault.from_dict(item)
                if fault.kind in kinds and fault.hits(invocation, operation, request_text):
                    item["fired"] = fault.fired + 1
                    firing = Firing(
                        fault.id,
                        fault.kind,
                        operation,
                        invocation.function,
                        invocation.task,
                        invocation.cluster,
                        invocation.operation_id,
                    )
                    data["firings"].append(asdict(firing))
                    return fault
            return None

        return self._change(change)


# ------------------------------------------------------------------------------------------------
# The worker's side: botocore hooks
# ------------------------------------------------------------------------------------------------
_plan: FaultPlan | None = None
_invocation = Invocation("unknown")
# Told every fault injected into an AWS call, as ``(kind, answer)``: ``answer`` is None for an
# attempt that never reached the emulator (``throttle``, ``error``), and for a ``lost-response``
# or a ``crash`` (told before the worker dies) the answer the emulator gave, parsed. The worker's
# call recorder keeps it with the call: the IAM check must know what the call made (a new role's
# path, a load balancer's ARN) although the handler never saw it.
injection_listener: Any = None
# How the message of every error fault injection answers with begins (the recorder tells an
# injected error from the emulator's own by it).
INJECTED_MESSAGE = "kubestep fault injection"


def _tell(kind: str, answer: Any = None) -> None:
    if injection_listener is not None:
        with contextlib.suppress(Exception):  # telling the recorder must never change the fault
            injection_listener(kind, answer() if callable(answer) else answer)


def install(path: str) -> None:
    """Hook every botocore client this process creates (called once, in the worker's zygote)."""
    global _plan
    import botocore.session

    compress_backoff(float(os.environ.get("KUBESTEP_LOCAL_TIME_SCALE", "1")))

    _plan = FaultPlan(path)
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        metadata = client.meta.service_model.metadata
        prefix = metadata.get("signingName") or metadata.get("endpointPrefix") or "unknown"
        prefix = _IAM_PREFIX_OVERRIDES.get(prefix, prefix)
        protocol = client.meta.service_model.protocol

        def before_send(request: Any, event_name: str, **_: Any) -> Any:
            return _before_send(request, event_name, prefix, protocol, client.meta.service_model)

        client.meta.events.register_first("before-send", before_send)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def compress_backoff(scale: float) -> None:
    """botocore's client-side waits compressed by the local runtime's time scale, like every other
    wait it models: the backoff between attempts (``endpoint.py``: ``time.sleep(delay)``, the only
    sleep through that module) and the adaptive retry mode's rate limiter (its clock, in
    ``retries/bucket.py``, runs 1/scale times as fast; what it waits on that clock is scaled
    back to real time). Injected throttles then cost what they would cost a workflow running
    that much faster, instead of seconds of real time in every warm worker."""
    if scale <= 0 or scale == 1:
        return
    import time as real_time
    import types

    import botocore.endpoint
    from botocore.retries import bucket

    scaled = types.SimpleNamespace(**{k: getattr(real_time, k) for k in dir(real_time) if not k.startswith("__")})
    scaled.sleep = lambda seconds: real_time.sleep(max(0.0, seconds * scale))
    botocore.endpoint.time = scaled  # type: ignore[attr-defined]

    class ScaledClock(bucket.Clock):
        def sleep(self, amount: float) -> None:
            real_time.sleep(max(0.0, amount * scale))

        def current_time(self) -> float:
            return real_time.time() / scale

    original_sleep_amount = bucket.TokenBucket._sleep_amount
    bucket.Clock = ScaledClock  # type: ignore[misc]  # adaptive.py makes its clock as bucket.Clock()
    bucket.TokenBucket._sleep_amount = lambda self, amount: original_sleep_amount(self, amount) * scale  # type: ignore[method-assign]


def begin_invocation(function: str, event: Any) -> None:
    """Called by the worker before each invocation: who the calls of this invocation are for.
    A ``crash`` fault with no operation kills the worker here."""
    global _invocation
    _invocation = Invocation.from_event(function, event)
    if _plan is not None and _plan.take(_invocation, None, kinds=("crash",)) is not None:
        _die()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # SIGKILL is not synchronous everywhere


def _before_send(request: Any, event_name: str, prefix: str, protocol: str, service_model: Any = None) -> Any:
    if _plan is None:
        return None
    operation_name = event_name.rsplit(".", 1)[-1]
    operation = f"{prefix}:{operation_name}"
    # Most calls meet no fault: the request's text (decoded and unquoted, a launch template's
    # user data included) is only made for a call some fault could hit.
    if not _plan.may_hit(_invocation, operation, AWS_KINDS):
        return None
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = urllib.parse.unquote_plus(f"{request.url}\n{body or ''}")
    fault = _plan.take(_invocation, operation, text, kinds=AWS_KINDS)
    if fault is None:
        return None
    from botocore.exceptions import ReadTimeoutError

    if fault.kind in ("lost-response", "crash"):
        response = _send(request)  # the call takes effect...
        _tell(fault.kind, lambda: _parse(response, service_model, operation_name))
        if fault.kind == "crash":
            _die()
        raise ReadTimeoutError(endpoint_url=request.url)  # ...and its answer never arrives
    code = fault.code or _default_code(fault.kind, prefix, protocol)
    _tell(fault.kind)
    return _error_response(request.url, protocol, code, fault, operation)


def _send(request: Any) -> Any:
    from botocore.httpsession import URLLib3Session

    response = URLLib3Session(timeout=60).send(request)
    response.content  # noqa: B018 - read it: the call completes
    return response


def _parse(response: Any, service_model: Any, operation_name: str) -> dict[str, Any]:
    """The answer the handler never saw, parsed as botocore would have (an error: its code)."""
    from botocore.parsers import create_parser

    operation_model = service_model.operation_model(operation_name)
    parsed = create_parser(service_model.protocol).parse(
        {"status_code": response.status_code, "headers": response.headers, "body": response.content},
        operation_model.output_shape,
    )
    if response.status_code >= 300:
        return {"Error": {"Code": (parsed.get("Error") or {}).get("Code", str(response.status_code))}}
    return parsed


def _default_code(kind: str, prefix: str, protocol: str) -> str:
    from kubestep.aws.errors import THROTTLING_BY_PROTOCOL, UNAUTHORIZED_BY_PROTOCOL

    family = "ec2" if protocol == "ec2" else ("json" if protocol in ("json", "rest-json") else "query")
    return (THROTTLING_BY_PROTOCOL if kind == "throttle" else UNAUTHORIZED_BY_PROTOCOL)[family]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _error_response(url: str, protocol: str, code: str, fault: Fault, operation: str) -> Any:
    """The error as the service's protocol carries it, for botocore's own parser."""
    from botocore.awsrequest import AWSResponse

    message = f"{INJECTED_MESSAGE} ({fault.kind} {fault.id}): {operation}"
    request_id = str(uuid.uuid4())
    status = (503 if protocol == "ec2" else 400) if fault.kind == "throttle" else 403
    headers = {"x-amzn-RequestId": request_id}
    if protocol in ("json", "rest-json"):
        headers["Content-Type"] = "application/x-amz-json-1.1"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": code, "message": message})
    elif protocol == "ec2":
        headers["Content-Type"] = "text/xml"
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:  # query, rest-xml
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return AWSResponse(url, status, headers, _Raw(body.encode()))
