"""A stopped runtime leaves moto as it found it (mock_aws tests may follow in this process)."""

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
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("MOTO_PORT", None)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("restore_check.py")), str(tmp_path), str(stub_template)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
