"""Writing the files a user names (a kubeconfig, a snapshot, the CLI's own config) without ever
clobbering something that is not a regular file.

Every writer goes through `replace_file` (write a temporary file beside the target, then rename
it over the target) or `create_file` (a new file only). Both check the target first: an existing
target must be a regular file (a symlink is followed to one); a device, FIFO, socket, directory
or a symlink that leads nowhere is refused and nothing is written. Renaming onto `/dev/null`
would otherwise replace the device node itself (as root), and reading a FIFO to merge into it
would block forever. Only the standard library: the Lambda asset carries this package too."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from kubestep.errors import KubestepError

PRIVATE_MODE = 0o600

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


class UnsafeTarget(KubestepError):
    """The path names something that is not a regular file; nothing was read or written."""


def _kind(mode: int) -> str | None:
    """What a non-regular file is (None for a regular file)."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def writable_target(path: Path | str, what: str = "file") -> Path:
    """The file `path` leads to (symlinks followed), checked to be a regular file or absent.

    Raises UnsafeTarget naming `what`, the path and what it is instead."""
    given = Path(path).expanduser()
    target = Path(os.path.realpath(given))
    try:
        info = os.stat(target)
    except FileNotFoundError:
        if given.is_symlink():
            raise UnsafeTarget(
                f"{what} {given} is a symlink to {os.readlink(given)}, which does not exist: "
                "nothing was written (create the file it points to, or remove the link)"
            ) from None
        return target
    except NotADirectoryError:
        raise UnsafeTarget(f"{what} {given}: a part of the path is not a directory; nothing was written") from None
    except OSError as exc:  # a symlink loop, a path too long, no permission to look
        raise UnsafeTarget(f"{what} {given}: {exc.strerror or exc}; nothing was written") from None
    kind = _kind(info.st_mode)
    if kind is not None:
        shown = given if target == given.absolute() else f"{given} (-> {target})"
        raise UnsafeTarget(f"{what} {shown} is {kind}, not a regular file: nothing was written")
    return target


def read_text_if_regular(path: Path | str, what: str = "file") -> str | None:
    """The text of a regular file at `path` (None if missing); never opens a device or FIFO."""
    target = writable_target(path, what)
    try:
        return target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def replace_file(path: Path | str, data: bytes | str, *, what: str = "file", mode: int = PRIVATE_MODE) -> Path:
    """Write `data` to the file `path` leads to, atomically (readers see the old or the new
    file, never half of one), with `mode`. Returns the file written."""
    target = writable_target(path, what)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    content = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        # Checked again just before the rename: what the name leads to may have changed since.
        writable_target(target, what)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def check_new(path: Path | str, what: str = "file") -> Path:
    """`path`, checked to name nothing yet (not even a dangling symlink) in a directory that exists."""
    given = Path(path).expanduser()
    if given.is_symlink() or given.exists():
        writable_target(given, what)  # names a device, a dangling symlink, ... for what it is
        raise UnsafeTarget(f"{what} {given} exists: it is never overwritten (choose another name)")
    if not given.parent.is_dir():
        raise UnsafeTarget(f"{what} {given}: directory {given.parent} does not exist")
    return given


def create_file(path: Path | str, data: bytes | str, *, what: str = "file", mode: int = PRIVATE_MODE) -> Path:
    """Create `path` with `data` (mode `mode`); anything already there — a file, a symlink
    (dangling or not), a device — is refused, never overwritten."""
    given = check_new(path, what)
    content = data.encode() if isinstance(data, str) else data
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(given, flags, mode)
    except FileExistsError:
        raise UnsafeTarget(f"{what} {given} exists: it is never overwritten (choose another name)") from None
    except FileNotFoundError:
        raise UnsafeTarget(f"{what} {given}: directory {given.parent} does not exist") from None
    except NotADirectoryError:
        raise UnsafeTarget(f"{what} {given}: {given.parent} is not a directory") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(given)
        raise
    return given
