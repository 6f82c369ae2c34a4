"""The workflow declarations and the ASL files rendered from them: the checked-in files are
exactly what the declarations render, every Task retries what it should, a waiting step's
retry budget is never shorter than its deadline, and the delete order exists once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestep.flow.asl import LAMBDA_SERVICE_ERRORS, Task
from kubestep.flow.steps import STEPS, VISIBILITY, Poll
from kubestep.workflows import all_workflows, dispatch_table

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(all_workflows())


def task_states(states: dict) -> Iterator[tuple[str, dict]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        elif state["Type"] == "Map":
            yield from task_states(state["ItemProcessor"]["States"])
        elif state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from task_states(branch["States"])


def test_checked_in_files_are_what_the_declarations_render():
    # The same check `python -m kubestep.workflows --check` runs (docs diagrams included).
    result = subprocess.run(
        [sys.executable, "-m", "kubestep.workflows", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, f"run `python -m kubestep.workflows`: {result.stderr}"
    for name, workflow in all_workflows().items():
        assert (ROOT / "stepfunctions" / f"{name}.asl.json").read_text() == workflow.to_json()


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_task_exists_and_retries_what_it_should(name):
    workflow = all_workflows()[name]
    definition = workflow.render()
    assert "Generated from" in definition["Comment"]
    assert definition["TimeoutSeconds"] <= 7200
    for state_name, state in task_states(definition["States"]):
        payload = state["Parameters"]["Payload"]
        # The function the state invokes (`${ClusterTasksFunctionArn}`) must dispatch its task.
        function = state["Parameters"]["FunctionName"].removeprefix("${").removesuffix("FunctionArn}")
        spec = dispatch_table(function)[payload["task"]]
        assert payload["operationId.$"] == "$$.Execution.Name", f"{state_name} takes its identity from the input"
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert retried >= set(LAMBDA_SERVICE_ERRORS) | {"Throttled"}, state_name
        assert ("ResourcePending" in retried) == spec.waits, f"{state_name}: pending retry vs declaration"


@pytest.mark.parametrize("spec", sorted(STEPS.values(), key=lambda s: s.name), ids=lambda s: s.name)
def test_a_waiting_steps_retry_budget_outlasts_its_deadline(spec):
    if not spec.waits:
        return
    policy = spec.pending_policy
    assert policy.budget_seconds >= policy.deadline.total_seconds(), spec.name
    if spec.poll:
        assert spec.pending_policy.deadline >= spec.poll.deadline


def test_the_budget_derivation_can_fail():
    # A deadline no retry budget could cover with few attempts shows up as many attempts.
    assert Poll(deadline=VISIBILITY.deadline).max_attempts > 5
    short = Poll.__new__(Poll)
    object.__setattr__(short, "deadline", VISIBILITY.deadline)
    object.__setattr__(short, "interval", 1)
    object.__setattr__(short, "backoff", 1.0)
    object.__setattr__(short, "max_delay", 1)
    assert sum(short.delays(10)) < short.deadline.total_seconds()


def test_every_step_is_used_by_a_workflow():
    used = {t.spec.name for wf in all_workflows().values() for t in wf.tasks()}
    assert sorted(set(STEPS) - used) == []


def test_create_cluster_catches_everything_after_the_lock_and_nothing_before():
    states = all_workflows()["CreateCluster"].render()["States"]
    assert "Catch" not in states["ValidateRequest"] and "Catch" not in states["AcquireLock"]
    failure_path = {"RecordFailure", "RecordCompensationFailure", "RecordRollback", "FinishFailure"}
    for name, state in states.items():
        unguarded = failure_path | {"ValidateRequest", "AcquireLock"}
        if state["Type"] in ("Task", "Map", "Parallel") and name not in unguarded:
            assert state.get("Catch"), f"{name} runs under the lock without a Catch"
        if name.startswith("Rollback") and state["Type"] == "Task":
            # Compensation errors never overwrite the cause the operation reports.
            assert state["Catch"][0]["ResultPath"] == "$.compensationError", name


def test_the_delete_order_exists_once():
    delete = [t.spec.name for t in all_workflows()["DeleteCluster"].tasks()]
    rollback = [t.spec.name for t in all_workflows()["CreateCluster"].tasks() if t.name.startswith("Rollback")]
    assert rollback and [s for s in delete if s in rollback] == rollback
    create_tasks: list[Task] = all_workflows()["CreateCluster"].tasks()
    assert all(
        t.args.get("scope") == "operation" for t in create_tasks if t.name.startswith("Rollback") and "scope" in t.args
    )


def test_failed_runs_report_the_original_error():
    for name in ("CreateCluster", "DeleteCluster", "ProvisionNetwork", "DeprovisionNetwork"):
        fails = [s for s in all_workflows()[name].render()["States"].values() if s["Type"] == "Fail"]
        assert fails and all(f["ErrorPath"] == "$.error.Error" and f["CausePath"] == "$.error.Cause" for f in fails)


def test_definitions_parse_with_the_emulators_asl_parser():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    for _name, workflow in all_workflows().items():
        text = workflow.to_json().replace("${", "").replace("FunctionArn}", "")
        AmazonStateLanguageParser.parse(json.dumps(json.loads(text)))
