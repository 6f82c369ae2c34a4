"""Every rendered state machine through asl-validator (npm; installed by scripts/setup.sh), the
Amazon States Language validator: state types and fields, transitions, JSONPath expressions.
A second opinion beside cfn-lint's E3601 (tests/infra/test_validation.py), and a test that it
does fail on a broken definition."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / ".build" / "node" / "node_modules" / ".bin" / "asl-validator"
DEFINITIONS = sorted((ROOT / "stepfunctions").glob("*.asl.json"))


def validate(path: Path) -> subprocess.CompletedProcess:
    assert VALIDATOR.exists(), f"{VALIDATOR} is missing: run scripts/setup.sh (npm install asl-validator)"
    return subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_rendered_definition_is_valid_asl(path: Path) -> None:
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_a_broken_definition(tmp_path: Path) -> None:
    definition = json.loads(DEFINITIONS[0].read_text())
    first = definition["StartAt"]
    definition["States"][first]["Next"] = "NoSuchState"
    definition["States"][first].pop("End", None)
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    result = validate(broken)
    assert result.returncode != 0 and "NoSuchState" in result.stdout + result.stderr
