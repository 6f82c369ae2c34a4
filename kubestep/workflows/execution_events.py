"""Step Functions "Execution Status Change" events for FAILED, TIMED_OUT and ABORTED runs.

StopExecution and execution timeouts skip every `Catch`, so the lock such a run held would
stay taken until its lease expired; this releases it and records the outcome. The operation
is the one recorded for this very execution (its name and ARN), never one named in its input."""

from __future__ import annotations

from kubestep.store import Store
from kubestep.workflows.cluster_steps import error_message


def handle(detail: dict, store: Store) -> dict:
    status = detail["status"]
    operation_id = detail["name"]
    operation = store.operations.get(operation_id)
    if operation is None:
        return {"operationId": operation_id, "action": "none (no operation recorded; the lock was never taken)"}
    if operation.execution_arn and operation.execution_arn != detail.get("executionArn"):
        # Another state machine's execution of the same name: not this operation's run.
        return {"operationId": operation_id, "action": "none (the operation belongs to another execution)"}
    # A workflow that failed through its Catch already recorded the failure and released the
    # lock; only runs that ended without it (stopped, timed out, crashed) need the janitor.
    reason = f"Execution{status.title().replace('_', '')}"
    unhandled = operation.status == "RUNNING"
    if unhandled:
        store.operations.finish(
            operation_id,
            status,
            operation.error or reason,
            operation.cause or detail.get("cause") or f"the execution ended {status}",
        )
    target = operation.target
    released = store.locks.release(target, operation_id)
    if target != "network" and (unhandled or released):
        store.clusters.update_if_operation(
            target,
            operation_id,
            phase="ERROR",
            current_operation=None,
            last_error={"error": reason, "message": f"the execution ended {status}", "operationId": operation_id},
        )
        why = ""
        if detail.get("error"):
            error, cause = error_message({"Error": detail.get("error"), "Cause": detail.get("cause")})
            why = f" ({error}: {cause[:500]})" if cause else f" ({error})"
        store.events.record(
            target,
            "Warning",
            reason,
            f"execution {detail['name']} ended {status}{why}; its lock was released: {released}",
            f"AWSCluster/{target}",
            operation_id,
        )
    return {"operationId": operation_id, "status": status, "handled": not unhandled, "lockReleased": released}
