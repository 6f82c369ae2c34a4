"""etcd backups: where a cluster's snapshots live in the service's backup bucket, and how long
they stay.

Every object of a cluster is under `backups/<uid>/`, the prefix its control-plane role may
write (kubestep/iam_policies.py): an incarnation's snapshots never mix with another's, and a
cluster recreated under the same name starts a new prefix. S3 itself expires them: each object
carries its retention in days as a tag, and the bucket has one lifecycle rule per allowed
value (infra/backups.py), so nothing with delete rights runs on the instances.
"""

from __future__ import annotations

from datetime import datetime, timedelta

PREFIX = "backups"
# The object tag the lifecycle rules filter on.
RETENTION_TAG = "kubestep-retention-days"
# The retentions a manifest may choose: one lifecycle rule each (S3 allows 1,000 rules).
RETENTION_DAYS = (1, 3, 7, 14, 30, 90, 365)
DEFAULT_RETENTION_DAYS = 7
DEFAULT_INTERVAL_MINUTES = 30
# An object tagged with no allowed value still expires: S3 applies the shortest expiration of
# the rules an object matches, so this catch-all only acts on what no other rule does.
LONGEST_RETENTION_DAYS = max(RETENTION_DAYS)
# Deleted or overwritten versions (the bucket is versioned) go after this many days.
NONCURRENT_DAYS = 1


def cluster_prefix(uid: str) -> str:
    """`backups/<uid>/`: one incarnation's objects."""
    return f"{PREFIX}/{uid}/"


def object_key(uid: str, backup_id: str) -> str:
    return f"{cluster_prefix(uid)}{backup_id}.db"


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def backup_id(taken_at: datetime) -> str:
    """A snapshot's id: its UTC time to the second (`20261205T101500Z`), so ids sort by time."""
    return taken_at.strftime("%Y%m%dT%H%M%SZ")


def is_due(interval: timedelta, newest_taken_at: datetime | None, requested_at: datetime | None, now: datetime) -> bool:
    """The leader takes a snapshot when none exists, the newest is an interval old, or someone
    asked for one after the newest was taken."""
    if newest_taken_at is None:
        return True
    if requested_at is not None and requested_at > newest_taken_at:
        return True
    return now - newest_taken_at >= interval


def is_stale(interval: timedelta, newest_taken_at: datetime | None, since: datetime, now: datetime) -> bool:
    """Backups are late when the newest (or, with none, the cluster's start `since`) is older
    than twice the interval: one run may be missed, two in a row may not."""
    return now - (newest_taken_at or since) > 2 * interval
