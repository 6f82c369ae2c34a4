"""State snapshots: every moto backend in use pickled (live ``BackendDict``s by reference,
what cannot be pickled rebuilt), and restored into a fresh emulator. moto keeps state in memory
only; AWS keeps it, so a persistent local runtime saves it across ``kubestep local down``/``up``."""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
import pickle
import sys
import threading
import types
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubestep_local.moto_compat.core import GATE, PINNED_MOTO_VERSION

SNAPSHOT_FORMAT = 1
_BLOB_BYTES = 64 * 1024
ABORTED_ON_RESTORE_ERROR = "States.Runtime"
ABORTED_ON_RESTORE_CAUSE = (
    "the local runtime stopped while this execution ran (kubestep local down, or a crash); "
    "running executions do not survive a restart"
)


class SnapshotError(RuntimeError):
    """The emulator's state could not be saved or restored."""


@dataclass
class RestoredState:
    saved_at: str
    extra: dict[str, Any]
    aborted_executions: list[str]


def _backend_dicts() -> list[tuple[tuple[str, str], Any]]:
    """((module, attribute), BackendDict) of every service moto has state for."""
    from moto.core.base_backend import BackendDict

    found = []
    for backend_dict in list(BackendDict._instances):
        module = sys.modules.get(backend_dict.backend.__module__)
        name = next((k for k, v in vars(module).items() if v is backend_dict), None) if module else None
        if name is None:
            # Not reachable under its own module's name (the Step Functions binding rebinds one),
            # so nothing reads it either.
            continue
        found.append(((module.__name__, name), backend_dict))
    return found


def _resolve_backend_dict(key: tuple[str, str]) -> Any:
    module, name = key
    return getattr(importlib.import_module(module), name)


# Named stand-ins for the lambdas moto uses as defaultdict factories (lambdas do not pickle),
# e.g. moto/ssm/models.py ``defaultdict(lambda: defaultdict(dict))``, moto/awslambda/models.py
# ``defaultdict(lambda: {})``.
def _defaultdict_of_dict() -> defaultdict[Any, Any]:
    return defaultdict(dict)


def _named_factory(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A picklable factory that makes what ``factory`` (a lambda) makes."""
    sample = factory()
    if type(sample) in (dict, list, set) and not sample:
        return type(sample)
    if isinstance(sample, defaultdict) and not sample and sample.default_factory is dict:
        return _defaultdict_of_dict
    raise SnapshotError(f"cannot snapshot a defaultdict of {factory.__qualname__} (makes {sample!r})")


def _rebuild_defaultdict(
    cls: type, factory: Callable[[], Any] | None, state: dict[str, Any], items: dict[Any, Any]
) -> defaultdict[Any, Any]:
    # Without calling cls.__init__: subclasses (moto's ParameterDict) take other arguments.
    out = cls.__new__(cls)
    defaultdict.__init__(out, factory)
    if state:
        out.__dict__.update(state)
    dict.update(out, items)
    return out


def _rebuild_weak_value_dict(items: dict[Any, Any]) -> weakref.WeakValueDictionary[Any, Any]:
    return weakref.WeakValueDictionary(items)


def _rebuild_event(flag: bool) -> threading.Event:
    event = threading.Event()
    if flag:
        event.set()
    return event


def _load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, password=None)


def _load_public_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der)


class _FrozenEventManager:
    def __init__(self, history: list[dict[str, Any]]) -> None:
        self._history = history

    def get_event_history(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._history)


class _FrozenEnvironment:
    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.event_manager = _FrozenEventManager(history)

    def is_running(self) -> bool:
        return False


class _FrozenWorker:
    """Stands in for the worker of an execution restored from a snapshot: its history, no thread."""

    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.env = _FrozenEnvironment(history)

    def stop(self, stop_date: Any = None, error: Any = None, cause: Any = None) -> None:
        return None  # nothing runs


_restore_context = threading.local()


def _rebuild_execution(cls: type, state: dict[str, Any], history: list[dict[str, Any]]) -> Any:
    from moto.stepfunctions.parser.api import ExecutionStatus

    execution = cls.__new__(cls)
    execution.__dict__.update(state)
    if execution.exec_status in (None, ExecutionStatus.RUNNING):
        # Its interpreter thread is gone: it ends ABORTED, and the execution-status event that
        # follows lets the management service release what the run held, as for StopExecution.
        now = datetime.now(UTC)
        execution.exec_status = ExecutionStatus.ABORTED
        execution.stop_date = now
        execution.error = ABORTED_ON_RESTORE_ERROR
        execution.cause = ABORTED_ON_RESTORE_CAUSE
        last = history[-1]["id"] if history else 0
        history.append(
            {
                "timestamp": now,
                "type": "ExecutionAborted",
                "id": last + 1,
                "previousEventId": last,
                "executionAbortedEventDetails": {
                    "error": ABORTED_ON_RESTORE_ERROR,
                    "cause": ABORTED_ON_RESTORE_CAUSE,
                },
            }
        )
        aborted = getattr(_restore_context, "aborted", None)
        if aborted is not None:
            aborted.append(execution.exec_arn)
    execution.exec_worker = _FrozenWorker(history)
    return execution


class _StatePickler(pickle.Pickler):
    """Pickles moto backends: live BackendDicts by reference, what cannot be pickled by rebuild."""

    def __init__(self, file: io.BytesIO, dicts: list[tuple[tuple[str, str], Any]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs: dict[bytes, bytes] = {}
        self._dict_keys = {id(d): key for key, d in dicts}
        self._account_keys = {
            id(per_account): (key, account) for key, d in dicts for account, per_account in dict.items(d)
        }
        from moto.stepfunctions.parser.backend.execution import Execution

        self._execution_type = Execution
        self._lock_types = (type(threading.Lock()), type(threading.RLock()))

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is bytes and len(obj) >= _BLOB_BYTES:
            # Code zips: the same asset is in S3 and in each function; stored once.
            digest = hashlib.sha256(obj).digest()
            self.blobs.setdefault(digest, obj)
            return ("blob", digest)
        key = self._dict_keys.get(id(obj))
        if key is not None:
            return ("backends", key)
        account = self._account_keys.get(id(obj))
        if account is not None:
            return ("account", *account)
        return None

    def reducer_override(self, obj: Any) -> Any:  # noqa: PLR0911 - one case per kind
        if isinstance(obj, self._lock_types):
            return type(obj), ()
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, threading.Event):
            return _rebuild_event, (obj.is_set(),)
        if isinstance(obj, threading.Thread):
            raise SnapshotError(f"cannot snapshot a thread ({obj.name}) held by moto's state")
        if isinstance(obj, self._execution_type):
            state = {k: v for k, v in vars(obj).items() if k != "exec_worker"}
            worker = obj.exec_worker
            env = getattr(worker, "env", None)
            history = env.event_manager.get_event_history() if env is not None else []
            return _rebuild_execution, (type(obj), state, history)
        if isinstance(obj, weakref.WeakValueDictionary):
            return _rebuild_weak_value_dict, (dict(obj.items()),)
        if isinstance(obj, types.GeneratorType):
            # A paging cursor moto keeps between two pages (the Resource Groups Tagging API's
            # `_pages`, after GetResources answered a PaginationToken): it does not outlive a
            # restart; its token then answers an empty last page.
            return iter, ((),)
        if isinstance(obj, defaultdict) and (
            type(obj) is not defaultdict or getattr(obj.default_factory, "__name__", "") == "<lambda>"
        ):
            factory = obj.default_factory
            if getattr(factory, "__name__", "") == "<lambda>":
                factory = _named_factory(factory)
            return _rebuild_defaultdict, (type(obj), factory, dict(getattr(obj, "__dict__", {})), dict(obj))
        return self._reduce_key(obj)

    @staticmethod
    def _reduce_key(obj: Any) -> Any:
        # KMS keys and CloudFormation's references to them hold cryptography key objects.
        module = type(obj).__module__
        if not module.startswith("cryptography"):
            return NotImplemented
        from cryptography.hazmat.primitives import serialization

        if hasattr(obj, "private_bytes"):
            der = obj.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            return _load_private_key, (der,)
        if hasattr(obj, "public_bytes"):
            der = obj.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            return _load_public_key, (der,)
        return NotImplemented


class _StateUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, blobs: dict[bytes, bytes]) -> None:
        super().__init__(file)
        self._blobs = blobs

    def find_class(self, module: str, name: str) -> Any:
        # Snapshots saved while moto_compat was one module name its rebuild functions there.
        if module == "kubestep_local.moto_compat":
            module = __name__
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0]
        if kind == "blob":
            return self._blobs[pid[1]]
        if kind == "backends":
            return _resolve_backend_dict(tuple(pid[1]))
        if kind == "account":
            return _resolve_backend_dict(tuple(pid[1]))[pid[2]]
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def snapshot_state(extra: dict[str, Any] | None = None, *, timeout: float = 10.0) -> bytes:
    """Every backend's state as bytes, taken while no request changes it.

    ``extra`` (picklable) travels with it: the stand-ins' own bookkeeping. Raises SnapshotError
    when requests in flight do not end within ``timeout`` or something cannot be pickled.
    """
    with GATE.exclusive(timeout) as held:
        if not held:
            raise SnapshotError(f"requests to the emulator did not pause within {timeout:.0f}s")
        dicts = _backend_dicts()
        payload = {
            "format": SNAPSHOT_FORMAT,
            "moto": PINNED_MOTO_VERSION,
            "python": list(sys.version_info[:2]),
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "backends": {key: {acc: dict(dict.items(per)) for acc, per in dict.items(d)} for key, d in dicts},
            "extra": extra or {},
        }
        buffer = io.BytesIO()
        try:
            pickler = _StatePickler(buffer, dicts)
            pickler.dump(payload)
        except SnapshotError:
            raise
        except Exception as exc:
            raise SnapshotError(f"{type(exc).__name__}: {exc}") from exc
    # The blobs first: loading the payload resolves them.
    out = io.BytesIO()
    pickle.dump(pickler.blobs, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(buffer.getvalue())
    return out.getvalue()


def restore_state(data: bytes) -> RestoredState:
    """Load a snapshot into moto (after ``reset_backends``, before anything is deployed).

    Executions that were RUNNING come back ABORTED (their interpreter threads are gone).
    """
    aborted: list[str] = []
    _restore_context.aborted = aborted
    try:
        stream = io.BytesIO(data)
        blobs = pickle.load(stream)
        payload = _StateUnpickler(stream, blobs).load()
    except Exception as exc:
        raise SnapshotError(f"unreadable snapshot: {type(exc).__name__}: {exc}") from exc
    finally:
        _restore_context.aborted = None
    if payload.get("format") != SNAPSHOT_FORMAT or payload.get("moto") != PINNED_MOTO_VERSION:
        raise SnapshotError(
            f"snapshot of format {payload.get('format')} / moto {payload.get('moto')}; "
            f"this runtime reads format {SNAPSHOT_FORMAT} / moto {PINNED_MOTO_VERSION}"
        )
    for key, accounts in payload["backends"].items():
        backend_dict = _resolve_backend_dict(tuple(key))
        for account, regions in accounts.items():
            per_account = backend_dict[account]  # creates it (and registers the dict for reset)
            for region, backend in regions.items():
                dict.__setitem__(per_account, region, backend)
    return RestoredState(saved_at=payload["saved_at"], extra=payload.get("extra") or {}, aborted_executions=aborted)
