"""Polls tuned to a resource's latency (`Poll.first`): a step's first wait of an operation is
ResourceSettling, which its state retries once after `first` seconds; every later wait is
ResourcePending, retried at the short intervals. Retry semantics: the first retrier whose
ErrorEquals names the error applies, with its own attempt count
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from kubestep.errors import ResourcePending, ResourceSettling
from kubestep.flow.asl import pending_retries
from kubestep.flow.context import StepContext, StepRun
from kubestep.flow.steps import STEPS, Poll, StepSpec
from kubestep.workflows import all_workflows


def _spec(poll: Poll) -> StepSpec:
    return StepSpec("CheckSomething", lambda ctx: {}, creates=False, poll=poll)


def test_a_poll_with_a_first_look_renders_a_settling_retrier_before_the_pending_one() -> None:
    poll = Poll(deadline=timedelta(minutes=15), interval=3, backoff=1.2, max_delay=20, first=50)
    settling, pending = pending_retries(_spec(poll))
    assert settling == {
        "ErrorEquals": ["ResourceSettling"],
        "IntervalSeconds": 50,
        "MaxAttempts": 2,
        "BackoffRate": 1,
    }
    assert pending["ErrorEquals"] == ["ResourcePending"] and pending["IntervalSeconds"] == 3
    # The first look counts in the budget the deadline needs.
    assert poll.budget_seconds == 50 + sum(poll.delays(poll.max_attempts)) >= poll.deadline.total_seconds()
    assert pending_retries(_spec(Poll(deadline=timedelta(minutes=5))))[0]["ErrorEquals"] == ["ResourcePending"]


def test_the_resources_aws_takes_a_known_while_over_are_looked_at_late() -> None:
    all_workflows()  # registers every step
    firsts = {name: spec.poll.first for name, spec in STEPS.items() if spec.poll and spec.poll.first}
    assert firsts == {
        "CheckNatGateways": 150,
        "DeleteLoadBalancer": 50,
        "DeleteNodePoolGroups": 35,
        "DeleteControlPlaneGroups": 35,
        "DeleteNodePoolGroup": 35,
        # No instance reports before it booted and installed its packages.
        "CheckReplicaHealth": 60,
        "CheckNodePoolHealth": 60,
        "FinishNodePoolUpdate": 60,
    }


@pytest.mark.parametrize("first", [50, 0])
def test_only_the_first_wait_of_an_operation_settles(store, first: int) -> None:
    poll = Poll(deadline=timedelta(minutes=15), interval=3, first=first)
    ctx = StepContext(SimpleNamespace(time_scale=1.0, local_clock=False), store, "create-x-1")  # type: ignore[arg-type]
    ctx.run = StepRun(_spec(poll), "CheckSomething-0")
    with pytest.raises(ResourcePending) as raised:
        ctx.pending("not yet")
    assert (type(raised.value) is ResourceSettling) == bool(first)
    with pytest.raises(ResourcePending) as again:
        ctx.pending("not yet")
    assert type(again.value) is ResourcePending
    # Another operation (or another item) waits for the first time again.
    ctx.operation_id = "create-x-2"
    with pytest.raises(ResourcePending) as other:
        ctx.pending("not yet")
    assert (type(other.value) is ResourceSettling) == bool(first)
