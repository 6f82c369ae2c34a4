"""Test process layout. moto's backends are process-wide: the embedded runtime (a moto server
in the test process) and in-process `mock_aws` tests must not share a process while both are
live. Two xdist groups keep them apart under `pytest -n 2 --dist loadgroup`:

- `emulator`: tests/workflows, tests/local, tests/cli (embedded runtimes, one at a time);
- `inprocess`: everything else (in-process moto, CDK synth).

A module that runs its runtimes in subprocesses only (no in-process emulator) may name its group
itself (`pytestmark = pytest.mark.xdist_group("inprocess")`) to run beside the emulator group.

Without xdist everything runs in one process, in collection order, which is also safe: the
workflow tests' session runtime starts last (tests/workflows sorts last)."""

from __future__ import annotations

import os

import pytest

from kubestep import versions

# The end-of-life rule reads today's date: pinned to the version catalog's own date, so the suite
# tests the catalog as written and does not start failing the day a listed minor reaches its end
# of life (tests/unit/test_versions_catalog.py moves the date explicitly). Set before any runtime
# starts: its worker processes inherit it.
os.environ.setdefault(versions.TODAY_ENV, versions.catalog().as_of)

EMULATOR_DIRS = ("workflows", "local", "cli")


def pytest_itemcollected(item: pytest.Item) -> None:
    # At collection time, before xdist's own collection_modifyitems turns the marker into the
    # node id's `@group` suffix that its loadgroup scheduler reads.
    if item.get_closest_marker("xdist_group") is not None:
        return  # the module chose its group
    parts = item.path.parts
    top = parts[parts.index("tests") + 1] if "tests" in parts else ""
    item.add_marker(pytest.mark.xdist_group("emulator" if top in EMULATOR_DIRS else "inprocess"))
