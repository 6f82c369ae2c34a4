"""A stopped runtime leaves moto as it found it (mock_aws tests may follow in this process); a
runtime can start from another's snapshot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubestep_local.runtime import LocalRuntime, RuntimeConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_one_runtime_per_process(runtime: LocalRuntime, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="another LocalRuntime"):
        LocalRuntime(RuntimeConfig(port=0, api_port=0, home=tmp_path)).start()


def test_restore_after_stop(tmp_path: Path, stub_template: Path) -> None:
    _check("restore_check.py", tmp_path, stub_template)


def _check(script: str, tmp_path: Path, stub_template: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("MOTO_PORT", None)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), str(tmp_path), str(stub_template)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_a_runtime_starts_from_another_runtimes_snapshot(tmp_path: Path, stub_template: Path) -> None:
    # In its own process: one runtime per process, and the package's may be running.
    _check("start_from_check.py", tmp_path, stub_template)


def test_start_from_is_refused_with_a_persistent_runtime(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="start_from"):
        RuntimeConfig(home=tmp_path, persistent=True, start_from=tmp_path / "state.pickle")
