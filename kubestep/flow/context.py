"""The base of every step's context: settings, the store, the operation that runs (its id is
the execution's own name, never a field of its input), and the step being run, so a waiting
step can say `ctx.pending(...)` and get its declared deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, Self

from kubestep.errors import InvalidSpec, ResourcePending, ResourceSettling, ResourceTimeout
from kubestep.flow.steps import VISIBILITY, StepSpec, human
from kubestep.settings import Settings
from kubestep.store import Store, now


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
        scale = self.settings.time_scale
        started, first_wait = self.store.deadlines.started(self.operation_id, key)
        if first_wait and run is not None and run.spec.poll is not None and run.spec.poll.first:
            raise ResourceSettling(message)
        if now() - started > limit * scale:
            waited = human(limit)
            if scale != 1:
                waited += f" of modelled time ({human(limit * scale)} at time scale {scale:g})"
            raise ResourceTimeout(f"{message} (still not ready after {waited})")
        raise ResourcePending(message)


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
