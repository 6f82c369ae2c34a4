"""One embedded runtime per test module for the workflow tests: the real synthesized stack deployed
into moto, its network provisioned, workflows run through the real ASL and handlers. The first
runtime of a test session deploys and provisions; the others, in every xdist worker, start from its
snapshot.

Module scope: a module sees only what its own tests did (nothing another module left, created
or deprovisioned), its tests can be run alone, and xdist can run any two modules at once on two
workers (tests/conftest.py). Before it stops, the runtime checks every AWS call its handlers
made and every execution it ran (runtime_checks.py: calls granted by the synthesized policies,
no secret material anywhere): a problem fails the module's last test at teardown."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubestep.store import Store
from kubestep_local.runtime import LocalRuntime, RuntimeConfig

from . import runtime_checks

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# The synth cache outlives a test session (synthesis is the slowest part of start-up).
HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
# Workflow seconds to real seconds in these runtimes (Wait states, retries, boots, handlers' own
# deadlines); KUBESTEP_TEST_TIME_SCALE tries another.
TIME_SCALE = float(os.environ.get("KUBESTEP_TEST_TIME_SCALE", "0.02"))
# What the runtimes of a session share through their homes: the synthesized assembly and the
# zipped Lambda asset (both keyed by content; the synth cache takes a lock while it writes).
SHARED_CACHES = ("cdk.out", "asset-zips")


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


@pytest.fixture(scope="session")
def deployed_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first runtime of this test session saves the emulator with the stack deployed and
    the network provisioned; the runtimes after it, in any xdist worker, start from there
    (RuntimeConfig.start_from) instead of deploying and provisioning again."""
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
    with open(state.with_name(state.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the kernel releases it if the worker dies
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def started_runtime(home: Path, state: Path) -> LocalRuntime:
    """A runtime with the stack deployed and its network provisioned, from `state` if saved."""
    rt = LocalRuntime(
        RuntimeConfig(
            port=0,
            api_port=0,
            time_scale=TIME_SCALE,
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


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, deployed_state: Path) -> Iterator[LocalRuntime]:
    home = runtime_home(tmp_path_factory)
    with first_deploy(deployed_state):
        rt = started_runtime(home, deployed_state)
    try:
        yield rt
        found = runtime_checks.problems(rt, Store.for_table(rt.outputs["TableName"], dynamodb=_resource(rt)))
        assert not found, f"in what this module's runtime ran:\n{found}"
    finally:
        rt.stop()


@pytest.fixture(scope="module")
def store(runtime: LocalRuntime) -> Store:
    return Store.for_table(runtime.outputs["TableName"], dynamodb=_resource(runtime))


def _resource(runtime: LocalRuntime) -> Any:
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=runtime.endpoint_url,
        region_name=runtime.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# Executions started directly are the console path: their input must name the administrators
# (the API would default them to its caller).
CONSOLE_ADMIN = "arn:aws:iam::123456789012:role/platform/Admin"


def ha_request(name: str = "prod", **extra: Any) -> dict:
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    cluster, pools = docs[0], docs[1:]
    cluster["metadata"]["name"] = name
    cluster["spec"]["authentication"] = {"awsIAM": {"adminIdentityARNs": [CONSOLE_ADMIN]}}
    for pool in pools:
        pool["spec"]["clusterName"] = name
    return {"cluster": cluster, "nodePools": pools, **extra}


@pytest.fixture
def clients(runtime: LocalRuntime) -> Callable[[str], Any]:
    return runtime.boto3_client


class InFlight:
    """Lambda invocations running now, per execution (an interceptor of the runtime's Lambda
    seam): a stopped execution's tasks still running can be waited for, not slept past."""

    def __init__(self) -> None:
        self._running: Counter[str | None] = Counter()
        self._changed = threading.Condition()

    def before_invoke(self, fn: Any, event: Any, execution_arn: str | None) -> None:
        with self._changed:
            self._running[execution_arn] += 1

    def after_invoke(self, fn: Any, event: Any, execution_arn: str | None, *timing: Any) -> None:
        with self._changed:
            self._running[execution_arn] -= 1
            self._changed.notify_all()

    def wait_ended(self, execution_arn: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._running[execution_arn] > 0:
                left = deadline - time.monotonic()
                assert left > 0, f"tasks of {execution_arn} still running after {timeout} s"
                self._changed.wait(left)


@pytest.fixture
def in_flight(runtime: LocalRuntime) -> Iterator[InFlight]:
    # Last: an invocation the runtime's own interceptor refuses (fault injection) never runs.
    tracker = InFlight()
    runtime.seam.interceptors.append(tracker)
    try:
        yield tracker
    finally:
        runtime.seam.interceptors.remove(tracker)
