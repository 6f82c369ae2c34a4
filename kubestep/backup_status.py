"""What the API and the CLI show of a cluster's etcd backups, and asking for one now."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kubestep.backups import is_stale
from kubestep.errors import ClusterNotReady
from kubestep.models import dump
from kubestep.store import Store
from kubestep.store.backups import BackupRecord
from kubestep.store.records import ClusterRecord
from kubestep.store.table import ConditionFailed, iso, parse_iso


def listing(store: Store, record: ClusterRecord, now: datetime) -> dict[str, Any]:
    """A cluster's backups, newest first, with its policy; when they are late (the newest older
    than twice the interval, counted from the cluster's creation while there is none), a
    Warning event says so on the cluster (recorded once per reason and day: events count
    repeats)."""
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
        "interval": dump(record.spec.spec.backup)["interval"],
        "retention": dump(record.spec.spec.backup)["retention"],
        "requestedAt": policy.requested_at if policy else None,
        "late": late,
    }


def backup_view(backup: BackupRecord, uid: str, bucket: str | None) -> dict[str, Any]:
    return {
        "backupId": backup.backup_id,
        "takenAt": backup.taken_at,
        "revision": backup.revision,
        "size": backup.size,
        "sha256": backup.sha256,
        "kubernetesVersion": backup.kubernetes_version,
        "location": f"s3://{bucket or '?'}/{backup.object_key}",
        "uid": uid,
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
