"""What every patch module shares: the pinned release, reversible patches (``PatchSet``), the
state gate and request lock that keep moto's backends consistent, and backend iteration."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

LOG = logging.getLogger("kubestep_local.moto_compat")

PINNED_MOTO_VERSION = "5.2.5"
ACCOUNT_ID = "123456789012"  # moto's default account
MISSING = object()


class PatchSet:
    """Attribute replacements and other process-wide changes, undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def __bool__(self) -> bool:
        return bool(self._undo)

    def set(self, owner: Any, name: str, value: Any) -> Any:
        """``setattr(owner, name, value)``; returns the attribute as it was (raw, from ``vars``,
        so a staticmethod stays a staticmethod when it is put back)."""
        original = vars(owner).get(name, MISSING)

        def undo() -> None:
            if original is MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, original)

        setattr(owner, name, value)
        self._undo.append(undo)
        return getattr(owner, name) if original is MISSING else original

    def set_env(self, name: str, value: str) -> None:
        original = os.environ.get(name)

        def undo() -> None:
            if original is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = original

        os.environ[name] = value
        self._undo.append(undo)

    def on_undo(self, action: Callable[[], None]) -> None:
        self._undo.append(action)

    def undo(self) -> None:
        while self._undo:
            action = self._undo.pop()
            try:
                action()
            except Exception:  # noqa: BLE001 - undo the rest regardless
                LOG.exception("undoing a moto patch failed")


class StateGate:
    """A readers-writer lock, writer first: requests hold it shared, a snapshot exclusively.

    Lambda invocations are not gated (``gated_path``): an invocation request lasts as long as the
    handler, whose own requests to the emulator must pass while a snapshot waits.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._writer = False
        self._waiting_writers = 0
        self.requests = 0  # gated requests finished so far (a snapshot is due when it moved)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self.requests += 1
                if not self._active:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self, timeout: float | None = None) -> Iterator[bool]:
        """Yields True when held; False when requests in flight did not end within ``timeout``."""
        with self._cond:
            self._waiting_writers += 1
            try:
                acquired = self._cond.wait_for(lambda: not self._writer and not self._active, timeout)
            finally:
                self._waiting_writers -= 1
            if acquired:
                self._writer = True
            else:
                self._cond.notify_all()
        try:
            yield acquired
        finally:
            if acquired:
                with self._cond:
                    self._writer = False
                    self._cond.notify_all()


GATE = StateGate()
# moto's backends are not thread-safe (a describe iterating a dict another request's thread is
# changing fails with "dictionary changed size during iteration", a 500): requests that change or
# read backends run one at a time (the GIL runs one at a time anyway). Lambda invocations do not
# take it: their handlers' own requests must pass while they run.
REQUEST_LOCK = threading.RLock()


def gated_path(method: str, path: str) -> bool:
    """Whether a request to the emulator takes the state gate (all but Lambda Invoke)."""
    return not (method == "POST" and path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"))


def iter_backends(backend_dict: Any) -> list[tuple[str, str, Any]]:
    """(account, region, backend) for every backend moto has created so far.

    Plain ``dict`` access: ``BackendDict.__getitem__`` would create backends as a side effect,
    and iterating a live dict races with moto's request threads.
    """
    out = []
    for account, per_region in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(per_region)):
            out.append((account, region, backend))
    return out
