"""What the API and the CLI show of a cluster's etcd backups, and asking for one now."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kubestep.backups import is_stale
from kubestep.errors import ClusterNotReady, NotFound
from kubestep.models import dump
from kubestep.store import Store
from kubestep.store.backups import BackupRecord, DeletedIncarnation
from kubestep.store.records import ClusterRecord
from kubestep.store.table import ConditionFailed, iso, parse_iso


def listing(
    store: Store, name: str, record: ClusterRecord | None, now: datetime, *, all_incarnations: bool = False
) -> dict[str, Any]:
    """The backups of cluster `name`, newest first, each with the incarnation (uid) it belongs
    to and whether that incarnation is deleted. While a cluster of the name exists (`record`):
    its own, and the deleted incarnations' only with `all_incarnations` (after its own: never
    mixed in silently; `earlierIncarnations` says they exist either way). With none: every
    deleted incarnation's. NotFound when there is neither."""
    deleted = store.backups.deleted_incarnations(name)
    if record is None and not deleted:
        raise NotFound(f"cluster {name!r} does not exist, and no deleted cluster of that name left backups")
    current = _current(store, record, now) if record is not None else {"items": [], "late": False}
    bucket = _bucket(store, record)
    earlier = [_deleted_items(store, incarnation, bucket) for incarnation in deleted]
    shown = record is None or all_incarnations
    return {
        **current,
        "items": current["items"] + ([item for items in earlier for item in items] if shown else []),
        "earlierIncarnations": [
            {
                "uid": incarnation.uid,
                "createdAt": incarnation.created_at,
                "deletedAt": incarnation.deleted_at,
                "backups": len(items),
                "listed": shown,
            }
            for incarnation, items in zip(deleted, earlier, strict=True)
        ],
    }


def _bucket(store: Store, record: ClusterRecord | None) -> str | None:
    policy = store.backups.policy(record.uid) if record is not None else None
    return policy.bucket if policy else None


def _deleted_items(store: Store, incarnation: DeletedIncarnation, bucket: str | None) -> list[dict[str, Any]]:
    policy = store.backups.policy(incarnation.uid)
    where = policy.bucket if policy else bucket
    return [
        backup_view(b, incarnation.uid, where, deleted_at=incarnation.deleted_at)
        for b in store.backups.list(incarnation.uid)
    ]


def _current(store: Store, record: ClusterRecord, now: datetime) -> dict[str, Any]:
    """The live incarnation's backups with its policy; when they are late (the newest older than
    twice the interval, counted from the cluster's creation while there is none), a Warning
    event says so on the cluster (recorded once per reason and day: events count repeats)."""
    uid = record.uid
    found = store.backups.list(uid)
    policy = store.backups.policy(uid)
    spec = record.spec.spec.backup
    interval = timedelta(minutes=spec.interval_minutes)
    newest = parse_iso(found[0].taken_at) if found else None
    late = record.phase == "RUNNING" and is_stale(interval, newest, parse_iso(record.created_at or iso(now)), now)
    if late:
        since = f"the newest is from {found[0].taken_at}" if found else "none was taken yet"
        store.events.record(
            record.name,
            "Warning",
            "BackupsLate",
            f"no etcd backup in twice the interval ({spec.interval_minutes} minutes): {since}; "
            "is the control plane healthy?",
            f"AWSCluster/{record.name}",
            uid=uid,
        )
    return {
        "items": [backup_view(b, uid, policy.bucket if policy else None) for b in found],
        "uid": uid,
        "interval": dump(record.spec.spec.backup)["interval"],
        "retention": dump(record.spec.spec.backup)["retention"],
        "requestedAt": policy.requested_at if policy else None,
        "late": late,
    }


def backup_view(backup: BackupRecord, uid: str, bucket: str | None, *, deleted_at: str | None = None) -> dict[str, Any]:
    return {
        "backupId": backup.backup_id,
        "takenAt": backup.taken_at,
        "revision": backup.revision,
        "size": backup.size,
        "sha256": backup.sha256,
        "kubernetesVersion": backup.kubernetes_version,
        "location": f"s3://{bucket or '?'}/{backup.object_key}",
        "uid": uid,
        "clusterDeleted": deleted_at is not None,
        "clusterDeletedAt": deleted_at,
    }


def request_backup(store: Store, record: ClusterRecord, now: datetime) -> dict[str, Any]:
    """Ask the cluster's etcd leader for a backup now: it takes one at its next report (within a
    minute). Refused while the cluster has no policy item (it is still being created)."""
    try:
        policy = store.backups.request(record.uid, iso(now))
    except ConditionFailed:
        raise ClusterNotReady(
            f"cluster {record.name!r} has no backup policy yet (it is {record.phase}); ask again once it is RUNNING"
        ) from None
    return {
        "cluster": record.name,
        "uid": record.uid,
        "requestedAt": policy.requested_at,
        "message": f"the etcd leader uploads it to s3://{policy.bucket}/{policy.prefix} within a minute "
        f"(`kubestep get backups {record.name}`)",
    }
