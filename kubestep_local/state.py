"""The emulator's state on disk, so clusters survive ``kubestep local down`` / ``up`` and crashes.

A persistent runtime saves a snapshot of moto's backends (``moto_compat.snapshot_state``) when it
stops and, while it runs, every ``snapshot_interval`` seconds in which requests reached the
emulator. The next start loads it before deploying. Executions that were running come back
ABORTED (an interpreter's threads cannot be saved); their execution-status events then release
their locks through the management service's own handler, as after StopExecution on AWS.

Files, under ``$KUBESTEP_HOME/local/state/``:

- ``emulator.pickle`` -- the snapshot (a pickle: load only your own);
- ``summary.json`` -- when it was saved and the clusters it holds; also the error of the last
  attempt if saving failed, so ``kubestep local down`` can warn before stopping and the next start
  can name what was lost;
- ``journal.jsonl`` -- one line per execution started since the last snapshot, written before
  StartExecution answers: after a crash (``kill -9``) the next start names each operation the
  snapshot does not hold, instead of a cluster vanishing without notice.

Only the standard library (and kubestep.files, which uses only it): the CLI reads the summary
without the `local` extra's packages.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubestep import files

STATE_DIR = Path("local") / "state"
SNAPSHOT_FILE = "emulator.pickle"
SUMMARY_FILE = "summary.json"
JOURNAL_FILE = "journal.jsonl"
UNRESTORABLE_FILE = "emulator.unrestorable.pickle"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_atomically(path: Path, data: bytes) -> None:
    files.replace_file(path, data, what="local runtime state")


class StateStore:
    """The snapshot and its summary under one home."""

    def __init__(self, home: Path) -> None:
        self.directory = Path(home) / STATE_DIR
        self.snapshot_path = self.directory / SNAPSHOT_FILE
        self.summary_path = self.directory / SUMMARY_FILE
        self.journal_path = self.directory / JOURNAL_FILE

    def exists(self) -> bool:
        return self.snapshot_path.is_file()

    def summary(self) -> dict[str, Any] | None:
        try:
            summary = json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return None
        return summary if isinstance(summary, dict) else None

    def save_mark(self) -> str | None:
        """Changes with every save or failed save, also two in one second (savedAt has whole
        seconds): the summary's `saveId`, new each time it is written."""
        return (self.summary() or {}).get("saveId")

    def save(self, snapshot: bytes, clusters: list[str] | None) -> dict[str, Any]:
        """Write the snapshot, then the summary (a crash in between leaves the previous summary,
        which still names clusters correctly enough for a warning)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.snapshot_path, snapshot)
        summary = {
            "savedAt": now_iso(),
            "saveId": uuid.uuid4().hex,
            "clusters": clusters,
            "bytes": len(snapshot),
            "lastError": None,
        }
        _write_atomically(self.summary_path, json.dumps(summary, indent=2).encode())
        return summary

    def record_failure(self, error: str, clusters: list[str] | None) -> dict[str, Any]:
        """Saving failed: keep the previous snapshot, and say what is at risk."""
        self.directory.mkdir(parents=True, exist_ok=True)
        summary = self.summary() or {"savedAt": None, "clusters": None}
        summary["lastError"] = {"at": now_iso(), "error": error, "clusters": clusters}
        summary["saveId"] = uuid.uuid4().hex
        _write_atomically(self.summary_path, json.dumps(summary, indent=2).encode())
        return summary

    def load(self) -> bytes | None:
        try:
            return self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None

    def set_aside(self) -> Path | None:
        """Move an unrestorable snapshot out of the way (kept once, for a post-mortem)."""
        if not self.exists():
            return None
        target = self.directory / UNRESTORABLE_FILE
        self.snapshot_path.replace(target)
        with contextlib.suppress(FileNotFoundError):
            self.summary_path.unlink()
        return target

    # -- the journal of executions started since the last snapshot ------------------------------
    def journal(self, entry: dict[str, Any]) -> None:
        """Append one started execution (`at`: epoch seconds), durably: a crash right after the
        start still leaves its line."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def journal_entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.journal_path.read_text().splitlines()
        except OSError:
            return []
        entries = []
        for line in lines:
            with contextlib.suppress(ValueError):  # a line cut short by the crash
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def trim_journal(self, before: float) -> None:
        """Drop the entries a snapshot taken after `before` holds."""
        kept = [e for e in self.journal_entries() if float(e.get("at", 0)) >= before]
        if kept:
            _write_atomically(self.journal_path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in kept).encode())
        else:
            with contextlib.suppress(FileNotFoundError):
                self.journal_path.unlink()

    def discard(self) -> dict[str, Any] | None:
        """Delete the saved state; returns its summary (what was discarded)."""
        summary = self.summary()
        for path in (self.snapshot_path, self.summary_path, self.journal_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return summary
