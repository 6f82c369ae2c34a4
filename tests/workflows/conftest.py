"""One embedded runtime per test process for the workflow tests: the real synthesized stack
deployed into moto, its network provisioned, workflows run through the real ASL and handlers.

tests/conftest.py keeps these tests in the process of the `emulator` xdist group."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubestep.store import Store
from kubestep_local.runtime import LocalRuntime, RuntimeConfig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# The synth cache outlives a test session (synthesis is the slowest part of start-up).
HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
TIME_SCALE = 0.02


@pytest.fixture(scope="session")
def runtime() -> Iterator[LocalRuntime]:
    rt = LocalRuntime(
        RuntimeConfig(
            port=0,
            api_port=0,
            time_scale=TIME_SCALE,
            home=HOME,
            boot_delay_seconds=20.0,
            # The tests fire the upgrade planner at chosen times (`runtime.tick`), not on its rate.
            scheduled_rules=False,
        )
    )
    try:
        rt.start()
        rt.deploy()
        rt.provision_network()
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="session")
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
