"""The one way the CLI writes a file a user names (kubestep.files): only a regular file is
replaced (a symlink is followed to one) and only a new name is created; a device, a FIFO, a
directory or a symlink leading nowhere is refused with one line naming what it is, and left
exactly as it was."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kubestep import files
from kubestep.files import UnsafeTarget
from tests.special_files import NOT_REGULAR, fifo, fingerprint, unblock_readers


@pytest.mark.parametrize("kind", list(NOT_REGULAR))
def test_replace_refuses_what_is_not_a_regular_file_and_leaves_it(tmp_path: Path, kind: str) -> None:
    make, reason = NOT_REGULAR[kind]
    path = make(tmp_path)
    before = fingerprint(path)
    with pytest.raises(UnsafeTarget) as refused:
        files.replace_file(path, "apiVersion: v1\n", what="kubeconfig")
    message = str(refused.value)
    assert message.startswith(f"kubeconfig {path}") and reason in message and "\n" not in message
    assert fingerprint(path) == before
    assert not (tmp_path / "missing").exists(), "a dangling link's target is not created"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == [], "no temporary file is left"


@pytest.mark.parametrize("kind", list(NOT_REGULAR))
def test_create_refuses_anything_already_there(tmp_path: Path, kind: str) -> None:
    make, reason = NOT_REGULAR[kind]
    path = make(tmp_path)
    before = fingerprint(path)
    with pytest.raises(UnsafeTarget, match=reason):
        files.create_file(path, b"snapshot", what="--output")
    assert fingerprint(path) == before
    assert not (tmp_path / "missing").exists()


def test_reading_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = fifo(tmp_path)
    unblock_readers(path)
    with pytest.raises(UnsafeTarget, match="is a FIFO"):
        files.read_text_if_regular(path, "kubeconfig")
    assert files.read_text_if_regular(tmp_path / "absent", "kubeconfig") is None


def test_a_regular_file_is_replaced_atomically_and_a_link_to_one_is_kept(tmp_path: Path) -> None:
    real = tmp_path / "real" / "config"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "config"
    link.symlink_to(real)
    assert files.replace_file(link, "new\n") == real
    assert link.is_symlink() and real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    fresh = files.replace_file(tmp_path / "nested" / "new", b"x", mode=0o644)
    assert fresh.read_bytes() == b"x" and stat.S_IMODE(fresh.stat().st_mode) == 0o644


def test_create_makes_only_new_files(tmp_path: Path) -> None:
    path = files.create_file(tmp_path / "snap.tar.gz", b"data")
    assert path.read_bytes() == b"data" and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(UnsafeTarget, match="exists: it is never overwritten"):
        files.create_file(path, b"other")
    assert path.read_bytes() == b"data"
    with pytest.raises(UnsafeTarget, match="does not exist"):
        files.create_file(tmp_path / "no" / "dir" / "x", b"")


def test_a_symlink_loop_is_refused_in_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(UnsafeTarget, match="nothing was written"):
        files.replace_file(loop, "x", what="kubeconfig")
    assert loop.is_symlink()
