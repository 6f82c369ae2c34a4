"""The operation envelope (kubestep/workflows/envelope.py), read from the rendered ASL: in every
operation but the planner, each step of the body catches every error into the failure path,
which records the error, releases what the operation holds and ends in a Fail state reporting
the original error; the head validates and locks before anything else runs."""

from __future__ import annotations

from typing import Any

import pytest

from kubestep.workflows import all_workflows

# The planners start operations; they take no lock and have no failure path of their own.
OPERATIONS = [name for name in all_workflows() if name not in ("PlanUpgrades", "PlanRepairs")]
HEAD = ("ValidateRequest", "AcquireLock", "Context")
# A network operation's last step releases the lock itself, outside the failure path.
RELEASE = ("Finish",)


def _targets(state: dict[str, Any]) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [c["Next"] for c in state.get("Choices", [])] + [c["Next"] for c in state.get("Catch", [])]
    return [t for t in targets if t]


def _reachable(states: dict[str, Any], start: str) -> set[str]:
    """The states `start` leads to, by Next, Choices and Default (not by a Catch)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [t for t in _targets(states[name]) if t not in _catch_targets(states[name])]
    return seen


def _catch_targets(state: dict[str, Any]) -> set[str]:
    return {c["Next"] for c in state.get("Catch", [])}


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_step_of_the_body_catches_into_the_failure_path(name: str) -> None:
    definition = all_workflows()[name].render()
    states = definition["States"]
    recorders = {t for s in states.values() for t in _catch_targets(s)}
    record = next(r for r in ("RecordFailure", "RecordSweepFailure") if r in recorders)
    failure_path = _reachable(states, record)
    body = _reachable(states, definition["StartAt"]) - failure_path
    for state_name in body - set(HEAD) - set(RELEASE):
        state = states[state_name]
        if state["Type"] in ("Task", "Map"):
            assert record in _catch_targets(state), f"{name}: {state_name} does not catch into {record}"
    [fail] = [s for s in failure_path if states[s]["Type"] == "Fail"]
    assert states[fail]["ErrorPath"] == "$.error.Error" and states[fail]["CausePath"] == "$.error.Cause"


@pytest.mark.parametrize("name", OPERATIONS)
def test_the_head_validates_and_locks_before_the_body(name: str) -> None:
    definition = all_workflows()[name].render()
    states = definition["States"]
    start = definition["StartAt"]
    if name == "SweepOrphans":  # no lock: every step it runs is idempotent (operations.start_sweep)
        assert "Catch" in states[start]
        return
    if name == "DeleteBackups":  # no lock: the cluster is gone (operations.start_delete_backups)
        assert start == "ValidateRequest" and "Catch" not in states[start] and "AcquireLock" not in states
        return
    assert start in ("ValidateRequest", "AcquireLock")
    assert "Catch" not in states[start], "a refused request records nothing: it never held the lock"
    lock = states["AcquireLock"]
    assert "Catch" not in lock, "a refused lock fails without compensating or releasing another's lock"
