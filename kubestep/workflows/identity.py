"""Who an execution is: its own execution name and ARN, and the operation record
written for that name before it started (by the API) or by the execution itself (a console
start). Never a field of its input: anyone allowed to start an execution may type any JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.errors import InvalidSpec
from kubestep.flow.context import StepInput
from kubestep.settings import Settings
from kubestep.store import Operation


def own_operation(ctx: StepInput, kind: str, target: str, **fields: Any) -> Operation:
    """This execution's operation record: the one the API wrote for this execution name, or a
    new one written now. A record of that id that belongs to another execution is refused."""
    operation = Operation(
        operation_id=ctx.operation_id,
        kind=kind,
        target=target,
        execution_arn=ctx.execution_arn,
        uid=fields.pop("uid", None) or naming.new_uid(),
        **fields,
    )
    stored, _created = ctx.store.operations.create(operation)
    if (stored.execution_arn, stored.kind, stored.target) != (ctx.execution_arn, kind, target):
        raise InvalidSpec(
            [
                (
                    "executionName",
                    f"{ctx.operation_id!r} is already the id of another operation ({stored.kind} of "
                    f"{stored.target!r}, execution {stored.execution_arn}); start this execution under another name",
                )
            ]
        )
    return stored


def execution_running(settings: Settings) -> Callable[[str], bool | None]:
    """For lock takeover: is that execution still RUNNING? None if it does not exist (yet)."""
    sfn = client("stepfunctions", settings.region)

    def running(arn: str) -> bool | None:
        try:
            return sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        except Exception as exc:
            if is_not_found(exc, Kind.EXECUTION):
                return None
            raise

    return running
