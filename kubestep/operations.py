"""Starting workflows on behalf of the API (and anything else that is not the console):
validate, reserve the cluster's lock under the operation id, record the operation, start the
execution with that id as its name and in its input. The execution's own AcquireLock then
finds the lock already held by its operation id: the reservation and the lock are one."""

from __future__ import annotations

import json
import secrets
from typing import Any

from kubestep import naming
from kubestep.aws import client, is_error
from kubestep.errors import AlreadyExists, NotFound
from kubestep.models import DeleteClusterRequest
from kubestep.registry import Registry, cluster_pk
from kubestep.settings import Settings
from kubestep.validation import parse, parse_create_request
from kubestep.workflows.cluster import execution_running


def execution_arn(settings: Settings, workflow: str, name: str) -> str:
    machine = settings.state_machine_arn(workflow)
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def operation_view(operation: dict, base_path: str = "/v1") -> dict:
    return {
        "id": operation["operationId"],
        "kind": operation["kind"],
        "target": operation.get("target"),
        "status": operation.get("status", "RUNNING"),
        "executionArn": operation.get("executionArn"),
        "startedAt": operation.get("startedAt"),
        "endedAt": operation.get("endedAt"),
        "error": operation.get("error"),
        "cause": operation.get("cause"),
        "statusUrl": f"{base_path}/operations/{operation['operationId']}",
    }


def _start(
    settings: Settings,
    registry: Registry,
    *,
    workflow: str,
    cluster: str,
    operation_id: str,
    execution_input: dict,
    extra: dict[str, Any] | None = None,
) -> dict:
    arn = execution_arn(settings, workflow, operation_id)
    registry.acquire_lock(cluster_pk(cluster), operation_id, arn, execution_running(settings))
    operation = registry.put_operation(operation_id, workflow, cluster, arn, **(extra or {}))
    sfn = client("stepfunctions", settings.region)
    try:
        sfn.start_execution(
            stateMachineArn=settings.state_machine_arn(workflow),
            name=operation_id,
            input=json.dumps(execution_input),
        )
    except Exception as exc:
        if not is_error(exc, "ExecutionAlreadyExists"):
            registry.release_lock(cluster_pk(cluster), operation_id)
            registry.finish_operation(operation_id, "FAILED", type(exc).__name__, str(exc))
            raise
    return operation


def start_create(settings: Settings, registry: Registry, body: Any) -> dict:
    request = parse_create_request(settings.service, body)
    name = request.cluster.name
    if registry.get_cluster(name) is not None:
        raise AlreadyExists(f"cluster {name!r} already exists")
    uid = request.uid or naming.new_uid()
    operation_id = naming.execution_name("create", uid, 1)
    execution_input = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    execution_input.update({"operationId": operation_id, "uid": uid})
    return _start(
        settings,
        registry,
        workflow="CreateCluster",
        cluster=name,
        operation_id=operation_id,
        execution_input=execution_input,
        extra={"uid": uid},
    )


def start_delete(settings: Settings, registry: Registry, name: str, keep_etcd_volumes: bool = False) -> dict:
    request = parse(DeleteClusterRequest, {"clusterName": name, "keepEtcdVolumes": keep_etcd_volumes})
    record = registry.get_cluster(name)
    if record is None:
        raise NotFound(f"cluster {name!r} does not exist")
    # A delete may be retried after a failure: each attempt is its own execution.
    operation_id = naming.execution_name("delete", record["uid"], int(record["generation"]), secrets.token_hex(3))
    execution_input = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    execution_input["operationId"] = operation_id
    return _start(
        settings,
        registry,
        workflow="DeleteCluster",
        cluster=name,
        operation_id=operation_id,
        execution_input=execution_input,
        extra={"uid": record["uid"]},
    )
