"""Typed errors. A task's exception class name becomes the Step Functions error name, so the
state machines `Retry`/`Catch` on these names; keep them stable."""

from __future__ import annotations

from typing import Any

SHOWN_LIMIT = 80


def shown(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """A caller's value inside a message: quoted and escaped like repr (no raw control or
    bidirectional characters reach a terminal or a log), and cut at `limit` characters (a 6 KB
    value is named, not echoed)."""
    if not isinstance(value, str):
        value = repr(value)
        return value if len(value) <= limit else value[:limit] + "…"
    return repr(value if len(value) <= limit else value[:limit] + "…")


class KubestepError(Exception):
    """Base class for errors kubestep raises on purpose."""


class InvalidSpec(KubestepError):
    """The input breaks a rule. `problems` lists (field path, rule) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {rule}" for field, rule in problems))


class NotFound(KubestepError):
    """The named object does not exist."""


class AlreadyExists(KubestepError):
    """An object with that name exists with a different spec."""


class LockHeld(KubestepError):
    """Another operation holds the cluster's lock."""

    def __init__(self, resource: str, holder: dict):
        self.resource = resource
        self.holder = holder
        super().__init__(
            f"{resource} is locked by operation {holder.get('operationId')} "
            f"(execution {holder.get('executionArn') or 'not started yet'}, since {holder.get('acquiredAt')})"
        )


class NetworkNotReady(KubestepError):
    """The management service's network is not READY."""


class ResourcePending(KubestepError):
    """A resource is on its way; the state machine retries the step later."""


class ResourceSettling(ResourcePending):
    """The step has just started what AWS takes a known time over: the state machine looks again
    once it could plausibly be ready (the step's `Poll.first`), then polls as for ResourcePending."""


class ResourceTimeout(KubestepError):
    """A resource did not get ready before the step's deadline."""


class Throttled(KubestepError):
    """AWS kept throttling after botocore's own retries; the state machine backs off."""


class BootstrapFailed(KubestepError):
    """An instance reported that its Kubernetes bootstrap failed."""


class InvalidRequest(InvalidSpec):
    """A request parameter (a query parameter or token, not a manifest field) breaks a rule."""


class OperationNotRunning(KubestepError):
    """The operation has already ended: there is nothing to cancel."""


class OperationCancelled(KubestepError):
    """A cancel was requested: the workflow stops here and compensates what it created."""


class ClusterNotReady(KubestepError):
    """The cluster is in a phase that takes no lifecycle operation (creating, deleting, ERROR)."""


class ScheduleNotPending(KubestepError):
    """The schedule already fired or was cancelled: there is nothing to cancel."""
