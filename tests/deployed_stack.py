"""The session's deployed stack: the first runtime of a test session deploys the real synthesized
stack into moto, provisions its network and saves the emulator's state; every later runtime of
the session, in any xdist worker, starts from that state instead of deploying again.

Two ways to start from it:

- an embedded runtime (tests/workflows): `started_runtime` (``RuntimeConfig.start_from``);
- a `kubestep local up` in its own process (tests/cli): `seed_home` writes the state where the
  home's runtime saves its own when it stops (``kubestep_local.state.StateStore``), so the next
  `local up` restores it, finds the stack deployed and the network's execution done, as after a
  `kubestep local down`. A module that tests the very first `local up` of a home does not seed
  it (tests/cli/test_first_hour.py, test_demo.py, test_bench.py, test_existing_vpc.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kubestep_local.runtime import LocalRuntime, RuntimeConfig
from kubestep_local.state import StateStore
from kubestep_local.synth import file_lock

ROOT = Path(__file__).resolve().parents[1]
# The synth cache outlives a test session (synthesis is the slowest part of start-up).
HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
# Workflow seconds to real seconds in these runtimes (Wait states, retries, boots, handlers' own
# deadlines); KUBESTEP_TEST_TIME_SCALE tries another for every module, a module's own included.
TIME_SCALE_ENV = "KUBESTEP_TEST_TIME_SCALE"
TIME_SCALE = float(os.environ.get(TIME_SCALE_ENV, "0.02"))
# The name a workflow module gives a scale of its own (tests/workflows/conftest.py): a module whose
# tests only wait on modelled time (Wait states, boots, drains) runs them at a lower one.
MODULE_TIME_SCALE = "RUNTIME_TIME_SCALE"
# What the runtimes of a session share through their homes: the synthesized assembly and the
# zipped Lambda asset (both keyed by content; the synth cache takes a lock while it writes).
SHARED_CACHES = ("cdk.out", "asset-zips")


def time_scale_of(module: object) -> float:
    """The time scale of a module's runtime: its own (`RUNTIME_TIME_SCALE`) unless
    KUBESTEP_TEST_TIME_SCALE sets one for the whole run."""
    if os.environ.get(TIME_SCALE_ENV):
        return TIME_SCALE
    return float(getattr(module, MODULE_TIME_SCALE, TIME_SCALE))


def runtime_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home of the runtime's own (its function logs, fault plan, Lambda code), with the caches
    linked to the shared ones."""
    home = tmp_path_factory.mktemp("kubestep-home")
    (home / "local").mkdir()
    for name in SHARED_CACHES:
        shared = HOME / "local" / name
        shared.mkdir(parents=True, exist_ok=True)
        (home / "local" / name).symlink_to(shared, target_is_directory=True)
    return home


def state_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this test session's deployed state is (or will be) saved."""
    base = tmp_path_factory.getbasetemp()
    # xdist workers' temporary directories are siblings in the session's own directory.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return shared / "deployed-stack.pickle"


@contextmanager
def first_deploy(state: Path) -> Iterator[None]:
    """Held while a runtime deploys and saves `state`: a runtime of another worker starting
    meanwhile waits for the state rather than deploying the same stack on the same cores."""
    if state.is_file():
        yield
        return
    with file_lock(state.with_name(state.name + ".lock")):  # the kernel releases it if the worker dies
        yield


def started_runtime(home: Path, state: Path, time_scale: float = TIME_SCALE) -> LocalRuntime:
    """A runtime with the stack deployed and its network provisioned, from `state` if saved (else
    it deploys, provisions and saves `state`). Call it inside `first_deploy(state)`."""
    rt = LocalRuntime(
        RuntimeConfig(
            port=0,
            api_port=0,
            time_scale=time_scale,
            home=home,
            boot_delay_seconds=20.0,
            # The tests fire the upgrade planner at chosen times (`runtime.tick`), not on its rate.
            scheduled_rules=False,
            # A function's warm workers start with its first invocation: most modules never call
            # some of the five, and each costs an import of the handler's dependencies.
            prewarm=False,
            start_from=state if state.is_file() else None,
        )
    )
    try:
        rt.start()
        rt.deploy()
        rt.provision_network()
        if not state.is_file():
            rt.snapshot(state)
    except BaseException:
        rt.stop()
        raise
    return rt


def saved_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's deployed state, saved now by a runtime of this process (started and stopped
    here: moto's backends are the process's) unless a runtime of the session saved it already."""
    state = state_path(tmp_path_factory)
    with first_deploy(state):
        if not state.is_file():
            started_runtime(runtime_home(tmp_path_factory), state).stop()
    return state


def seed_home(home: Path, state: Path) -> None:
    """Make `home` hold `state` as its saved emulator state, as a `kubestep local down` after a
    runtime that deployed the stack and provisioned the network leaves it (no clusters): the next
    `kubestep local up` there restores it instead of deploying from scratch."""
    StateStore(home).save(state.read_bytes(), clusters=[])
