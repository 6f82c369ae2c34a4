"""Fixtures for the local runtime's own tests: the stub CDK app, synthesized once (cached in
pytest's cache by the stub's source hash), deployed into one package-scoped runtime."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestep_local.runtime import LocalRuntime, RuntimeConfig

STUB_APP = Path(__file__).with_name("stub_app.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.01


def synth_stub(outdir: Path) -> Path:
    result = subprocess.run(
        [sys.executable, str(STUB_APP), str(outdir)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"stub synth failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def stub_template(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stub stack's template (cdk synth costs seconds: cached across sessions)."""
    key = hashlib.sha256(STUB_APP.read_bytes() + sys.version.encode()).hexdigest()[:16]
    cache = getattr(pytestconfig, "cache", None)  # absent with -p no:cacheprovider
    root = Path(cache.mkdir("kubestep-local-stub")) if cache is not None else tmp_path_factory.mktemp("stub")
    template = root / key / "out" / "kubestep-stub.template.json"
    if not template.is_file():
        # Two xdist workers may synthesize at once: each in its own directory, the first rename wins.
        staging = root / f"{key}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        synth_stub(staging / "out")
        try:
            staging.rename(root / key)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return template


@pytest.fixture(scope="package")
def runtime(stub_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """One runtime for tests/local, torn down when the package is done (one runtime per
    process: the workflow tests start their own afterwards)."""
    home = tmp_path_factory.mktemp("kubestep-home")
    rt = LocalRuntime(RuntimeConfig(port=0, api_port=0, time_scale=TIME_SCALE, home=home, boot_delay_seconds=20))
    rt.start()
    try:
        rt.deploy(stub_template)
        yield rt
    finally:
        rt.stop()
