"""etcd backups as the table holds them (docs/contracts.md, "etcd backups").

The policy (`ACCESS#<uid>` / `BACKUP`): what the management service tells the control plane
about backups, read by the replicas with the administrators item's grant: the bucket and the
cluster's prefix, the interval, the retention, and `requestedAt` when someone asked for a backup
now. The records (`BACKUPS#<uid>` / `BACKUP#<id>`): one per snapshot the leader uploaded, and
`LATEST`, a copy of the newest, written with the control-plane role, which may write no other
attribute (dynamodb:Attributes). Both are
per incarnation: a backup can only ever be restored into the cluster it was taken from.
"""

from __future__ import annotations

from boto3.dynamodb.conditions import Attr, Key

from kubestep.store import keys
from kubestep.store.records import Record
from kubestep.store.table import ConditionFailed, Table

# Every attribute the leader writes on a record (the control-plane role may write no other).
BACKUP_ATTRIBUTES = (
    "pk",
    "sk",
    "backupId",
    "takenAt",
    "revision",
    "size",
    "sha256",
    "kubernetesVersion",
    "objectKey",
    "instanceId",
    "replica",
)


class BackupPolicy(Record):
    bucket: str
    prefix: str
    interval_minutes: int
    retention_days: int
    requested_at: str | None = None
    updated_at: str | None = None


class BackupRecord(Record):
    backup_id: str
    taken_at: str
    revision: int
    size: int
    sha256: str
    kubernetes_version: str | None = None
    object_key: str
    instance_id: str | None = None
    replica: int | None = None


class RestoreRequest(Record):
    """What each replica of the incarnation restores at boot, before etcd starts: the snapshot
    (its object, its SHA-256) and the new cluster token the restored members form their new
    cluster with. Written by RestoreCluster while the control plane is stopped, deleted once
    every replica passed the health gate."""

    backup_id: str
    bucket: str
    object_key: str
    sha256: str
    revision: int
    cluster_token: str
    operation_id: str
    requested_at: str


class DeletedIncarnation(Record):
    """A deleted cluster incarnation whose backups were kept: its name's listing finds them here
    (the cluster record that mapped the name to the uid is gone). Written by DeleteCluster's last
    step, deleted with the incarnation's backups."""

    cluster_name: str
    uid: str
    created_at: str | None = None
    deleted_at: str
    deleted_by: str | None = None


class BackupRepository:
    def __init__(self, table: Table):
        self._table = table

    def policy(self, uid: str) -> BackupPolicy | None:
        return BackupPolicy.from_item(self._table.get(keys.cluster_access_pk(uid), keys.BACKUP_POLICY_SK))

    def publish_policy(self, uid: str, policy: BackupPolicy) -> bool:
        """Make the policy item say `policy` (a pending `requestedAt` is kept); True if it changed."""
        current = self.policy(uid)
        fields = policy.to_item()
        fields.pop("requestedAt", None)
        if current is not None and all(current.to_item().get(k) == v for k, v in fields.items() if k != "updatedAt"):
            return False
        self._table.update(keys.cluster_access_pk(uid), keys.BACKUP_POLICY_SK, fields, new_item=False)
        return True

    def request(self, uid: str, at: str) -> BackupPolicy:
        """Ask the leader for a backup now (its next report timer run takes it). Raises
        ConditionFailed when the cluster has no policy yet (it is still being created)."""
        item = self._table.update(
            keys.cluster_access_pk(uid),
            keys.BACKUP_POLICY_SK,
            {BackupPolicy.attribute("requested_at"): at},
            condition=Attr("pk").exists(),
        )
        policy = BackupPolicy.from_item(item)
        assert policy is not None
        return policy

    def put(self, uid: str, record: BackupRecord) -> None:
        """Record one uploaded snapshot, then point `LATEST` at it (what the next leader reads to
        know when the next is due). Both are plain puts: a retried run writes the same items."""
        pk = keys.backups_pk(uid)
        self._table.put({"pk": pk, "sk": keys.backup_sk(record.backup_id), **record.to_item()})
        self._table.put({"pk": pk, "sk": keys.LATEST_BACKUP_SK, **record.to_item()})

    def latest(self, uid: str) -> BackupRecord | None:
        return BackupRecord.from_item(self._table.get(keys.backups_pk(uid), keys.LATEST_BACKUP_SK))

    def get(self, uid: str, backup_id: str) -> BackupRecord | None:
        return BackupRecord.from_item(self._table.get(keys.backups_pk(uid), keys.backup_sk(backup_id)))

    def list(self, uid: str) -> list[BackupRecord]:
        """Newest first (ids are the snapshot's UTC time, so they sort by time)."""
        items = self._table.query_all(
            KeyConditionExpression=Key("pk").eq(keys.backups_pk(uid)) & Key("sk").begins_with(keys.BACKUP_PREFIX),
            ConsistentRead=True,
            ScanIndexForward=False,
        )
        found = (BackupRecord.from_item(i) for i in items)
        return [r for r in found if r is not None]

    def restore_request(self, uid: str) -> RestoreRequest | None:
        return RestoreRequest.from_item(self._table.get(keys.cluster_access_pk(uid), keys.RESTORE_REQUEST_SK))

    def put_restore_request(self, uid: str, request: RestoreRequest) -> RestoreRequest:
        """Record the restore unless one is recorded: a retried step keeps the first request's
        token (members must all form the same new cluster)."""
        self._table.put_new({"pk": keys.cluster_access_pk(uid), "sk": keys.RESTORE_REQUEST_SK, **request.to_item()})
        stored = self.restore_request(uid)
        assert stored is not None
        return stored

    def clear_restore_request(self, uid: str) -> bool:
        return self._table.delete(keys.cluster_access_pk(uid), keys.RESTORE_REQUEST_SK)

    def delete_all(self, uid: str) -> int:
        """The records and the policy of one incarnation (when its backups are deleted with it)."""
        records = self.list(uid)
        for record in records:
            self._table.delete(keys.backups_pk(uid), keys.backup_sk(record.backup_id))
        self._table.delete(keys.backups_pk(uid), keys.LATEST_BACKUP_SK)
        self._table.delete(keys.cluster_access_pk(uid), keys.BACKUP_POLICY_SK)
        self.clear_restore_request(uid)
        return len(records)

    def delete(self, uid: str, backup_id: str) -> int:
        """One backup's record (1 if it was there); `LATEST` goes too when it named it."""
        latest = self.latest(uid)
        if latest is not None and latest.backup_id == backup_id:
            self._table.delete(keys.backups_pk(uid), keys.LATEST_BACKUP_SK)
        existed = self.get(uid, backup_id) is not None
        self._table.delete(keys.backups_pk(uid), keys.backup_sk(backup_id))
        return 1 if existed else 0

    def record_deleted_incarnation(self, incarnation: DeletedIncarnation) -> None:
        """A plain put: a retried delete writes the same item."""
        pk = keys.incarnations_pk(incarnation.cluster_name)
        self._table.put({"pk": pk, "sk": keys.incarnation_sk(incarnation.uid), **incarnation.to_item()})

    def deleted_incarnations(self, cluster: str) -> list[DeletedIncarnation]:
        """The name's deleted incarnations that kept backups, the most recently deleted first."""
        items = self._table.query_all(
            KeyConditionExpression=Key("pk").eq(keys.incarnations_pk(cluster))
            & Key("sk").begins_with(keys.INCARNATION_PREFIX),
            ConsistentRead=True,
        )
        found = [r for r in (DeletedIncarnation.from_item(i) for i in items) if r is not None]
        return sorted(found, key=lambda r: r.deleted_at, reverse=True)

    def forget_incarnation(self, cluster: str, uid: str) -> bool:
        """Once its backups are deleted, the incarnation no longer shows in its name's listing."""
        return self._table.delete(keys.incarnations_pk(cluster), keys.incarnation_sk(uid))


__all__ = [
    "BACKUP_ATTRIBUTES",
    "BackupPolicy",
    "BackupRecord",
    "BackupRepository",
    "ConditionFailed",
    "DeletedIncarnation",
    "RestoreRequest",
]
