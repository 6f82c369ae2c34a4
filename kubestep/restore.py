"""Restoring a cluster's etcd from one of its backups, following etcd's disaster-recovery
procedure: every member restores the same snapshot (`etcdutl snapshot restore`) with its stable
name and peer URL and a new cluster token, with the control plane stopped, then all start as a
new cluster.

The request checks are here, shared by the API (answered 400/409 at once, and its dry run) and
the workflow's first state. A backup belongs to one cluster incarnation (its uid): it is named
by its id (`20261205T101500Z`, one of this incarnation's) or as `<uid>/<id>` (what `kubestep
get backups` shows beside it), and a backup of another incarnation is refused, never restored
into this one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import Field

from kubestep import backup_status
from kubestep.errors import ClusterNotReady, InvalidRequest
from kubestep.models import Model, Name
from kubestep.store import Store
from kubestep.store.backups import BackupRecord, RestoreRequest
from kubestep.store.records import ClusterRecord
from kubestep.validation import parse, refuse_identity_fields

KIND = "RestoreCluster"
FIELD = "backupId"
# `<id>` or `<uid>/<id>`; an id is the snapshot's UTC time to the second.
BACKUP_REFERENCE = r"^(?:[a-z][a-z0-9]{0,39}/)?[0-9]{8}T[0-9]{6}Z$"
# What a replica's reports say of its boot-time restore (docs/contracts.md, "etcd backups"): the
# new cluster token it restored with and the backup, or why it could not restore.
RESTORED_TOKEN = "etcdClusterToken"
RESTORED_BACKUP = "restoredBackup"
RESTORE_ERROR = "restoreError"
# A restore stops the whole control plane: it is for a cluster that ran, healthy or not.
RESTORABLE_PHASES = ("RUNNING", "DEGRADED")


class RestoreClusterRequest(Model):
    """`RestoreCluster` execution input (and the API's body with the name from the path)."""

    cluster_name: Name = Field(alias="clusterName")
    backup_id: str = Field(alias="backupId", pattern=BACKUP_REFERENCE, max_length=60)


def parse_restore_request(data: object) -> RestoreClusterRequest:
    refuse_identity_fields(data)
    return parse(RestoreClusterRequest, data)


def split_reference(reference: str) -> tuple[str | None, str]:
    """(`uid` or None, backup id) of `<id>` or `<uid>/<id>`."""
    uid, _, backup_id = reference.rpartition("/")
    return uid or None, backup_id


def resolve_backup(store: Store, record: ClusterRecord, reference: str) -> BackupRecord:
    """The backup `reference` names, which must be one of this incarnation's: refused (naming
    `backupId`) when it names another incarnation's, or this incarnation has no such backup."""
    uid, backup_id = split_reference(reference)
    if uid is not None and uid != record.uid:
        raise InvalidRequest(
            [
                (
                    FIELD,
                    f"backup {reference} was taken by another cluster incarnation (uid {uid}), not by cluster "
                    f"{record.name!r} (uid {record.uid}): a backup restores only into the cluster it was taken from",
                )
            ]
        )
    backup = store.backups.get(record.uid, backup_id)
    if backup is None:
        raise InvalidRequest(
            [
                (
                    FIELD,
                    f"cluster {record.name!r} (uid {record.uid}) has no backup {backup_id} "
                    f"(`kubestep get backups {record.name}` lists them)",
                )
            ]
        )
    return backup


def require_restorable(record: ClusterRecord) -> None:
    if record.phase not in RESTORABLE_PHASES:
        raise ClusterNotReady(
            f"cluster {record.name!r} is {record.phase}: a restore needs a cluster that ran "
            f"({' or '.join(RESTORABLE_PHASES)})"
        )


def cluster_token(uid: str, operation_id: str) -> str:
    """The new `--initial-cluster-token` of the restored members: its own per restore, so a
    member that missed the restore cannot join the new cluster; derived from the operation so a
    retried step writes the same one."""
    return f"gke-{uid}-etcd-{hashlib.sha256(operation_id.encode()).hexdigest()[:12]}"


def restore_request(backup: BackupRecord, bucket: str, uid: str, operation_id: str, at: str) -> RestoreRequest:
    return RestoreRequest(
        backup_id=backup.backup_id,
        bucket=bucket,
        object_key=backup.object_key,
        sha256=backup.sha256,
        revision=backup.revision,
        cluster_token=cluster_token(uid, operation_id),
        operation_id=operation_id,
        requested_at=at,
    )


def launched_after(launch_time: datetime, taken_at: datetime) -> bool:
    """A node launched after the snapshot registered its Node object after it: the restored etcd
    does not have it, and a kubelet registers its Node only when it starts."""
    return launch_time > taken_at


def plan(store: Store, record: ClusterRecord, backup: BackupRecord) -> dict[str, Any]:
    """What a restore of `backup` would do (the dry run), from the records: nothing is changed."""
    policy = store.backups.policy(record.uid)
    members = store.etcd.members(record.name)
    pools = sorted(pool.name for pool in store.node_pools.list(record.name))
    return {
        "dryRun": True,
        "kind": KIND,
        "target": record.name,
        "uid": record.uid,
        "backup": backup_status.backup_view(backup, record.uid, policy.bucket if policy else None),
        "replicas": [
            {
                "replica": member.index,
                "autoScalingGroup": member.asg_name,
                "instanceId": member.instance_id,
                "etcdVolume": member.volume_id,
                "action": "stopped (its group scaled to 0), started again; restores the snapshot on its kept "
                "etcd volume before etcd starts",
            }
            for member in members
        ],
        "clusterToken": "a new one, minted when the restore starts",
        "nodePools": pools,
        "nodes": f"nodes launched after the snapshot ({backup.taken_at}) are replaced: their Node objects are "
        "not in it; the others keep running",
        "message": f"the control plane stops (the API is unavailable until every replica passed the health gate); "
        f"etcd comes back as it was at {backup.taken_at} (revision {backup.revision}): everything written since "
        "is lost",
    }
