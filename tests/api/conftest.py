"""In-process moto for the API: the table, the state machines (a Pass state each; executions
stay RUNNING, so locks stay held), the management service's settings and a READY network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from kubestep import aws as aws_module
from kubestep import idempotency, naming
from kubestep import settings as settings_module
from kubestep.store import ClusterRecord, NodePoolRecord, Store
from kubestep.workflows import all_workflows
from kubestep_local import moto_compat
from tests.unit.conftest import EXAMPLES, TABLE, configure, create_table, load_service

PREFIX = "arn:aws:states:us-east-1:123456789012:stateMachine:unit-"
WORKFLOWS = tuple(all_workflows())
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def _clear_caches() -> None:
    from lambdas import _tasks

    aws_module.client.cache_clear()

    aws_module.session.cache_clear()
    settings_module.settings.cache_clear()
    _tasks.store.cache_clear()
    idempotency.runner.cache_clear()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A management service (examples/management-service.yaml) with its network READY."""
    with management_service(monkeypatch) as store:
        yield store


@contextmanager
def management_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "kubestep",
        "POWERTOOLS_METRICS_NAMESPACE": "kubestep",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    _clear_caches()
    # The emulator's moto performance patches (the same answers, tests/local/test_moto_speed.py),
    # as the embedded runtime applies them: the API's reads and writes are DynamoDB calls.
    patches = moto_compat.PatchSet()
    moto_compat.fix_moto_performance(patches)
    try:
        with mock_aws():
            create_table()
            sfn = boto3.client("stepfunctions", "us-east-1")
            for workflow in WORKFLOWS:
                sfn.create_state_machine(
                    name=f"unit-{workflow}", definition=PASS, roleArn="arn:aws:iam::123456789012:role/unit-sfn"
                )
            configure(monkeypatch, load_service(EXAMPLES / "management-service.yaml"))
            store = Store.for_table(TABLE)
            store.network.update(status="READY")
            yield store
    finally:
        patches.undo()
    _clear_caches()


def executions(workflow: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", "us-east-1")
    return sfn.list_executions(stateMachineArn=f"{PREFIX}{workflow}")["executions"]


def execution_input(arn: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", "us-east-1")
    return json.loads(sfn.describe_execution(executionArn=arn)["input"])


def example_body() -> dict[str, Any]:
    """examples/cluster-ha.yaml as a POST /v1/clusters body."""
    docs = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))
    cluster = next(d for d in docs if d["kind"] == "AWSCluster")
    pools = [d for d in docs if d["kind"] == "AWSNodePool"]
    return {"cluster": cluster, "nodePools": pools, "rollbackOnFailure": True}


def body_named(name: str) -> dict[str, Any]:
    body = example_body()
    body["cluster"]["metadata"]["name"] = name
    for pool in body["nodePools"]:
        pool["spec"]["clusterName"] = name
    return body


def register(
    store: Store, body: dict[str, Any], operation_id: str = "create-test-1", uid: str | None = None
) -> ClusterRecord:
    """What CreateCluster's AcquireLock step records: the cluster and its node pools."""
    from kubestep.validation import parse_create_request

    request = parse_create_request(settings_module.settings().service, body)
    name = request.cluster.name
    record = ClusterRecord(
        name=name,
        # The first cluster gets a fixed uid (tests name its resources); others their own.
        uid=uid or ("abcd1234" if store.clusters.owner_of_uid("abcd1234") is None else naming.new_uid()),
        spec=request.cluster,
        version=request.cluster.spec.control_plane.version,
        created_by=operation_id,
        current_operation=operation_id,
    )
    pools = [
        NodePoolRecord(name=p.name, cluster=name, spec=p, version=p.spec.version, created_by=operation_id)
        for p in request.node_pools
    ]
    return store.clusters.create(record, pools)


def register_running(store: Store, body: dict[str, Any] | None = None) -> ClusterRecord:
    """A cluster whose create has finished: RUNNING, no operation, no lock."""
    record = register(store, body or example_body())
    return store.clusters.update(record.name, phase="RUNNING", current_operation=None)
