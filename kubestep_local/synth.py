"""Synthesize the management-service CDK app for the local runtime (cached).

Synthesis runs ``infra.app.synthesize(outdir, manifest_path)`` in a subprocess: jsii starts a
Node.js process per interpreter, which must not live on inside the runtime (or a test session).
The assembly is cached under ``$KUBESTEP_HOME/local/cdk.out/<hash>``, keyed by everything that
can change the template or the asset (project sources, ASL files, lock files, the manifest), so
a second ``kubestep local up`` or test session skips the ~5-10 s synth. Runtimes that start
at the same time (parallel test workers) share the cache: one synthesizes, the others wait for it
and read what it wrote, never a directory being replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_HASHED_DIRS = ("infra", "kubestep", "lambdas", "stepfunctions", "examples")
_HASHED_FILES = ("app.py", "cdk.json", "pyproject.toml", "requirements-lambda.txt")
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_KEEP = 2


class SynthError(RuntimeError):
    """``infra.app.synthesize`` failed."""


def source_hash(project_root: Path = PROJECT_ROOT, manifest_path: Path | None = None) -> str:
    digest = hashlib.sha256()
    paths: list[Path] = [project_root / f for f in _HASHED_FILES]
    for directory in _HASHED_DIRS:
        root = project_root / directory
        if root.is_dir():
            paths.extend(p for p in root.rglob("*") if p.is_file())
    for path in sorted(set(paths)):
        rel = path.relative_to(project_root)
        if _SKIP_PARTS & set(rel.parts) or path.suffix in (".pyc", ".pyo"):
            continue
        if not path.is_file():
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    if manifest_path is not None:
        digest.update(b"manifest\0" + Path(manifest_path).read_bytes())
    for var in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_CONTEXT_JSON"):
        digest.update(f"{var}={os.environ.get(var, '')}\0".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:20]


def synthesize(outdir: Path, manifest_path: Path | None = None, project_root: Path = PROJECT_ROOT) -> Path:
    """Run ``infra.app.synthesize`` in a subprocess; returns the stack template path."""
    code = (
        "import sys\n"
        "from infra.app import synthesize\n"
        "path = synthesize(sys.argv[1], sys.argv[2] or None)\n"
        "print('KUBESTEP_TEMPLATE=' + str(path))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_root), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code, str(outdir), str(manifest_path or "")],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SynthError(f"CDK synth failed ({result.returncode}):\n{result.stderr[-4000:]}")
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("KUBESTEP_TEMPLATE="):
            return Path(line.split("=", 1)[1])
    raise SynthError(f"CDK synth printed no template path:\n{result.stdout[-2000:]}")


def cached_synthesize(cache_root: Path, manifest_path: Path | None = None, project_root: Path = PROJECT_ROOT) -> Path:
    """Synthesize into ``cache_root/<source hash>`` unless that assembly already exists."""
    key = source_hash(project_root, manifest_path)
    target = cache_root / key
    cached = _cached_template(target)
    if cached is not None:
        return cached
    cache_root.mkdir(parents=True, exist_ok=True)
    # One synth per key at a time: a second runtime starting now waits and reuses the assembly.
    with file_lock(cache_root / f".{key}.lock"):
        cached = _cached_template(target)
        if cached is not None:
            return cached
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
        try:
            template = synthesize(staging, manifest_path, project_root)
            relative = template.resolve().relative_to(staging.resolve())
            (staging / "kubestep-template.json").write_text(json.dumps({"template": str(relative)}))
            if target.exists():  # an incomplete assembly (no marker): no runtime reads it
                shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _prune(cache_root, keep=key)
    return target / relative


def _cached_template(target: Path) -> Path | None:
    marker = target / "kubestep-template.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        template = target / json.loads(marker.read_text())["template"]
        if template.is_file():
            return template
    return None


@contextlib.contextmanager
def file_lock(path: Path):
    """Held exclusively across processes (flock on `path`, created if missing)."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if this process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(cache_root: Path, keep: str) -> None:
    entries = sorted(
        (p for p in cache_root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in entries[_KEEP - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)
        (cache_root / f".{stale.name}.lock").unlink(missing_ok=True)
