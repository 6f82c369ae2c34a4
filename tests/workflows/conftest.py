"""One embedded runtime per test module for the workflow tests: the real synthesized stack deployed
into moto, its network provisioned, workflows run through the real ASL and handlers. The first
runtime of a test session deploys and provisions; the others, in every xdist worker, start from its
snapshot.

Module scope: a module sees only what its own tests did (nothing another module left, created
or deprovisioned), its tests can be run alone, and xdist can run any two modules at once on two
workers (tests/conftest.py). Before it stops, the runtime checks every AWS call its handlers
made and every execution it ran (runtime_checks.py: calls granted by the synthesized policies,
no secret material anywhere): a problem fails the module's last test at teardown. The runtime
runs at the session's time scale (tests/deployed_stack.py), or at the module's own if it names one
(`RUNTIME_TIME_SCALE`: a module that mostly waits on modelled time)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubestep.store import Store
from kubestep_local.runtime import LocalRuntime

from ..deployed_stack import ROOT, first_deploy, runtime_home, started_runtime, state_path, time_scale_of
from . import runtime_checks

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def deployed_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first runtime of this test session saves the emulator with the stack deployed and
    the network provisioned; the runtimes after it, in any xdist worker, start from there
    (tests/deployed_stack.py) instead of deploying and provisioning again."""
    return state_path(tmp_path_factory)


@pytest.fixture(scope="module")
def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, deployed_state: Path
) -> Iterator[LocalRuntime]:
    home = runtime_home(tmp_path_factory)
    with first_deploy(deployed_state):
        rt = started_runtime(home, deployed_state, time_scale_of(request.module))
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
