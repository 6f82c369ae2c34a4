"""moto's `mock_aws` resets every backend of the process when it starts and when it stops, the
backends a live embedded runtime serves included (moto/core/models.py: BaseMockAWS.start/stop
with reset). tests/local shares one runtime across its modules (package scope) and tests/workflows
and tests/cli run one per module, so a `mock_aws` test among them wipes a runtime that other
tests are still using whenever xdist happens to run it in between (it did: "Function not found:
stub-tasks"). In-process moto tests live in tests/unit, tests/api, tests/commands."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGES = ("local", "workflows", "cli")
MOCK_USE = re.compile(r"^\s*(@mock_aws|.*\bmock_aws\(|from moto import .*\bmock_aws\b)", re.MULTILINE)


def test_no_mock_aws_where_an_embedded_runtime_is_shared() -> None:
    offenders = [
        str(path.relative_to(TESTS))
        for package in RUNTIME_PACKAGES
        for path in sorted((TESTS / package).rglob("*.py"))
        if MOCK_USE.search(path.read_text())
    ]
    assert offenders == [], f"mock_aws beside a shared runtime: {offenders} (move them to tests/unit)"
