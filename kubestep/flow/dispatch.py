"""Running a step from a Task state's payload: build its context, read its parameters, wait
out eventual consistency for creating steps, and name errors the way the state machines
`Retry`/`Catch` on them (the exception's class name becomes the Step Functions error)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from kubestep.aws import pending_until_visible
from kubestep.aws.errors import error_code, is_throttling
from kubestep.errors import InvalidSpec, OperationCancelled, ResourcePending, Throttled
from kubestep.flow.context import StepContext, StepRun
from kubestep.flow.steps import StepSpec
from kubestep.settings import Settings
from kubestep.store import Store


def _coerce(value: Any, kind: type, key: str) -> Any:
    if kind is int and not isinstance(value, bool):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InvalidSpec([(key, f"must be an integer, got {value!r}")]) from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise InvalidSpec([(key, f"must be true or false, got {value!r}")])
    if kind is str and not isinstance(value, str):
        raise InvalidSpec([(key, f"must be a string, got {type(value).__name__}")])
    if kind in (dict, list) and not isinstance(value, kind):
        raise InvalidSpec(
            [(key, f"must be a JSON {'object' if kind is dict else 'array'}, got {type(value).__name__}")]
        )
    return value


# Steps that handle a failure (and compensation steps, which take a `scope`) run after a cancel.
FAILURE_PATH = frozenset(
    {"RecordFailure", "FinishFailure", "RecordRollback", "RecordCompensationFailure", "ForgetNodePool"}
)


def _stop_if_cancelled(ctx: StepContext) -> None:
    """A cancel asked for (`kubestep operations cancel`): stop before this step. The workflow's
    Catch then compensates what the operation created, as for any failure."""
    operation = ctx.operation_at_start
    if operation is not None and operation.cancel_requested and not operation.compensating:
        raise OperationCancelled(operation.cause or f"operation {ctx.operation_id} was cancelled")


def run_step(spec: StepSpec, event: dict[str, Any], settings: Settings, store: Store) -> dict:
    context_type, params = spec.signature
    kwargs: dict[str, Any] = {}
    for param in params:
        if param.key not in event:
            raise InvalidSpec([(param.key, f"is required by step {spec.name}")])
        kwargs[param.name] = _coerce(event[param.key], param.kind, param.key)
    ctx = context_type.from_event(event, settings, store)
    ctx.run = StepRun(spec, "-".join([spec.name, *(str(v) for v in kwargs.values())]))
    if spec.name not in FAILURE_PATH and "scope" not in event:
        _stop_if_cancelled(ctx)
    fn = pending_until_visible(spec.fn) if spec.creates else spec.fn
    try:
        return fn(ctx, **kwargs)
    except ResourcePending:
        if not spec.waits:
            # The state machine would not retry it: a declaration bug, not a pending resource.
            raise RuntimeError(f"step {spec.name} is pending but not declared to wait (poll= or creates=)") from None
        raise
    except ClientError as exc:
        if is_throttling(exc):
            # botocore's adaptive retries ran out: the state machine backs off and retries.
            raise Throttled(f"{spec.name}: AWS throttled {exc.operation_name} ({error_code(exc)})") from exc
        # Name the step: the Warning event and the operation's cause say where it failed.
        exc.args = (f"{spec.name}: {exc}",)
        raise
