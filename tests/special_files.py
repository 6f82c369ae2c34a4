"""Files that are not regular files, made in a test's own directory: what the CLI's writers
must refuse and leave as they were (kubestep.files)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path


def null_device(directory: Path) -> Path:
    """A character device like /dev/null (1,3) of the test's own, so a regression that replaced
    it would not take the machine's /dev/null with it. Without the right to make device nodes
    (not root), the machine's own: a non-root writer could not replace it either."""
    path = directory / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return Path(os.devnull)
    return path


def fifo(directory: Path) -> Path:
    path = directory / "pipe"
    os.mkfifo(path)
    return path


def subdirectory(directory: Path) -> Path:
    path = directory / "adir"
    path.mkdir()
    return path


def dangling(directory: Path) -> Path:
    path = directory / "link"
    path.symlink_to(directory / "missing" / "config")
    return path


def link_to_device(directory: Path) -> Path:
    path = directory / "devlink"
    path.symlink_to(null_device(directory))
    return path


NOT_REGULAR: dict[str, tuple[Callable[[Path], Path], str]] = {
    "device": (null_device, "is a character device"),
    "fifo": (fifo, "is a FIFO"),
    "directory": (subdirectory, "is a directory"),
    "dangling symlink": (dangling, "which does not exist"),
    "symlink to a device": (link_to_device, "is a character device"),
}


def fingerprint(path: Path) -> tuple:
    """What must not change: the node itself (and, for a link, where it leads)."""
    info = os.lstat(path)
    target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    real = os.path.realpath(path)
    leads_to = os.lstat(real) if os.path.lexists(real) else None
    return (
        stat.S_IFMT(info.st_mode),
        info.st_ino,
        target,
        leads_to and (stat.S_IFMT(leads_to.st_mode), leads_to.st_ino, leads_to.st_rdev),
    )


def unblock_readers(path: Path, after: float = 5.0) -> threading.Thread:
    """A writer that opens and closes a FIFO after `after` s: a reader that blocked on it (a
    regression) then reads EOF and the test fails instead of hanging."""

    def open_and_close() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return  # nobody is reading: nothing blocked
        os.close(fd)

    timer = threading.Timer(after, open_and_close)
    timer.daemon = True
    timer.start()
    return timer
