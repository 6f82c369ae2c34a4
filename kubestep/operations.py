"""Starting workflows on behalf of the API (and anything else that is not the console):
validate, reserve the cluster's lock under the operation id, record the operation, start the
execution with that id as its name and in its input. The execution's own AcquireLock then
finds the lock already held by its operation id: the reservation and the lock are one."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Key

from kubestep import naming
from kubestep.aws import client, is_error
from kubestep.errors import AlreadyExists, InvalidRequest, LockHeld, NotFound, OperationNotRunning
from kubestep.execution_history import history, summarize
from kubestep.models import DeleteClusterRequest, dump
from kubestep.registry import KEY_FIELDS, Registry, cluster_pk, plain
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


# ---------------------------------------------------------------- dry runs
# Every check the start would make, in the same order, and nothing started: what
# `?dryRun=true` answers (and `kubestep apply --dry-run` shows).


def _lock_free(settings: Settings, registry: Registry, name: str) -> None:
    holder = registry.get_lock(cluster_pk(name))
    # The same judgement acquire_lock makes before taking a lock over.
    if holder and not Registry._lock_abandoned(holder, execution_running(settings)):
        raise LockHeld(f"cluster {name}", holder)


def plan_create(settings: Settings, registry: Registry, body: Any) -> dict:
    request = parse_create_request(settings.service, body)
    registry.ready_network(settings.service_name)
    name = request.cluster.name
    if registry.get_cluster(name) is not None:
        raise AlreadyExists(f"cluster {name!r} already exists")
    _lock_free(settings, registry, name)
    return {
        "dryRun": True,
        "kind": "CreateCluster",
        "target": name,
        "cluster": dump(request.cluster),
        "nodePools": [dump(pool) for pool in request.node_pools],
        "rollbackOnFailure": request.rollback_on_failure,
    }


def plan_delete(settings: Settings, registry: Registry, name: str, keep_etcd_volumes: bool = False) -> dict:
    parse(DeleteClusterRequest, {"clusterName": name, "keepEtcdVolumes": keep_etcd_volumes})
    record = registry.get_cluster(name)
    if record is None:
        raise NotFound(f"cluster {name!r} does not exist")
    _lock_free(settings, registry, name)
    resources = record.get("resources") or {}
    return {
        "dryRun": True,
        "kind": "DeleteCluster",
        "target": name,
        "uid": record.get("uid"),
        "keepEtcdVolumes": keep_etcd_volumes,
        "nodePools": [pool["name"] for pool in registry.list_node_pools(name)],
        "resources": {k: v["id"] for k, v in resources.items() if isinstance(v, dict) and "id" in v},
    }


# ---------------------------------------------------------------- listing, cancelling, progress

NETWORK_TARGET = "network"  # the target of ProvisionNetwork / DeprovisionNetwork operations
_OPERATION_KEY = {"pk", "sk", "gsi1pk", "gsi1sk"}


def _bad_token() -> InvalidRequest:
    return InvalidRequest([("nextToken", "is not a token this API returned")])


def _encode_token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str, cluster: str | None) -> tuple[str, dict | None]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _bad_token() from None
    if not isinstance(state, dict) or not isinstance(state.get("t"), str):
        raise _bad_token()
    target, key = state["t"], state.get("k")
    if cluster is not None and target != cluster:
        raise _bad_token()
    if key is not None and not (
        isinstance(key, dict)
        and set(key) == _OPERATION_KEY
        and all(isinstance(v, str) for v in key.values())
        and key["gsi1pk"] == f"OPS#{target}"
        and key["pk"].startswith("OPERATION#")
    ):
        raise _bad_token()
    return target, key


def _operations_page(registry: Registry, target: str, limit: int, start: dict | None) -> tuple[list[dict], dict | None]:
    # Newest first, through the operations' `gsi1` entry (`OPS#<target>`, sorted by start time).
    # TODO(store): moves into the operations repository with the lead's kubestep/store/ split.
    kwargs: dict[str, Any] = {
        "IndexName": "gsi1",
        "KeyConditionExpression": Key("gsi1pk").eq(f"OPS#{target}"),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    page = registry.table.query(**kwargs)
    items = [{k: plain(v) for k, v in item.items() if k not in KEY_FIELDS} for item in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    return items, ({k: str(last[k]) for k in _OPERATION_KEY} if last else None)


def _targets_from(registry: Registry, first: str | None, include_first: bool) -> Iterator[str]:
    """The network, then every cluster by name: the targets whose operations a listing walks."""
    if first is None or first == NETWORK_TARGET:
        if first is None or include_first:
            yield NETWORK_TARGET
        start = None
    else:
        if include_first:
            yield first
        start = first
    while True:
        records, last = registry.list_clusters(limit=100, start=start)
        for record in records:
            yield record["name"]
        if not last:
            return
        start = last


def list_operations(
    registry: Registry, *, cluster: str | None = None, limit: int = 50, token: str | None = None
) -> tuple[list[dict], str | None]:
    """One page of operations, newest first per target. With `cluster`, that cluster's (also
    after it was deleted: operation records are kept 90 days); without, the network's and
    every existing cluster's, by cluster name. Returns (operation records, next token)."""
    resume_target, resume_key = _decode_token(token, cluster) if token else (None, None)
    if cluster is not None:
        targets: Iterator[str] = iter([cluster] if not token or resume_key else [])
    else:
        targets = _targets_from(registry, resume_target, include_first=resume_key is not None)
    found: list[dict] = []
    for target in targets:
        key = resume_key if target == resume_target else None
        while len(found) < limit:
            items, key = _operations_page(registry, target, limit - len(found), key)
            found += items
            if key is None:
                break
        if len(found) >= limit:
            return found, _encode_token({"t": target, "k": key})
    return found, None


def cancel(settings: Settings, registry: Registry, operation_id: str, caller: str | None = None) -> dict:
    """StopExecution of a running operation. The execution-status handler then records it
    ABORTED and releases its lock, as for any execution that ended without its own Catch."""
    operation = registry.get_operation(operation_id)
    if operation is None:
        raise NotFound(f"operation {operation_id!r} does not exist")
    status = operation.get("status", "RUNNING")
    if status != "RUNNING":
        raise OperationNotRunning(f"operation {operation_id!r} already ended {status}: nothing to cancel")
    sfn = client("stepfunctions", settings.region)
    try:
        sfn.stop_execution(
            executionArn=operation["executionArn"],
            error="OperationCancelled",
            cause=f"cancelled through the API by {caller or 'an anonymous caller'}"[:1000],
        )
    except Exception as exc:
        if is_error(exc, "ExecutionDoesNotExist"):
            raise OperationNotRunning(f"operation {operation_id!r} has no execution to stop") from None
        raise
    return operation


def steps(settings: Settings, operation: dict, after: int = 0) -> dict:
    """The operation's progress: the summary items after the first `after` (see
    `kubestep.execution_history`), and the time scale the durations were measured at."""
    items: list[dict] = []
    arn = operation.get("executionArn")
    if arn:
        try:
            items = summarize(history(client("stepfunctions", settings.region), arn))
        except Exception as exc:
            if not is_error(exc, "ExecutionDoesNotExist"):
                raise
    return {
        "operationId": operation["operationId"],
        "status": operation.get("status", "RUNNING"),
        "timeScale": settings.time_scale,
        "items": items[after:],
        "next": len(items),
    }
