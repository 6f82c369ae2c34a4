"""The base of every step's context: settings, the store, the operation that runs (its id is
the execution's own name, never a field of its input), and the step being run, so a waiting
step can say `ctx.pending(...)` and get its declared deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, Self

from kubestep.errors import InvalidSpec, ResourcePending, ResourceSettling, ResourceTimeout
from kubestep.flow.steps import VISIBILITY, Poll, StepSpec, human
from kubestep.settings import Settings
from kubestep.store import Operation, Store, now
from kubestep.store.deadlines import Waiting

# What one attempt of a polling step takes on AWS (a warm Lambda and a few API calls): the local
# runtime counts this, not how long the attempt ran there (StepContext.waited).
MODELLED_TASK_SECONDS = 1.0


class _Unread:
    """Not read yet (None means read and absent)."""


UNREAD = _Unread()


@dataclass(frozen=True)
class StepRun:
    spec: StepSpec
    key: str  # the deadline's key: the step and its item (replica, node pool)

    @property
    def deadline(self) -> timedelta:
        return (self.spec.poll or VISIBILITY).deadline


class StepContext:
    def __init__(self, settings: Settings, store: Store, operation_id: str):
        self.settings = settings
        self.store = store
        self.operation_id = operation_id
        self.run: StepRun | None = None
        self._operation_at_start: Operation | None | _Unread = UNREAD

    @property
    def operation_at_start(self) -> Operation | None:
        """The running operation's record as this step started (None: no operation, or gone),
        read once; a context that reads its own record with it sets it."""
        if isinstance(self._operation_at_start, _Unread):
            self._operation_at_start = self.store.operations.get(self.operation_id) if self.operation_id else None
        return self._operation_at_start

    @operation_at_start.setter
    def operation_at_start(self, operation: Operation | None) -> None:
        self._operation_at_start = operation

    @classmethod
    def from_event(cls, event: dict[str, Any], settings: Settings, store: Store) -> Self:
        return cls(settings, store, require(event, "operationId"))

    def pending(self, message: str, deadline: timedelta | None = None) -> NoReturn:
        """Not ready yet: ResourcePending (the state machine retries), or ResourceTimeout once the
        step's deadline (counted from the first attempt of this operation) has passed. The first
        wait of a step whose poll looks first after a while (`Poll.first`) is ResourceSettling."""
        run = self.run
        limit = deadline or (run.deadline if run else VISIBILITY.deadline)
        key = run.key if run else "unnamed"
        waiting = self.store.deadlines.started(self.operation_id, key)
        poll = run.spec.poll if run else None
        if waiting.first and poll is not None and poll.first:
            raise ResourceSettling(message)
        if self.waited(waiting, run.spec.pending_policy if run else VISIBILITY) > limit:
            raise ResourceTimeout(f"{message} (still not ready after {self._limit_in_words(limit)})")
        raise ResourcePending(message)

    def waited(self, waiting: Waiting, policy: Poll) -> timedelta:
        """How long the step has waited, in AWS's time. On AWS: the clock's. The local runtime
        runs the state machine's waits `time_scale` times as long, but its tasks as slowly as one
        machine running the emulator, the workers and many operations at once makes them; there
        the waits made so far (scaled back) plus a task's usual run time on AWS per attempt are
        what it modelled, so an emulator slowed down by load never runs a step out of a deadline
        AWS would have met, and a resource that never gets ready still times out after the
        deadline's worth of waiting."""
        if not self.settings.local_clock:
            return now() - waiting.started_at
        earlier = waiting.attempts - 1
        if policy.first:  # the first wait was the settling one
            waits = policy.first + sum(policy.delays(earlier - 1)) if earlier else 0.0
        else:
            waits = sum(policy.delays(earlier))
        return timedelta(seconds=waits + waiting.attempts * MODELLED_TASK_SECONDS)

    def _limit_in_words(self, limit: timedelta) -> str:
        scale = self.settings.time_scale
        if self.settings.local_clock:
            return f"{human(limit)} of modelled waiting (the local runtime's waits at time scale {scale:g})"
        return human(limit)


class StepInput(StepContext):
    """For steps that read the raw event (validation, locks): the input as the state gave it."""

    def __init__(self, settings: Settings, store: Store, operation_id: str, event: dict[str, Any]):
        super().__init__(settings, store, operation_id)
        self.event = event

    @classmethod
    def from_event(cls, event: dict[str, Any], settings: Settings, store: Store) -> Self:
        return cls(settings, store, require(event, "operationId"), event)

    @property
    def execution_arn(self) -> str:
        return require(self.event, "executionArn")


def require(event: dict[str, Any], key: str) -> Any:
    if key not in event or event[key] in (None, ""):
        raise InvalidSpec([(key, "is required (the state machine passes it; see stepfunctions/examples/)")])
    return event[key]
