"""Step Functions "Execution Status Change" events for FAILED, TIMED_OUT and ABORTED runs.

StopExecution and execution timeouts skip every `Catch`, so the lock such a run held would
stay taken until its lease expired; this releases it and records the outcome. The operation
is the one recorded for this very execution (its name and ARN), never one named in its input.

A cluster whose operation ended this way is left in the phase that says what is missing
(`kubestep.recovery`): ERROR after a create or delete, DEGRADED after anything else (a cluster
the operation had not touched yet stays as it was), with the command that brings it back."""

from __future__ import annotations

import contextlib

from kubestep import recovery
from kubestep.errors import NotFound
from kubestep.store import Operation, Store
from kubestep.workflows.cluster_steps import error_message


def failure(detail: dict) -> tuple[str, str]:
    """The error's type and message: a Lambda error's cause is JSON with its stack trace, which
    belongs in the function's logs, not in the operation."""
    status = detail["status"]
    reason = f"Execution{status.title().replace('_', '')}"
    if not detail.get("error"):
        return reason, detail.get("cause") or f"the execution ended {status}"
    error, cause = error_message({"Error": detail.get("error"), "Cause": detail.get("cause")})
    return error, cause or f"the execution ended {status}"


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
    error, message = failure(detail)
    unhandled = operation.status == "RUNNING"
    if unhandled:
        store.operations.finish(operation_id, status, operation.error or error, operation.cause or message)
    released = store.locks.release(operation.keyed_target, operation_id)
    if operation.on_cluster and (unhandled or released):
        _leave_cluster(store, operation, status, error, message, released)
    return {"operationId": operation_id, "status": status, "handled": not unhandled, "lockReleased": released}


def _leave_cluster(store: Store, operation: Operation, status: str, error: str, message: str, released: bool) -> None:
    """The cluster's phase, last error and a Warning event, if this operation was working on it
    (a run stopped before it took the cluster changed nothing: the cluster stays as it was)."""
    cluster, operation_id = operation.target, operation.operation_id
    phase = recovery.phase_after_interruption(operation.kind)
    hint = recovery.advice(cluster, phase, operation.kind)
    reason = f"Execution{status.title().replace('_', '')}"
    what = f"execution {operation_id} ended {status}" + (f" ({error}: {message[:500]})" if error != reason else "")
    changed = store.clusters.update_if_operation(
        cluster,
        operation_id,
        phase=phase,
        current_operation=None,
        last_error={"error": reason, "message": what, "operationId": operation_id, "hint": hint},
    )
    pool = operation.parameters.get("nodePool") if changed is not None else None
    if isinstance(pool, str):
        with contextlib.suppress(NotFound):  # a pool the operation never recorded, or deleted
            store.node_pools.update(cluster, pool, phase="DEGRADED")
    outcome = f"; cluster {cluster} is {phase}: {hint}" if changed is not None else ""
    store.events.record(
        cluster,
        "Warning",
        reason,
        f"{what}; its lock was released: {released}{outcome}",
        f"AWSCluster/{cluster}",
        operation_id,
    )
