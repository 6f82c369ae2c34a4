"""``$KUBESTEP_HOME``: where the home's local runtime says who it is, and the lock that makes it one.

A persistent runtime (``kubestep local up``) holds an exclusive ``flock`` on
``$KUBESTEP_HOME/local.lock`` for its whole life and writes who it is into that file (pid, ports,
endpoints). A second runtime for the same home fails at once, naming the first, whatever ports
it was given; the kernel releases the lock when the process ends, also after a crash or SIGKILL.

Only the standard library: the CLI reads this without the `local` extra's packages.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

LOCK_FILE = "local.lock"
STATE_FILE = "local.json"


def default_home() -> Path:
    return Path(os.environ.get("KUBESTEP_HOME", "~/.kubestep")).expanduser()


def describe_runtime(info: dict[str, Any]) -> str:
    """One line naming a runtime from its lock information."""
    parts = [f"pid {info.get('pid', '?')}"]
    if info.get("endpoint_url"):
        parts.append(f"AWS endpoint {info['endpoint_url']}")
    elif info.get("port") is not None:
        parts.append(f"port {info['port']}")
    if info.get("api_url"):
        parts.append(f"API {info['api_url']}")
    elif info.get("api_port") is not None:
        parts.append(f"API port {info['api_port']}")
    if info.get("home"):
        parts.append(f"home {info['home']}")
    if info.get("phase") and info["phase"] != "ready":
        parts.append(str(info["phase"]))
    return ", ".join(parts)


class RuntimeBusy(RuntimeError):
    """Another local runtime holds this home."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        super().__init__(
            f"a local runtime is already running ({describe_runtime(info)}); "
            "`kubestep local down` stops it, or use another KUBESTEP_HOME"
        )


def _read_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    return info if isinstance(info, dict) else {}


def running_runtime(home: Path) -> dict[str, Any] | None:
    """The information of the runtime holding ``home``'s lock, or None if none does."""
    path = Path(home) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_info(path) or {"home": str(home)}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class HomeLock:
    """The exclusive lock of a home, held by one runtime process."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, info: dict[str, Any]) -> None:
        """Take the lock or raise RuntimeBusy naming the runtime that has it."""
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        # A reader (running_runtime) holds a shared lock for an instant: try a few times.
        for attempt in range(5):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                info = _read_info(self.path)
                if info or attempt == 4:
                    os.close(fd)
                    raise RuntimeBusy(info or {"home": str(self.home)}) from None
                time.sleep(0.02)
        self._fd = fd
        self.update(info)

    def update(self, info: dict[str, Any]) -> None:
        if self._fd is None:
            return
        data = json.dumps({"pid": os.getpid(), "home": str(self.home), **info}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock
