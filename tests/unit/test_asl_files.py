"""Invariants of the ASL files that the emulator would not catch by itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestep.workflows import cluster, network

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "stepfunctions").glob("*.asl.json"))
TASKS = {"${ClusterTasksFunctionArn}": cluster.TASKS, "${NetworkTasksFunctionArn}": network.TASKS}
LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}


def task_states(states: dict) -> Iterator[tuple[str, dict]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        elif state["Type"] == "Map":
            yield from task_states(state["ItemProcessor"]["States"])
        elif state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from task_states(branch["States"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_task_exists_and_retries_what_it_should(path: Path):
    definition = json.loads(path.read_text())
    assert definition["TimeoutSeconds"] <= 7200
    for name, state in task_states(definition["States"]):
        params = state["Parameters"]
        task = params["Payload"]["task"]
        assert task in TASKS[params["FunctionName"]], f"{path.name}:{name} calls unknown task {task}"
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert retried >= LAMBDA_ERRORS, f"{path.name}:{name} does not retry Lambda's transient errors"
        if task.startswith(cluster.CREATE_SIDE):  # they wait out eventual consistency
            assert "ResourcePending" in retried, f"{path.name}:{name} ({task}) does not retry ResourcePending"


def test_create_cluster_catches_everything_after_the_lock_and_nothing_before():
    definition = json.loads((ROOT / "stepfunctions" / "CreateCluster.asl.json").read_text())
    states = definition["States"]
    assert "Catch" not in states["ValidateRequest"] and "Catch" not in states["AcquireLock"]
    failure_path = {
        "RecordFailure",
        "RollbackWanted",
        "RecordRollbackFailureEvent",
        "ReleaseLockAfterFailure",
        "CreateFailed",
        "ReleaseLock",
    }
    for name, state in states.items():
        if (
            state["Type"] in ("Task", "Map")
            and name not in failure_path
            and name not in ("ValidateRequest", "AcquireLock")
        ):
            assert state.get("Catch"), f"{name} runs under the lock without a Catch"
