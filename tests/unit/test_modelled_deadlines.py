"""A polling step's deadline in AWS's time. On AWS it is the clock's; the local runtime runs the
state machine's waits `time_scale` times as long but its tasks as slowly as a loaded machine
makes them, so there the deadline counts the waits the state machine made (their Retry
intervals: IntervalSeconds x BackoffRate^n up to MaxDelaySeconds,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html) plus a
task's usual run time on AWS per attempt: a slow emulator never times a step out that AWS would
have let finish, and a resource that never gets ready still times out."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from kubestep.errors import ResourcePending, ResourceTimeout
from kubestep.flow.context import MODELLED_TASK_SECONDS, StepContext, StepRun
from kubestep.flow.steps import Poll, StepSpec
from kubestep.store import Store, keys

POLL = Poll(deadline=timedelta(minutes=2), interval=10, backoff=1.0, max_delay=10)


def _context(store: Store, *, local_clock: bool) -> StepContext:
    settings = SimpleNamespace(time_scale=0.05 if local_clock else 1.0, local_clock=local_clock)
    ctx = StepContext(settings, store, "create-x-1")  # type: ignore[arg-type]
    ctx.run = StepRun(StepSpec("CheckSomething", lambda ctx: {}, creates=False, poll=POLL), "CheckSomething-0")
    return ctx


def _started_an_hour_ago(store: Store) -> None:
    store.deadlines.started("create-x-1", "CheckSomething-0")
    store.deadlines._table.raw_update(  # noqa: SLF001 - the test moves the first wait back in time
        Key={"pk": keys.deadline_pk("create-x-1"), "sk": "CheckSomething-0"},
        UpdateExpression="SET startedAt = :then",
        ExpressionAttributeValues={":then": "2020-01-01T00:00:00.000Z"},
    )


def test_on_aws_the_clock_decides(store: Store) -> None:
    _started_an_hour_ago(store)
    with pytest.raises(ResourceTimeout, match=r"still not ready after 2m\)"):
        _context(store, local_clock=False).pending("not yet")


def test_locally_time_the_emulator_spent_running_tasks_does_not_count(store: Store) -> None:
    # Attempts 1 and 2 (the first wait was made): 10 s waited + 2 task runs, far inside 2 minutes
    # however long the emulator took over them.
    _started_an_hour_ago(store)
    ctx = _context(store, local_clock=True)
    with pytest.raises(ResourcePending) as raised:
        ctx.pending("not yet")
    assert type(raised.value) is ResourcePending


def test_locally_a_resource_that_never_gets_ready_times_out_after_the_deadlines_worth_of_waits(
    store: Store,
) -> None:
    ctx = _context(store, local_clock=True)
    # Attempt k has waited 10 s x (k - 1) + k task runs: the first past 120 s is the 12th.
    attempts_inside = next(k for k in range(1, 100) if 10 * k + (k + 1) * MODELLED_TASK_SECONDS > 120)
    for _ in range(attempts_inside):
        with pytest.raises(ResourcePending) as raised:
            ctx.pending("not yet")
        assert type(raised.value) is ResourcePending
    with pytest.raises(ResourceTimeout, match="2m of modelled waiting"):
        ctx.pending("not yet")
    # Within the state machine's retry budget for the step: its Python timeout comes first.
    assert attempts_inside + 1 <= POLL.max_attempts + 1
