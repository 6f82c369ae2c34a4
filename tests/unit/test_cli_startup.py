"""What a `kubestep` command imports before it starts: every command pays its module imports, so
the help and the commands that need neither AWS nor the domain's models must not load boto3,
pydantic, the domain package or the local runtime (kubestep.cli.main loads its commands lazily,
and the command modules import those where they use them). Counted in a fresh interpreter: the
test process has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Packages and kubestep modules a command that never calls the API, signs nothing and reads no
# manifest has no use for.
HEAVY = (
    "boto3",
    "botocore",
    "s3transfer",
    "pydantic",
    "cryptography",
    "rich",
    "moto",
    "kubestep_local",
    "kubestep.models",
    "kubestep.validation",
    "kubestep.lifecycle",
    "kubestep.views",
    "kubestep.store",
    "kubestep.resources",
    "kubestep.inventory",
    "kubestep.dashboard",
)
# Runs the command in-process as the console script does, then names every module imported.
PROBE = """
import json, sys
from kubestep.cli.main import main
code = None
try:
    main.main(sys.argv[1:], prog_name="kubestep")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def among(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


def imported_by(args: list[str], home: Path) -> tuple[int, list[str]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KUBESTEP_", "AWS_"))}
    env.update(KUBESTEP_HOME=str(home), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["modules"]


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["--help"], 0),
        ([], 0),
        (["get", "-h"], 0),
        (["apply", "-h"], 0),
        (["version", "--client"], 0),
        (["config", "get-contexts"], 0),
        (["completion", "bash"], 0),
        (["get", "clusters"], 2),  # no management API configured: the one-line error
        (["get", "cluster", "prod"], 2),
        (["nope"], 2),
    ],
    ids=lambda value: " ".join(["kubestep", *value]) if isinstance(value, list) else None,
)
def test_light_commands_import_no_sdk_models_or_runtime(args: list[str], exit_code: int, tmp_path: Path) -> None:
    code, modules = imported_by(args, tmp_path)
    assert code == exit_code
    assert among(modules, HEAVY) == []


@pytest.mark.parametrize(
    "args",
    [["get", "clusters"], ["get", "cluster", "prod"], ["version", "--client"], ["config", "get-contexts"]],
    ids=" ".join,
)
def test_commands_that_read_no_yaml_import_none(args: list[str], tmp_path: Path) -> None:
    """YAML is for manifests, the config file (none here) and `-o yaml`."""
    _, modules = imported_by(args, tmp_path)
    assert among(modules, ("yaml", "kubestep.cli.manifests", "kubestep.cli.safe_yaml")) == []


def test_a_command_still_gets_what_it_uses(tmp_path: Path) -> None:
    """The probe sees imports: `explain` documents the pydantic models, so it loads them."""
    code, modules = imported_by(["explain", "cluster"], tmp_path)
    assert code == 0
    assert "pydantic" in modules and "kubestep.models" in modules
