"""`/v1/clusters/{name}/backups`: a cluster's etcd backups, and asking for one now;
`/v1/clusters/{name}/restore`: restoring its etcd from one of them (RestoreCluster)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import backup_status, operations
from kubestep.api import schemas
from kubestep.api.http import (
    BODY_ERRORS,
    PREFIX,
    ClusterName,
    DryRun,
    IdempotencyKey,
    JsonResponse,
    could_exist,
    deps,
    example,
    json_response,
    require_cluster,
    responses,
)
from kubestep.api.starts import start_operation
from kubestep.store import now

router = APIGatewayRouter()


@router.get(
    f"{PREFIX}/clusters/<name>/backups",
    operation_id="listBackups",
    summary="A cluster's etcd backups, newest first (also after it is deleted)",
    description="Each snapshot its etcd leader uploaded to the service's backup bucket (time, etcd revision, "
    "size, SHA-256, Kubernetes version, location, the cluster incarnation's `uid`), with the cluster's interval "
    "and retention. `late` is true when the newest is older than twice the interval; a Warning event "
    "(BackupsLate) then says so. Backups outlive their cluster unless deleted with it: once it is deleted they "
    "are listed under its name with `clusterDeleted: true`. While a cluster of the name exists, only its own "
    "are listed unless `allIncarnations=true` (the deleted incarnations' then follow, each item naming its "
    "`uid`); `earlierIncarnations` says which deleted incarnations left backups. 404 when there is neither a "
    "cluster of the name nor a deleted one that left backups.",
    responses=responses(200, schemas.BackupList, "The backups, newest first", 400, 404),
    tags=["clusters"],
)
def list_backups(
    name: ClusterName,
    all_incarnations: Annotated[
        bool,
        Query(
            alias="allIncarnations",
            description="With a cluster of the name: the backups of its deleted earlier incarnations too",
        ),
    ] = False,
) -> JsonResponse:
    _, store = deps(router)
    record = store.clusters.get(name) if could_exist(name) else None
    if record is None and not store.backups.deleted_incarnations(name):
        require_cluster(store, name)  # its NotFound says why (no such cluster, or one being created)
    listing = backup_status.listing(store, name, record, now(), all_incarnations=all_incarnations)
    return json_response(200, listing)


@router.post(
    f"{PREFIX}/clusters/<name>/backups",
    operation_id="backupCluster",
    summary="Take an etcd backup now",
    description="Asks the cluster's etcd leader for a snapshot: it takes it at its next report (within a "
    "minute) and it appears in `GET .../backups`. 409 `ClusterNotReady` while the cluster is still being created.",
    responses=responses(202, schemas.BackupRequested, "Asked for", 400, 404, 409),
    tags=["clusters"],
)
def backup_cluster(name: ClusterName) -> JsonResponse:
    _, store = deps(router)
    record = require_cluster(store, name)
    return json_response(202, backup_status.request_backup(store, record, now()))


BACKUP_DELETE_DESCRIPTION = (
    "Starts a `DeleteBackups` execution: every version of the backup objects of a deleted cluster "
    "incarnation (`uid`, as `GET .../backups` lists it with `clusterDeleted: true`) and their records are "
    "deleted for good. 400 naming `incarnation` for the existing cluster's uid (its backups go with it: "
    "`DELETE /v1/clusters/{name}?deleteBackups=true`); 404 naming the field when the name has no such deleted "
    "incarnation or backup."
)


@router.delete(
    f"{PREFIX}/clusters/<name>/backups/<uid>",
    operation_id="deleteIncarnationBackups",
    summary="Delete every etcd backup a deleted cluster incarnation left",
    description=BACKUP_DELETE_DESCRIPTION,
    responses=responses(202, schemas.Operation, "The DeleteBackups operation started", 400, 404),
    tags=["clusters"],
)
def delete_incarnation_backups(name: ClusterName, uid: str, idempotency_key: IdempotencyKey = None) -> JsonResponse:
    return _delete_backups(name, uid, None, idempotency_key)


@router.delete(
    f"{PREFIX}/clusters/<name>/backups/<uid>/<backup_id>",
    operation_id="deleteBackup",
    summary="Delete one etcd backup of a deleted cluster incarnation",
    description=BACKUP_DELETE_DESCRIPTION,
    responses=responses(202, schemas.Operation, "The DeleteBackups operation started", 400, 404),
    tags=["clusters"],
)
def delete_backup(name: ClusterName, uid: str, backup_id: str, idempotency_key: IdempotencyKey = None) -> JsonResponse:
    return _delete_backups(name, uid, backup_id, idempotency_key)


def _delete_backups(name: str, uid: str, backup_id: str | None, idempotency_key: str | None) -> JsonResponse:
    current, store = deps(router)
    path = f"{PREFIX}/clusters/{{name}}/backups/{{uid}}" + ("/{backupId}" if backup_id else "")
    return start_operation(
        router,
        route=f"DELETE {path}",
        key=idempotency_key,
        body={"name": name, "uid": uid, "backupId": backup_id},
        # No cluster of the name needs to exist: the incarnation is a deleted one.
        start=lambda: operations.start_delete_backups(current, store, name, uid, backup_id),
    )


@router.post(
    f"{PREFIX}/clusters/<name>/restore",
    operation_id="restoreCluster",
    summary="Restore a cluster's etcd from one of its backups",
    description="Starts a `RestoreCluster` execution (etcd's disaster recovery): the control plane stops (its "
    "etcd volumes kept), every replica restores the snapshot with a new cluster token before etcd starts, each "
    "passes the health gate, nodes launched after the snapshot are replaced. Everything written to the cluster "
    "since the snapshot is lost. The backup must be one of the cluster's current incarnation's (400 naming "
    "`backupId` otherwise); 409 while another operation works on the cluster. With `dryRun=true`: which "
    "replicas stop and which snapshot comes back; nothing changes.",
    responses={
        **responses(202, schemas.Operation, "The RestoreCluster operation started", *BODY_ERRORS, 404, 409),
        **responses(200, schemas.RestoreClusterDryRun, "dryRun=true: what the restore would do"),
    },
    tags=["clusters"],
)
def restore_cluster(
    name: ClusterName,
    body: Annotated[schemas.RestoreClusterBody, example("a backup", {"backupId": "20261205T101500Z"})],
    idempotency_key: IdempotencyKey = None,
    dry_run: DryRun = False,
) -> JsonResponse:
    current, store = deps(router)
    backup_id = body.backup_id
    if dry_run:
        require_cluster(store, name)
        return json_response(200, operations.plan_restore(current, store, name, backup_id))
    return start_operation(
        router,
        route=f"POST {PREFIX}/clusters/{{name}}/restore",
        key=idempotency_key,
        body={"name": name, "backupId": backup_id},
        cluster=name,
        start=lambda: operations.start_restore(current, store, name, backup_id),
    )
