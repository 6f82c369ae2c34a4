"""Starting workflows on behalf of the API (and anything else that is not the console):
validate, reserve the cluster's lock under the operation id, write the operation record (the
execution's identity: kind, target, uid, execution ARN), then start the execution with that id
as its name. The execution's AcquireLock finds its own record and the lock already held by its
operation id: the reservation and the lock are one. The input carries no identity."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any

from kubestep import cluster_admins, naming
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.errors import AlreadyExists, InvalidRequest, InvalidSpec, LockHeld, NotFound, OperationNotRunning
from kubestep.execution_history import history, progress, summarize
from kubestep.models import CreateClusterRequest, dump
from kubestep.settings import Settings
from kubestep.store import Operation, Store, keys
from kubestep.store.locks import abandoned
from kubestep.validation import ADMINS_FIELD, parse_create_request, parse_delete_request
from kubestep.workflows import lifecycle_steps
from kubestep.workflows.cluster_steps import check_references
from kubestep.workflows.identity import execution_running
from kubestep.workflows.starts import Checks, execution_arn, run_execution, start_execution, start_on_cluster
from kubestep.workflows.starts import start_update_cluster as start_update_cluster


def operation_view(operation: Operation, base_path: str = "/v1") -> dict:
    status = operation.status
    if status == "RUNNING" and operation.compensating:
        status = "ROLLING_BACK"
    elif status == "RUNNING" and operation.cancel_requested:
        status = "CANCELLING"
    return {
        "id": operation.operation_id,
        "kind": operation.kind,
        "target": operation.target,
        "nodePool": operation.parameters.get("nodePool"),
        # The incarnation of the target it worked on: a cluster deleted and created again
        # under the same name has another uid.
        "uid": operation.uid,
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


def with_creator_as_admin(body: Any, caller: str | None) -> Any:
    """A create through the API whose cluster names no administrators gets its caller (as EKS
    makes a cluster's creator its administrator): the API knows who signed the request, an
    execution's input proves nothing. A caller that cannot be mapped is refused naming the field."""
    cluster = body.get("cluster") if isinstance(body, dict) else None
    spec = cluster.get("spec") if isinstance(cluster, dict) else None
    if not isinstance(spec, dict):
        return body  # validation names what is missing
    auth = spec.get("authentication") if isinstance(spec.get("authentication"), dict) else {}
    aws_iam = auth.get("awsIAM") if isinstance(auth.get("awsIAM"), dict) else {}
    if aws_iam.get("adminIdentityARNs"):
        return body
    try:
        admin = cluster_admins.caller_admin(caller)
    except cluster_admins.NotAnAdminIdentity as exc:
        raise InvalidSpec([(ADMINS_FIELD, f"{exc}: name the cluster's administrators")]) from None
    spec = {**spec, "authentication": {**auth, "awsIAM": {**aws_iam, "adminIdentityARNs": [admin]}}}
    return {**body, "cluster": {**cluster, "spec": spec}}


def checked_create(settings: Settings, store: Store, body: Any, caller: str | None) -> CreateClusterRequest:
    """A create's request after every check it passes before it starts (the same for a dry
    run): its manifests, its name free, the network ready, what it references usable."""
    request = parse_create_request(settings.service, with_creator_as_admin(body, caller))
    name = request.cluster.name
    if store.clusters.get(name) is not None:
        raise AlreadyExists(f"cluster {name!r} already exists")
    network = store.network.ready(settings.service_name)
    check_references(settings, network, request)
    return request


def start_create(settings: Settings, store: Store, body: Any, caller: str | None = None) -> Operation:
    request = checked_create(settings, store, body, caller)
    name = request.cluster.name
    uid = naming.new_uid()
    operation_id = naming.execution_name("create", uid, 1)
    return start_execution(
        settings,
        store,
        workflow="CreateCluster",
        cluster=name,
        operation_id=operation_id,
        execution_input=request.model_dump(mode="json", by_alias=True, exclude_none=True),
        uid=uid,
        parameters={"caller": caller} if caller else None,
    )


def start_delete(
    settings: Settings, store: Store, name: str, keep_etcd_volumes: bool = False, delete_backups: bool = False
) -> Operation:
    request = parse_delete_request(
        {"clusterName": name, "keepEtcdVolumes": keep_etcd_volumes, "deleteBackups": delete_backups}
    )
    # A delete may be retried after a failure: each attempt is its own execution.
    return start_on_cluster(
        settings, store, workflow="DeleteCluster", prefix="delete", cluster=name, execution_input=dump(request)
    )


# ---------------------------------------------------------------- lifecycle


def _start_on_node_pool(settings: Settings, store: Store, workflow: str, request: Any, pool: str) -> Operation:
    return start_on_cluster(
        settings,
        store,
        workflow=workflow,
        prefix="nodepool",
        cluster=request.cluster_name,
        execution_input=dump(request),
        parameters={"nodePool": pool},
    )


def start_create_node_pool(settings: Settings, store: Store, body: Any) -> Operation:
    request = lifecycle_steps.parse_create_node_pool(Checks(settings, store), body)
    return _start_on_node_pool(settings, store, "CreateNodePool", request, request.node_pool.name)


def start_update_node_pool(settings: Settings, store: Store, body: Any) -> Operation:
    request, _plan = lifecycle_steps.plan_node_pool_update(Checks(settings, store), body)
    return _start_on_node_pool(settings, store, "UpdateNodePool", request, request.node_pool)


def start_delete_node_pool(settings: Settings, store: Store, body: Any) -> Operation:
    request = lifecycle_steps.parse_delete_node_pool(Checks(settings, store), body)
    return _start_on_node_pool(settings, store, "DeleteNodePool", request, request.node_pool)


def plan_node_pool_create(settings: Settings, store: Store, body: Any) -> dict:
    request = lifecycle_steps.parse_create_node_pool(Checks(settings, store), body)
    _lock_free(settings, store, request.cluster_name)
    return {
        "dryRun": True,
        "kind": "CreateNodePool",
        "target": request.cluster_name,
        "nodePool": dump(request.node_pool),
    }


def plan_node_pool_update(settings: Settings, store: Store, body: Any) -> dict:
    request, plan = lifecycle_steps.plan_node_pool_update(Checks(settings, store), body)
    _lock_free(settings, store, request.cluster_name)
    return {
        "dryRun": True,
        "kind": "UpdateNodePool",
        "target": request.cluster_name,
        "nodePool": request.node_pool,
        "rolls": plan.rolls,
        "changes": [change.line() for change in plan.changes],
        "spec": dump(plan.target.spec),
    }


def plan_node_pool_delete(settings: Settings, store: Store, body: Any) -> dict:
    request = lifecycle_steps.parse_delete_node_pool(Checks(settings, store), body)
    _lock_free(settings, store, request.cluster_name)
    return {"dryRun": True, "kind": "DeleteNodePool", "target": request.cluster_name, "nodePool": request.node_pool}


def plan_cluster_update_rules(settings: Settings, store: Store, body: Any) -> None:
    """The update's rules now (a one-off schedule checks them again when it fires)."""
    lifecycle_steps.plan_cluster_update(Checks(settings, store), body)


def plan_cluster_update(settings: Settings, store: Store, body: Any) -> dict:
    request, plan = lifecycle_steps.plan_cluster_update(Checks(settings, store), body)
    _lock_free(settings, store, request.cluster_name)
    return {
        "dryRun": True,
        "kind": "UpdateCluster",
        "target": request.cluster_name,
        "rolls": plan.rolls,
        "version": plan.target.spec.control_plane.version,
        "changes": [change.line() for change in plan.changes],
        "nodePools": plan.node_pools,
    }


# ---------------------------------------------------------------- dry runs
# Every check the start would make, in the same order, and nothing started: what
# `?dryRun=true` answers (and `kubestep apply --dry-run` shows).


def _lock_free(settings: Settings, store: Store, target: str) -> None:
    holder = store.locks.get(target)
    # The same judgement `locks.acquire` makes before taking a lock over.
    if holder and not abandoned(holder, execution_running(settings)):
        raise LockHeld(f"cluster {target}", holder.to_item())


def plan_create(settings: Settings, store: Store, body: Any, caller: str | None = None) -> dict:
    request = checked_create(settings, store, body, caller)
    name = request.cluster.name
    _lock_free(settings, store, name)
    return {
        "dryRun": True,
        "kind": "CreateCluster",
        "target": name,
        "cluster": dump(request.cluster),
        "nodePools": [dump(pool) for pool in request.node_pools],
        "rollbackOnFailure": request.rollback_on_failure,
    }


def plan_delete(
    settings: Settings, store: Store, name: str, keep_etcd_volumes: bool = False, delete_backups: bool = False
) -> dict:
    parse_delete_request({"clusterName": name, "keepEtcdVolumes": keep_etcd_volumes, "deleteBackups": delete_backups})
    record = store.clusters.get(name)
    if record is None:
        raise NotFound(f"cluster {name!r} does not exist")
    _lock_free(settings, store, name)
    return {
        "dryRun": True,
        "kind": "DeleteCluster",
        "target": name,
        "uid": record.uid,
        "keepEtcdVolumes": keep_etcd_volumes,
        "deleteBackups": delete_backups,
        "backups": len(store.backups.list(record.uid)),
        "nodePools": [pool.name for pool in store.node_pools.list(name)],
        "resources": {logical: ref.id for logical, ref in record.resources.items()},
    }


# ---------------------------------------------------------------- listing, cancelling, progress

_OPERATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _bad_token() -> InvalidRequest:
    return InvalidRequest([("nextToken", "is not a token this API returned")])


def encode_token(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The store's position (`<startedAt>|<operation id>`) from a token the API handed out."""
    try:
        position = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _bad_token() from None
    started_at, separator, operation_id = position.partition("|")
    if not separator or not 0 < len(started_at) <= 40 or not _OPERATION_ID.match(operation_id):
        raise _bad_token()
    return position


def list_operations(
    store: Store, *, cluster: str | None = None, limit: int = 50, token: str | None = None
) -> tuple[list[Operation], str | None]:
    """One page of operations, newest first: every target's, or one cluster's (also after it
    was deleted: operation records are kept 90 days). Returns (operations, next token)."""
    start = decode_token(token) if token else None
    if cluster is not None:
        # "network" and "orphans" are not cluster names (refused at create): the service's own.
        found, position = store.operations.for_target(keys.target_named(cluster), limit, start)
    else:
        found, position = store.operations.all(limit, start)
    return found, encode_token(position) if position else None


# Workflows that compensate what they created: a cancel stops them at their next step, they
# delete what their own operation made and end ABORTED (StopExecution would skip all that).
COOPERATIVE_CANCEL = ("CreateCluster", "CreateNodePool")


def cancel(settings: Settings, store: Store, operation_id: str, caller: str | None = None) -> Operation:
    """Cancel a running operation. A create is asked to stop (`cancelRequested`): its next step
    raises OperationCancelled, its Catch compensates what this operation created, it releases the
    lock and ends ABORTED, and a cancelled create forgets the cluster so the name is free again.
    Anything else is stopped (StopExecution); the execution-status handler then records it
    ABORTED and releases its lock, as for any execution that ended without its own Catch."""
    operation = store.operations.get(operation_id)
    if operation is None:
        raise NotFound(f"operation {operation_id!r} does not exist")
    if operation.status != "RUNNING" or not operation.execution_arn:
        raise OperationNotRunning(f"operation {operation_id!r} already ended {operation.status}: nothing to cancel")
    who = f"cancelled through the API by {caller or 'an anonymous caller'}"[:1000]
    if operation.kind in COOPERATIVE_CANCEL:
        if operation.compensating:
            raise OperationNotRunning(f"operation {operation_id!r} is already rolling back: it ends on its own")
        return store.operations.set(operation_id, cancel_requested=True, cause=who) or operation
    sfn = client("stepfunctions", settings.region)
    try:
        sfn.stop_execution(executionArn=operation.execution_arn, error="OperationCancelled", cause=who)
    except Exception as exc:
        if is_not_found(exc, Kind.EXECUTION):
            raise OperationNotRunning(f"operation {operation_id!r} has no execution to stop") from None
        raise
    return operation


def steps(settings: Settings, operation: Operation, after: int = 0) -> dict:
    """The operation's progress: the summary items after the first `after` (see
    `kubestep.execution_history`), where it is now (its Map iterations and running steps,
    recomputed on every call), and the time scale the durations were measured at."""
    events: list[dict] = []
    if operation.execution_arn:
        try:
            events = history(client("stepfunctions", settings.region), operation.execution_arn)
        except Exception as exc:
            if not is_not_found(exc, Kind.EXECUTION):
                raise
    items = summarize(events)
    return {
        "operationId": operation.operation_id,
        "status": operation.status,
        "timeScale": settings.time_scale,
        "items": items[after:],
        "next": len(items),
        **progress(events),
    }


# ---------------------------------------------------------------- repair, sweep


def start_repair(settings: Settings, store: Store, name: str, detect_only: bool = False) -> Operation:
    """RepairCluster: refused (LockHeld) while another operation works on the cluster."""
    from kubestep.workflows.repair_steps import KIND, parse_repair_request

    request = parse_repair_request({"clusterName": name, "detectOnly": detect_only})
    return start_on_cluster(
        settings,
        store,
        workflow=KIND,
        prefix="repair",
        cluster=name,
        execution_input=request.model_dump(mode="json", by_alias=True),
    )


def checked_restore(settings: Settings, store: Store, name: str, backup_id: str) -> tuple[Any, Any, Any]:
    """A restore's request, cluster record and backup after every check the start makes: the
    request's fields, the cluster, no other operation on it (LockHeld), its phase, and the
    backup being one of its current incarnation's."""
    from kubestep import restore

    request = restore.parse_restore_request({"clusterName": name, "backupId": backup_id})
    record = store.clusters.get(name)
    if record is None:
        raise NotFound(f"cluster {name!r} does not exist")
    _lock_free(settings, store, name)
    restore.require_restorable(record)
    return request, record, restore.resolve_backup(store, record, request.backup_id)


def plan_restore(settings: Settings, store: Store, name: str, backup_id: str) -> dict:
    """The dry run of a restore: what would stop, which snapshot comes back; nothing starts."""
    from kubestep import restore

    _, record, backup = checked_restore(settings, store, name, backup_id)
    return restore.plan(store, record, backup)


def start_restore(settings: Settings, store: Store, name: str, backup_id: str) -> Operation:
    """RestoreCluster of one of the cluster's own backups; refused (LockHeld) while another
    operation works on the cluster."""
    from kubestep import restore

    request, _, backup = checked_restore(settings, store, name, backup_id)
    return start_on_cluster(
        settings,
        store,
        workflow=restore.KIND,
        prefix="restore",
        cluster=name,
        execution_input=request.model_dump(mode="json", by_alias=True),
        parameters={"backupId": backup.backup_id},
    )


def start_delete_backups(settings: Settings, store: Store, name: str, uid: str, backup_id: str | None) -> Operation:
    """DeleteBackups of a deleted incarnation's backups (one, or every one), after the checks its
    first state makes. No lock: the cluster is gone and every step is idempotent."""
    from kubestep import backup_deletion

    body = {"clusterName": name, "incarnation": uid, **({"backupId": backup_id} if backup_id else {})}
    request = backup_deletion.parse_delete_backups_request(body)
    backup_deletion.check_deletable(store, request)
    operation_id = naming.execution_name("backups", uid, 0, secrets.token_hex(3))
    arn = execution_arn(settings, backup_deletion.KIND, operation_id)
    operation, _ = store.operations.create(
        Operation(
            operation_id=operation_id,
            kind=backup_deletion.KIND,
            target=name,
            execution_arn=arn,
            uid=uid,
            parameters={"backupId": backup_id} if backup_id else {},
        )
    )
    execution_input = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    return run_execution(settings, store, operation, execution_input, locked=False)


def start_sweep(settings: Settings, store: Store, body: Any) -> Operation:
    """SweepOrphans (a dry run unless `dryRun` is false). No lock: every step it runs is idempotent."""
    from kubestep.workflows.sweep_steps import KIND, TARGET, parse_sweep_request

    request = parse_sweep_request(body)
    operation_id = f"sweep-{secrets.token_hex(6)}"
    arn = execution_arn(settings, KIND, operation_id)
    operation, _ = store.operations.create(
        Operation(operation_id=operation_id, kind=KIND, target=TARGET, execution_arn=arn, uid=naming.new_uid())
    )
    return run_execution(settings, store, operation, request.model_dump(mode="json", by_alias=True), locked=False)
