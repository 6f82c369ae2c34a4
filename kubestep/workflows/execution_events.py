"""Step Functions "Execution Status Change" events for FAILED, TIMED_OUT and ABORTED runs.

StopExecution and execution timeouts skip every `Catch`, so the lock such a run held would
stay taken until its lease expired; this releases it and records the outcome."""

from __future__ import annotations

import json

from kubestep.registry import NETWORK_PK, Registry, cluster_pk


def operation_id_of(detail: dict) -> str:
    try:
        data = json.loads(detail.get("input") or "{}")
    except ValueError:
        data = {}
    request = data if isinstance(data, dict) else {}
    return request.get("operationId") or detail["name"]


def handle(detail: dict, registry: Registry) -> dict:
    status = detail["status"]
    operation_id = operation_id_of(detail)
    operation = registry.get_operation(operation_id)
    if operation is None:
        return {"operationId": operation_id, "action": "none (no operation recorded; the lock was never taken)"}
    # A workflow that failed through its Catch already recorded the failure and released the
    # lock; only runs that ended without it (stopped, timed out, crashed) need the janitor.
    unhandled = operation.get("status") in ("RUNNING", None)
    if unhandled:
        registry.finish_operation(
            operation_id,
            status,
            f"Execution{status.title().replace('_', '')}",
            detail.get("cause") or f"the execution ended {status}",
        )
    target = operation.get("target", "")
    pk = NETWORK_PK if target == "network" else cluster_pk(target)
    released = registry.release_lock(pk, operation_id)
    if target != "network" and (unhandled or released):
        cluster = registry.get_cluster(target)
        if cluster and cluster.get("currentOperation") == operation_id:
            registry.update_cluster(
                target,
                phase="ERROR",
                currentOperation=None,
                lastError={"error": f"Execution{status}", "operationId": operation_id},
            )
        registry.record_event(
            target,
            "Warning",
            f"Execution{status.title().replace('_', '')}",
            f"execution {detail['name']} ended {status}; its lock was released: {released}",
            f"AWSCluster/{target}",
            operation_id,
        )
    return {"operationId": operation_id, "status": status, "handled": not unhandled, "lockReleased": released}
