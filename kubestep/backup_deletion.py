"""Deleting etcd backups for good: every version of their objects (the bucket is versioned, so a
plain delete would only hide them behind a delete marker until the noncurrent versions expire),
then their records. Only ever one incarnation's prefix (`backups/<uid>/`), and only on request:
backups otherwise outlive their cluster until S3 expires them.

Each function is idempotent: a retried call lists what is left and deletes that."""

from __future__ import annotations

from typing import Any

from kubestep import backups
from kubestep.store import Store
from kubestep.store.backups import DeletedIncarnation

# DeleteObjects takes at most 1,000 keys per request (S3 API Reference, DeleteObjects).
DELETE_BATCH = 1000


class BackupDeletionFailed(RuntimeError):
    """S3 refused to delete some versions (DeleteObjects answers per key, with HTTP 200)."""


def delete_object_versions(s3: Any, bucket: str, prefix: str) -> int:
    """Every version and delete marker under `prefix`, which must be one incarnation's; the count."""
    if not prefix.startswith(f"{backups.PREFIX}/") or prefix.count("/") != 2 or not prefix.endswith("/"):
        raise ValueError(f"refusing to delete outside one incarnation's backups prefix: {prefix!r}")
    found: list[dict[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in (*page.get("Versions", []), *page.get("DeleteMarkers", [])):
            found.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
    return _delete(s3, bucket, found)


def _delete(s3: Any, bucket: str, versions: list[dict[str, str]]) -> int:
    for start in range(0, len(versions), DELETE_BATCH):
        batch = versions[start : start + DELETE_BATCH]
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise BackupDeletionFailed(
                f"S3 did not delete {len(errors)} backup object version(s), e.g. {first.get('Key')} "
                f"({first.get('Code')}: {first.get('Message')})"
            )
    return len(versions)


def delete_incarnation_backups(s3: Any, store: Store, bucket: str | None, cluster: str, uid: str) -> dict[str, int]:
    """One incarnation's objects, then its records and policy, then its entry among the name's
    deleted incarnations: the records go only once the objects are gone, so a failure half-way
    leaves them listed and a retry finishes."""
    objects = delete_object_versions(s3, bucket, backups.cluster_prefix(uid)) if bucket else 0
    records = store.backups.delete_all(uid)
    store.backups.forget_incarnation(cluster, uid)
    return {"objectVersions": objects, "records": records}


def keep_with_deleted_cluster(
    store: Store, cluster: str, uid: str, created_at: str | None, deleted_at: str, operation_id: str
) -> bool:
    """Keep an incarnation's backups findable by its name once the cluster record is gone; True
    if it has any (an incarnation that took none leaves nothing behind)."""
    if not store.backups.list(uid):
        return False
    store.backups.record_deleted_incarnation(
        DeletedIncarnation(
            cluster_name=cluster, uid=uid, created_at=created_at, deleted_at=deleted_at, deleted_by=operation_id
        )
    )
    return True
