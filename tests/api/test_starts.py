"""Starting an operation (kubestep/api/starts.py, kubestep/workflows/starts.py): a start that
Step Functions refuses leaves nothing held, and a retried `Idempotency-Key` starts nothing new."""

from __future__ import annotations

import boto3
import pytest

from kubestep.store import Store
from tests.api.conftest import PREFIX, example_body, executions, register
from tests.api.helpers import call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def _running_cluster(api: Store) -> str:
    record = register(api, example_body(), "create-test-1")
    api.locks.release(record.name, "create-test-1")
    api.clusters.update(record.name, phase="RUNNING", current_operation=None)
    return record.name


def _refuse(workflow: str) -> None:
    """StartExecution of `workflow` answers StateMachineDoesNotExist (Step Functions API
    reference, StartExecution: Errors), as when the stack is half updated."""
    boto3.client("stepfunctions", "us-east-1").delete_state_machine(stateMachineArn=f"{PREFIX}{workflow}")


def test_a_refused_start_ends_its_operation_failed_and_releases_the_cluster(api: Store) -> None:
    name = _running_cluster(api)
    _refuse("RepairCluster")

    answer = call("POST", f"/v1/clusters/{name}:repair")

    assert answer.status >= 500, answer.json
    [operation] = [o for o in api.operations.all(10, None)[0] if o.kind == "RepairCluster"]
    assert operation.status == "FAILED" and operation.error == "StateMachineDoesNotExist"
    assert api.locks.get(name) is None  # the next operation is not refused LockHeld


def test_a_refused_sweep_ends_its_operation_failed(api: Store) -> None:
    _refuse("SweepOrphans")

    answer = call("POST", "/v1/orphans:sweep", body={})

    assert answer.status >= 500, answer.json
    [operation] = [o for o in api.operations.all(10, None)[0] if o.kind == "SweepOrphans"]
    assert operation.status == "FAILED" and operation.error == "StateMachineDoesNotExist"


def test_a_retried_key_answers_the_first_start_and_starts_nothing_new(api: Store) -> None:
    name = _running_cluster(api)
    headers = {"Idempotency-Key": "repair-once"}

    first = call("POST", f"/v1/clusters/{name}:repair", headers=headers)
    again = call("POST", f"/v1/clusters/{name}:repair", headers=headers)

    assert first.status == again.status == 202
    assert again.json["id"] == first.json["id"]
    assert len(executions("RepairCluster")) == 1


def test_a_start_on_a_cluster_that_is_gone_answers_404_and_starts_nothing(api: Store) -> None:
    for method, path in (("POST", "/v1/clusters/ghost:repair"), ("DELETE", "/v1/clusters/ghost")):
        answer = call(method, path, headers={"Idempotency-Key": f"{method}-ghost"})
        assert answer.status == 404, answer.json
    assert executions("RepairCluster") == executions("DeleteCluster") == []
