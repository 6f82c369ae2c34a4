"""The operation envelope every lifecycle workflow runs its body in, declared once.

    ValidateRequest → AcquireLock → Context → body (every error caught) → Succeed
    failure: the error recorded → (a create's rollback) → the lock released → Fail

The state names are a contract: the dashboard, the step log, the tests and the console examples
read them. A new lifecycle operation declares its body, its validation and lock steps and what
its failure records; the rest is here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kubestep.flow.asl import Catch, Choice, Fail, Pass, State, Succeed, Task, Workflow, guarded
from kubestep.workflows import cluster_steps, network_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD

ERROR: dict[str, Any] = {"error.$": "$.error"}
# A rollback's own errors go elsewhere: `$.error` stays the cause the operation reports.
COMPENSATION_FAILED = Catch("RecordCompensationFailure", result_path="$.compensationError")


@dataclass(frozen=True)
class Validation:
    """The request check (`ValidateRequest`): it sees the execution's input and answers `fields`,
    which the rest of the operation reads from the state (`Context`). `whole_answer` keeps the
    answer as the step returns it (`$.validated.result`) instead of selecting the fields."""

    step: Any
    fields: tuple[str, ...]
    whole_answer: bool = False
    comment: str | None = None

    def path(self, name: str) -> str:
        return f"$.validated.result.{name}" if self.whole_answer else f"$.validated.{name}"

    def task(self) -> Task:
        select = None if self.whole_answer else {f"{f}.$": f"$.Payload.{f}" for f in self.fields}
        return Task(
            self.step,
            name="ValidateRequest",
            comment=self.comment,
            base=False,
            args={"request.$": "$", **IDENTITY_PAYLOAD},
            output="$.validated",
            select=select,
        )


@dataclass(frozen=True)
class Lock:
    """The cluster's lock (`AcquireLock`): the step proves the execution's identity from the
    operation record. It is given the execution's own input when `with_input`, and the validated
    `reads`; what it answers (`holds`, e.g. the cluster's uid) joins the context."""

    step: Any
    reads: tuple[str, ...] = ("clusterName",)
    with_input: bool = False
    holds: tuple[str, ...] = ()
    comment: str | None = None

    def task(self, validation: Validation) -> Task:
        args: dict[str, Any] = {"request.$": "$$.Execution.Input"} if self.with_input else {}
        args.update({f"{f}.$": validation.path(f) for f in self.reads})
        return Task(
            self.step,
            name="AcquireLock",
            comment=self.comment,
            base=False,
            args={**args, **IDENTITY_PAYLOAD},
            output="$.lock" if self.holds else None,
            select={f"{f}.$": f"$.Payload.{f}" for f in self.holds} if self.holds else None,
        )


def lifecycle_head(
    validation: Validation, lock: Lock, *, before_lock: Sequence[State] = (), context_comment: str | None = None
) -> list[State]:
    """ValidateRequest → (`before_lock`) → AcquireLock → Context: the state from here on is the
    validated fields, then what the lock answered (by name), nothing of the request itself."""
    fields = {f"{f}.$": validation.path(f) for f in validation.fields}
    fields.update({f"{f}.$": f"$.lock.{f}" for f in sorted(lock.holds)})
    return [
        validation.task(),
        *before_lock,
        lock.task(validation),
        Pass("Context", comment=context_comment, parameters=fields),
    ]


@dataclass(frozen=True)
class Failure:
    """Where every error of the body goes: `record` (its Warning event, the phase), `recovery`
    (a create's rollback), `finish` (the lock released), then the Fail state `name` reporting
    the original error."""

    name: str
    record: Task
    recovery: tuple[State, ...] = ()
    finish: Task | None = None

    @property
    def catch(self) -> Catch:
        return Catch(self.record.name, result_path="$.error")

    def chain(self) -> list[State]:
        finish = [self.finish] if self.finish else []
        fail = Fail(self.name, error_path="$.error.Error", cause_path="$.error.Cause")
        return [self.record, *self.recovery, *finish, fail]


def _record_failure(args: dict[str, Any], comment: str | None) -> Task:
    return Task(cluster_steps.record_failure, comment=comment, args={**ERROR, **args})


def _finish_failure(comment: str | None) -> Task:
    return Task(cluster_steps.finish_failure, comment=comment, args=ERROR)


def recorded_failure(name: str, *, record_args: dict[str, Any] | None = None, comment: str | None = None) -> Failure:
    """A cluster operation's failure: the error recorded (`record_args`: the phase it leaves, the
    node pool), the lock released, Fail `name`."""
    return Failure(name, record=_record_failure(record_args or {}, comment), finish=_finish_failure(None))


def rolled_back_failure(
    name: str,
    *,
    record_args: dict[str, Any],
    compensation: Sequence[State],
    record_comment: str | None = None,
    finish_comment: str | None = None,
) -> Failure:
    """A create's failure: the error recorded; unless the request said `rollbackOnFailure: false`,
    `compensation` (what this operation created deleted; its own errors recorded apart, so the
    operation still reports the first error); the lock released, Fail `name`."""
    recovery: list[State] = [
        Choice(
            "RollbackWanted",
            choices=[({"Variable": "$.rollbackOnFailure", "BooleanEquals": False}, "FinishFailure")],
            default=compensation[0].name,
        ),
        *guarded(list(compensation), COMPENSATION_FAILED),
        Task(cluster_steps.record_rollback, next="FinishFailure"),
        Task(
            cluster_steps.record_compensation_failure,
            args={"compensationError.$": "$.compensationError"},
            next="FinishFailure",
        ),
    ]
    return Failure(
        name,
        record=_record_failure(record_args, record_comment),
        recovery=tuple(recovery),
        finish=_finish_failure(finish_comment),
    )


def network_lock(step: Any) -> Task:
    """The network's lock (`AcquireLock`): the management service's one network record, taken by
    the step that reads the request; it answers the network's mode (dedicated or existing VPC)."""
    return Task(
        step,
        name="AcquireLock",
        base=False,
        args={"request.$": "$", **IDENTITY_PAYLOAD},
        output="$.begin",
        select={"mode.$": "$.Payload.mode"},
    )


def network_failure(name: str) -> Failure:
    """A network operation's failure: the error recorded and the lock released in one step."""
    return Failure(name, record=Task(network_steps.record_network_failure, name="RecordFailure", args=ERROR))


def operation(
    *,
    head: Sequence[State],
    body: Sequence[State],
    succeeded: str,
    failure: Failure,
    release: Sequence[State] = (),
) -> list[list[State]]:
    """An operation's chains: `head`, then `body` with every error caught into the failure path,
    then `release` (a last step outside that path, when it has one), then Succeed `succeeded`."""
    main = [*head, *guarded(list(body), failure.catch), *release, Succeed(succeeded)]
    return [main, failure.chain()]


def cluster_operation(
    name: str,
    module: str,
    comment: str,
    timeout: timedelta,
    *,
    validation: Validation,
    lock: Lock,
    body: Sequence[State],
    succeeded: str,
    failure: Failure,
    before_lock: Sequence[State] = (),
    context_comment: str | None = None,
) -> Workflow:
    """A cluster lifecycle workflow: its tasks on ClusterTasks, each given the cluster's name and
    the operation id, in the envelope above."""
    return Workflow(
        name=name,
        module=module,
        comment=comment,
        timeout=timeout,
        function="ClusterTasks",
        base_payload=CLUSTER_PAYLOAD,
        chains=operation(
            head=lifecycle_head(validation, lock, before_lock=before_lock, context_comment=context_comment),
            body=body,
            succeeded=succeeded,
            failure=failure,
        ),
    )
