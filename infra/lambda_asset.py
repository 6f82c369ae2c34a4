"""One directory asset for all five functions, bundled locally without Docker (a
deploy must work on a machine without a container engine).

Layout of the asset: the dependencies from `requirements-lambda.txt` installed for the Lambda
runtime's Python and architecture (native wheels such as pydantic-core must match it), plus
the project's pure-Python packages `kubestep/` (without `cli/`) and `lambdas/`. The embedded local
runtime is its own top-level package (`kubestep_local/`) and never part of the asset.

The dependencies are cached under `.build/lambda/deps-<sha256 of requirements-lambda.txt>`;
only the project code is copied afresh on every synth.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infra.config import PROJECT_ROOT

# Must match functions.RUNTIME / functions.ARCHITECTURE.
PYTHON_VERSION = "3.13"
PLATFORM = "manylinux2014_aarch64"

REQUIREMENTS = PROJECT_ROOT / "requirements-lambda.txt"
BUILD_DIR = PROJECT_ROOT / ".build" / "lambda"
ASSET_DIR_ENV = "KUBESTEP_LAMBDA_ASSET_DIR"

# Project packages copied into the asset, and what stays out of it: the CLI and its dashboard
# run on a workstation, never in Lambda (so does `kubestep_local/`, which is not in PACKAGES).
PACKAGES = ("kubestep", "lambdas")
EXCLUDED_SUBPACKAGES = {("kubestep", "cli"), ("kubestep", "dashboard")}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache")

# Old asset directories of other synths are removed once they are this old (another process
# might still be reading a younger one).
STALE_SECONDS = 15 * 60


class LambdaAssetError(RuntimeError):
    """Installing the Lambda dependencies failed."""


def requirements_hash(requirements: Path = REQUIREMENTS) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def install_dependencies(requirements: Path = REQUIREMENTS, build_dir: Path = BUILD_DIR) -> Path:
    """Install the pinned dependencies for the Lambda platform, or reuse the cached install."""
    deps_dir = build_dir / f"deps-{requirements_hash(requirements)[:16]}"
    if deps_dir.is_dir():
        return deps_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="deps-staging-", dir=build_dir))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        # requirements-lambda.txt is a complete lock: --no-deps installs exactly it and keeps
        # out boto3/botocore (aws-xray-sdk asks for botocore), which the runtime provides.
        "--no-deps",
        # Bytecode compiled by this interpreter would not match the runtime's Python.
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
        "--target",
        str(staging),
        "-r",
        str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise LambdaAssetError(
            f"pip could not install {requirements.name} for {PLATFORM} / Python {PYTHON_VERSION}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    # Console scripts are of no use in Lambda.
    shutil.rmtree(staging / "bin", ignore_errors=True)
    try:
        staging.rename(deps_dir)  # atomic: concurrent synths never see a half-installed cache
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race
        if not deps_dir.is_dir():
            raise
    return deps_dir


def _copy_project(target: Path, project_root: Path) -> None:
    for package in PACKAGES:
        source = project_root / package
        if not source.is_dir():
            raise LambdaAssetError(f"package {package}/ not found under {project_root}")

        def ignore(directory: str, names: list[str], _package: str = package) -> set[str]:
            skipped = set(IGNORED(directory, names))
            if Path(directory) == project_root / _package:
                skipped |= {sub for pkg, sub in EXCLUDED_SUBPACKAGES if pkg == _package and sub in names}
            return skipped

        shutil.copytree(source, target / package, ignore=ignore)


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _prune(build_dir: Path, keep: Path) -> None:
    now = time.time()
    for old in build_dir.glob("asset-*"):
        try:
            if old != keep and now - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def build_lambda_asset(
    project_root: Path = PROJECT_ROOT, requirements: Path = REQUIREMENTS, build_dir: Path = BUILD_DIR
) -> Path:
    """The asset directory for `lambda_.Code.from_asset`.

    `KUBESTEP_LAMBDA_ASSET_DIR` overrides it (a prepared directory, e.g. for fast synths).
    """
    override = os.environ.get(ASSET_DIR_ENV)
    if override:
        path = Path(override)
        if not path.is_dir():
            raise LambdaAssetError(f"{ASSET_DIR_ENV}={override} is not a directory")
        return path

    deps_dir = install_dependencies(requirements, build_dir)
    staging = Path(tempfile.mkdtemp(prefix="asset-staging-", dir=build_dir))
    try:
        shutil.copytree(deps_dir, staging, dirs_exist_ok=True)
        _copy_project(staging, project_root)
        # Content-addressed: identical inputs give the same directory (and the same CDK
        # asset hash), and a synth never changes a directory another synth is reading.
        final = build_dir / f"asset-{_tree_hash(staging)[:16]}"
        if final.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
            os.utime(final)
        else:
            try:
                staging.rename(final)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
                if not final.is_dir():
                    raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _prune(build_dir, keep=final)
    return final
