"""Starting workflows on behalf of the API (and anything else that is not the console):
validate, reserve the cluster's lock under the operation id, write the operation record (the
execution's identity: kind, target, uid, execution ARN), then start the execution with that id
as its name. The execution's AcquireLock finds its own record and the lock already held by its
operation id: the reservation and the lock are one. The input carries no identity."""

from __future__ import annotations

import json
import secrets
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_already_exists
from kubestep.errors import AlreadyExists, NotFound
from kubestep.settings import Settings
from kubestep.store import Operation, Store
from kubestep.validation import parse_create_request, parse_delete_request
from kubestep.workflows.cluster_steps import check_references
from kubestep.workflows.identity import execution_running


def execution_arn(settings: Settings, workflow: str, name: str) -> str:
    machine = settings.state_machine_arn(workflow)
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def operation_view(operation: Operation, base_path: str = "/v1") -> dict:
    status = operation.status
    if status == "RUNNING" and operation.compensating:
        status = "ROLLING_BACK"
    return {
        "id": operation.operation_id,
        "kind": operation.kind,
        "target": operation.target,
        "status": status,
        "executionArn": operation.execution_arn,
        "startedAt": operation.started_at,
        "endedAt": operation.ended_at,
        "error": operation.error,
        "cause": operation.cause,
        # What the operation found or changed (a repair's, a sweep's), when it says.
        "result": operation.progress,
        "statusUrl": f"{base_path}/operations/{operation.operation_id}",
    }


def _start(
    settings: Settings,
    store: Store,
    *,
    workflow: str,
    cluster: str,
    operation_id: str,
    execution_input: dict,
    uid: str,
    parameters: dict[str, Any] | None = None,
) -> Operation:
    arn = execution_arn(settings, workflow, operation_id)
    store.locks.acquire(cluster, operation_id, arn, execution_running(settings))
    operation, created = store.operations.create(
        Operation(
            operation_id=operation_id,
            kind=workflow,
            target=cluster,
            execution_arn=arn,
            uid=uid,
            parameters=parameters or {},
        )
    )
    if not created and operation.execution_arn != arn:
        store.locks.release(cluster, operation_id)
        raise AlreadyExists(f"operation id {operation_id} is taken; retry")
    sfn = client("stepfunctions", settings.region)
    try:
        sfn.start_execution(
            stateMachineArn=settings.state_machine_arn(workflow), name=operation_id, input=json.dumps(execution_input)
        )
    except Exception as exc:
        if not is_already_exists(exc, Kind.EXECUTION):
            store.locks.release(cluster, operation_id)
            store.operations.finish(operation_id, "FAILED", type(exc).__name__, str(exc))
            raise
    return operation


def start_create(settings: Settings, store: Store, body: Any) -> Operation:
    request = parse_create_request(settings.service, body)
    name = request.cluster.name
    if store.clusters.get(name) is not None:
        raise AlreadyExists(f"cluster {name!r} already exists")
    network = store.network.ready(settings.service_name)
    check_references(settings, network.vpc_id, request)
    uid = naming.new_uid()
    operation_id = naming.execution_name("create", uid, 1)
    return _start(
        settings,
        store,
        workflow="CreateCluster",
        cluster=name,
        operation_id=operation_id,
        execution_input=request.model_dump(mode="json", by_alias=True, exclude_none=True),
        uid=uid,
    )


def start_delete(settings: Settings, store: Store, name: str, keep_etcd_volumes: bool = False) -> Operation:
    request = parse_delete_request({"clusterName": name, "keepEtcdVolumes": keep_etcd_volumes})
    record = store.clusters.get(name)
    if record is None:
        raise NotFound(f"cluster {name!r} does not exist")
    # A delete may be retried after a failure: each attempt is its own execution.
    operation_id = naming.execution_name("delete", record.uid, record.generation, secrets.token_hex(3))
    return _start(
        settings,
        store,
        workflow="DeleteCluster",
        cluster=name,
        operation_id=operation_id,
        execution_input=request.model_dump(mode="json", by_alias=True, exclude_none=True),
        uid=record.uid,
    )


# ---------------------------------------------------------------- issue 11: repair, sweep


def start_repair(settings: Settings, store: Store, name: str, dry_run: bool = False) -> Operation:
    """RepairCluster: refused (LockHeld) while another operation works on the cluster."""
    from kubestep.workflows.repair_steps import KIND, parse_repair_request

    request = parse_repair_request({"clusterName": name, "dryRun": dry_run})
    record = store.clusters.get(name)
    if record is None:
        raise NotFound(f"cluster {name!r} does not exist")
    operation_id = naming.execution_name("repair", record.uid, record.generation, secrets.token_hex(3))
    return _start(
        settings,
        store,
        workflow=KIND,
        cluster=name,
        operation_id=operation_id,
        execution_input=request.model_dump(mode="json", by_alias=True),
        uid=record.uid,
    )


def start_sweep(settings: Settings, store: Store, body: Any) -> Operation:
    """SweepOrphans (a dry run unless `dryRun` is false). No lock: every step it runs is idempotent."""
    from kubestep.workflows.sweep_steps import KIND, TARGET, parse_sweep_request

    request = parse_sweep_request(body)
    operation_id = f"sweep-{secrets.token_hex(6)}"
    arn = execution_arn(settings, KIND, operation_id)
    operation, _ = store.operations.create(
        Operation(operation_id=operation_id, kind=KIND, target=TARGET, execution_arn=arn, uid=naming.new_uid())
    )
    sfn = client("stepfunctions", settings.region)
    try:
        sfn.start_execution(
            stateMachineArn=settings.state_machine_arn(KIND),
            name=operation_id,
            input=json.dumps(request.model_dump(mode="json", by_alias=True)),
        )
    except Exception as exc:
        store.operations.finish(operation_id, "FAILED", type(exc).__name__, str(exc))
        raise
    return operation
