"""`/v1/clusters/{name}/backups`: a cluster's etcd backups, and asking for one now."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import backup_status
from kubestep.api import schemas
from kubestep.api.http import PREFIX, ClusterName, JsonResponse, deps, json_response, require_cluster, responses
from kubestep.store import now

router = APIGatewayRouter()


@router.get(
    f"{PREFIX}/clusters/<name>/backups",
    operation_id="listBackups",
    summary="A cluster's etcd backups, newest first",
    description="Each snapshot its etcd leader uploaded to the service's backup bucket (time, etcd revision, "
    "size, SHA-256, Kubernetes version, location), with the cluster's interval and retention. `late` is true "
    "when the newest is older than twice the interval; a Warning event (BackupsLate) then says so.",
    responses=responses(200, schemas.BackupList, "The backups, newest first", 400, 404),
    tags=["clusters"],
)
def list_backups(name: ClusterName) -> JsonResponse:
    _, store = deps(router)
    record = require_cluster(store, name)
    return json_response(200, backup_status.listing(store, record, now()))


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
