"""Test process layout for `pytest -n 4 --dist loadgroup` (scripts/test.sh).

moto's backends are process-wide: an embedded runtime (a moto server in the test process) and
in-process `mock_aws` tests must not share a process *while both are live*; one after the other
is fine (a stopped runtime leaves moto as it found it). So no runtime outlives its tests:

- tests/workflows: each module starts its own runtime (module scope: tests/workflows/conftest.py),
  which ends with the module, after the IAM check of every call its handlers made;
- tests/local: one runtime of a stub stack for the modules that use it (package scope);
- tests/cli: the CLI against runtimes it starts in subprocesses (those whose first `local up` is
  not the point start from the session's deployed stack: tests/deployed_stack.py);
- everything else: in-process moto (`mock_aws`, at most module scope) and CDK synth.

Each xdist group is one unit of work a worker runs from start to end:

- every test module is a group of its own (`workflows/test_lifecycle`, `api/test_routes`, ...),
  so modules of any kind run on any worker in any order;
- `local`: the tests/local tests that use its package runtime (one runtime, not one per worker);
- `infra`: tests/infra (its session-scoped synth runs once);
- a test module may name its group itself (`pytestmark = pytest.mark.xdist_group(NAME)`), and a
  test may be split across groups (its parameters marked with groups of their own). The fault
  matrix is not: its parts share one runtime and one derivation of the operations, which three
  groups would each pay for.

The scheduler hands out the longest groups first (`GROUP_SECONDS`; a group not listed counts
DEFAULT_EMULATOR_SECONDS if its module starts runtimes, else DEFAULT_SECONDS_PER_TEST a test). A
workflow module's runtime costs its start on top of its tests: about a second from the snapshot
the first runtime of the session saved after deploying the stack and provisioning the network
(which took that first one several seconds, while a runtime starting on another worker waited
for it), and the checks of all it ran at its end.

Without xdist everything runs in one process, in collection order, which is also safe: each
runtime has stopped before the next module starts."""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
import pytest

from kubestep import versions

# The end-of-life rule reads today's date: pinned to the version catalog's own date, so the suite
# tests the catalog as written and does not start failing the day a listed minor reaches its end
# of life (tests/unit/test_versions_catalog.py moves the date explicitly). Set before any runtime
# starts: its worker processes inherit it.
os.environ.setdefault(versions.TODAY_ENV, versions.catalog().as_of)

# moto fills every EC2 backend it makes (one per region, again after each `mock_aws` reset) with
# ~1,300 public AMIs, and scans them all on each launch's image lookup: ~0.17 CPU-s of the unit
# `aws` fixture's 0.23, and most of a saved emulator state's size. kubestep boots only the Ubuntu
# images it publishes itself (moto_compat.publish_ubuntu_images) and the tests name no public
# AMI, so none are loaded. Set before any runtime starts: its worker processes and the CLI's
# runtimes inherit it (moto reads it each time it makes a backend).
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    """One botocore data loader per data path for the whole test process. Each boto3 session makes
    its own loader, which parses the service models' JSON again (EC2's is megabytes): the tests
    clear kubestep's cached session between tests (a test's environment is its own), so every
    test paid for parsing the models of every client it made. The models are botocore's packaged
    data, the same for every session; credentials, region and endpoints stay per session. (The
    local runtime's Lambda workers share theirs the same way: kubestep_local/_worker.py.)"""
    return botocore.loaders.create_loader(search_path_string)


botocore.session.create_loader = _shared_loader

# Packages whose modules start runtimes of their own (the scheduler's default for them).
RUNTIME_PACKAGES = ("workflows", "cli")
DEFAULT_EMULATOR_SECONDS = 25.0
DEFAULT_SECONDS_PER_TEST = 0.2
# Test seconds per group (setup, call and teardown of its tests, summed; measured in a full run of
# `pytest -n 6 --dist loadgroup` on 2 cores): only the order matters. Every group of 25 s or more is
# listed: one missing counts as DEFAULT_SECONDS_PER_TEST a test (or DEFAULT_EMULATOR_SECONDS),
# so a long module of few tests (unit/test_destructive_ownership: 7 tests, ~60 s) would start
# last and finish alone. To measure them again:
# `bash scripts/test.sh --group-seconds .build/reports/group-seconds.json` (GroupSeconds below). The
# unit fleet modules' (unit/test_*_ownership, unit/test_steps_in_process) are scaled by their CPU
# cut when their in-process moto got the emulator's performance patches, not measured again.
GROUP_SECONDS: dict[str, float] = {
    # Its three parts in one group: one runtime and one derivation of the operations.
    "workflows/test_fault_matrix": 358,
    "workflows/test_lifecycle": 225,
    "workflows/dashboard/test_actions_and_fleet": 221,
    "bootstrap/test_control_plane_join": 198,
    "workflows/dashboard/test_upgrade_view": 192,
    "cli/test_cli_local": 182,
    "bootstrap/test_cluster_upgrade": 177,
    "api/test_schemathesis": 171,
    "infra": 143,
    "local/test_persistence": 140,
    "workflows/test_aws_latency": 117,
    "workflows/test_cluster_access": 102,
    "workflows/test_ownership": 98,
    "workflows/test_dashboard": 93,
    "workflows/test_failures": 87,
    "cli/test_first_hour": 83,
    "bootstrap/test_script_control_plane": 83,
    "bootstrap/test_cluster_restore": 71,
    "workflows/test_auto_repair": 71,
    "workflows/test_zz_network_and_iam": 69,
    "cli/test_bench": 68,
    "workflows/test_console_examples": 64,
    "workflows/test_backups": 61,
    "workflows/test_drift": 60,
    "cli/test_dashboard_local_restart": 60,
    "local": 58,
    "cli/test_existing_vpc": 58,
    "unit/test_destructive_ownership": 57,
    "bootstrap/test_cluster_backups": 50,
    "cli/test_demo": 46,
    "workflows/test_create_cluster": 44,
    "bootstrap/test_cluster_maintenance": 43,
    "local/test_isolation": 39,
    "api/test_routes": 37,
    "workflows/test_interrupts": 36,
    "workflows/test_trust_boundaries": 34,
    "workflows/test_restore": 33,
    "unit/test_steps_in_process": 30,
    "unit/test_reference_ownership": 27,
    "bootstrap/test_admins_refresh": 26,
    "bootstrap/test_etcd_recovery": 26,
    "local/test_lifecycle": 25,
    "unit/test_sweeper_ownership": 22,
}


def group_of(item: pytest.Item) -> str:
    parts = item.path.parts
    inside = parts[parts.index("tests") + 1 :] if "tests" in parts else parts[-1:]
    top = inside[0] if len(inside) > 1 else ""
    if top == "local" and "runtime" in getattr(item, "fixturenames", ()):
        return "local"
    if top == "infra":
        return "infra"
    return "/".join(inside).removesuffix(".py")


def pytest_itemcollected(item: pytest.Item) -> None:
    # At collection time, before xdist's own collection_modifyitems turns the marker into the
    # node id's `@group` suffix that its loadgroup scheduler reads.
    if item.get_closest_marker("xdist_group") is not None:
        return  # the module or the test chose its group
    item.add_marker(pytest.mark.xdist_group(group_of(item)))


def expected_seconds(group: str, tests: int) -> float:
    if group in GROUP_SECONDS:
        return GROUP_SECONDS[group]
    if group.split("/", 1)[0] in RUNTIME_PACKAGES:
        return DEFAULT_EMULATOR_SECONDS
    return DEFAULT_SECONDS_PER_TEST * tests


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class LongestGroupsFirst(LoadGroupScheduling):
        """xdist's loadgroup scheduling (a worker is given the next group when the one it runs has
        two tests left), with the groups in order of expected time, longest first, instead of
        by number of tests: a long group started last would finish alone."""

        _ordered = False

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:
                # Every test has a group (pytest_itemcollected): a unit named by a test's node id
                # means xdist no longer sees the groups (pyproject.toml says when that happens),
                # and runtimes would start on both workers for one module's tests.
                lost = [unit for unit in self.workqueue if "::" in unit]
                if lost:
                    raise RuntimeError(f"--dist loadgroup sees no xdist_group on {len(lost)} tests, e.g. {lost[0]}")
                order = sorted(self.workqueue, key=lambda group: -expected_seconds(group, len(self.workqueue[group])))
                for group in order:
                    self.workqueue.move_to_end(group)
                self._ordered = True
            super()._assign_work_unit(node)

    return LongestGroupsFirst(config, log)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--group-seconds",
        metavar="PATH",
        default=None,
        help="write each xdist group's test seconds (setup, call and teardown of its tests) to PATH "
        "as JSON, longest first: the numbers GROUP_SECONDS in tests/conftest.py wants",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--group-seconds")
    if path and not hasattr(config, "workerinput"):  # the controller (or the only process)
        config.pluginmanager.register(GroupSeconds(Path(path)), "group-seconds")


class GroupSeconds:
    """Sums each group's test seconds from the reports the controller gets: under `--dist
    loadgroup` a test's node id ends in `@GROUP` (xdist adds it); without xdist it has none and
    the test's module stands for its group."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: Counter[str] = Counter()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        if "@" in nodeid:
            group = nodeid.rsplit("@", 1)[1]
        else:
            inside = nodeid.split("::", 1)[0].removeprefix("tests/")
            group = inside.removesuffix(".py")
        self.seconds[group] += report.duration

    def pytest_sessionfinish(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ordered = {group: round(seconds, 1) for group, seconds in self.seconds.most_common()}
        self.path.write_text(json.dumps(ordered, indent=2) + "\n")
