"""Deleting etcd backups for good: every version of their objects (the bucket is versioned, so a
plain delete would only hide them behind a delete marker until the noncurrent versions expire),
then their records. Only ever one incarnation's prefix (`backups/<uid>/`), and only on request:
backups otherwise outlive their cluster until S3 expires them. Asked for with the cluster's
delete (`deleteBackups`), or later for a deleted incarnation (`DeleteBackups`: every backup of
the incarnation, or one): an existing cluster's backups go only with it, so that a restore never
finds its backup deleted under it.

Each function is idempotent: a retried call lists what is left and deletes that."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from kubestep import backups
from kubestep.errors import InvalidSpec, NotFound
from kubestep.models import Model, Name
from kubestep.store import Store
from kubestep.store.backups import DeletedIncarnation
from kubestep.validation import parse, refuse_identity_fields

KIND = "DeleteBackups"
# A cluster incarnation's uid, and a backup's id (its UTC time to the second).
UID = r"[a-z][a-z0-9]{0,39}"
INCARNATION_PATTERN = f"^{UID}$"
BACKUP_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"

# DeleteObjects takes at most 1,000 keys per request (S3 API Reference, DeleteObjects).
DELETE_BATCH = 1000


class BackupDeletionFailed(RuntimeError):
    """S3 refused to delete some versions (DeleteObjects answers per key, with HTTP 200)."""


def delete_object_versions(s3: Any, bucket: str, prefix: str) -> int:
    """Every version and delete marker under `prefix`, which must be one incarnation's; the count."""
    if not re.fullmatch(f"{backups.PREFIX}/{UID}/", prefix):
        raise ValueError(f"refusing to delete outside one incarnation's backups prefix: {prefix!r}")
    found: list[dict[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in (*page.get("Versions", []), *page.get("DeleteMarkers", [])):
            found.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
    return _delete(s3, bucket, found)


def delete_object_key_versions(s3: Any, bucket: str, key: str) -> int:
    """Every version and delete marker of one object (ListObjectVersions matches by prefix: the
    other keys it lists are left alone)."""
    found: list[dict[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for entry in (*page.get("Versions", []), *page.get("DeleteMarkers", [])):
            if entry["Key"] == key:
                found.append({"Key": key, "VersionId": entry["VersionId"]})
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


class DeleteBackupsRequest(Model):
    """`DeleteBackups` execution input (and the API's path): a deleted incarnation of a cluster
    name, and one of its backups or (none) every one."""

    cluster_name: Name = Field(alias="clusterName", description="The deleted cluster's name.")
    incarnation: str = Field(
        pattern=INCARNATION_PATTERN, description="The deleted incarnation's uid (`kubestep get backups NAME`)."
    )
    backup_id: str | None = Field(
        default=None, alias="backupId", pattern=BACKUP_ID_PATTERN, description="One backup; none: every one."
    )


def parse_delete_backups_request(data: Any) -> DeleteBackupsRequest:
    refuse_identity_fields(data)
    return parse(DeleteBackupsRequest, data)


def check_deletable(store: Store, request: DeleteBackupsRequest) -> DeletedIncarnation:
    """The incarnation must be a deleted one of the name that kept backups, and the backup (if
    named) one of its: refused naming the field otherwise. The existing cluster's are refused:
    they go with it (`deleteBackups`)."""
    name, uid = request.cluster_name, request.incarnation
    record = store.clusters.get(name)
    if record is not None and record.uid == uid:
        raise InvalidSpec(
            [
                (
                    "incarnation",
                    f"{uid} is the existing cluster {name!r}: its backups go with it "
                    f"(`kubestep delete cluster {name} --delete-backups`), or when S3's retention ends",
                )
            ]
        )
    found = {i.uid: i for i in store.backups.deleted_incarnations(name)}
    if uid not in found:
        known = ", ".join(found) or "none"
        raise NotFound(
            f"incarnation: no deleted cluster {name!r} with uid {uid} kept backups (those that did: {known})"
        )
    if request.backup_id is not None and store.backups.get(uid, request.backup_id) is None:
        raise NotFound(f"backupId: the deleted cluster {name!r} (uid {uid}) has no backup {request.backup_id}")
    return found[uid]


def delete_requested(s3: Any, store: Store, bucket: str | None, request: DeleteBackupsRequest) -> dict[str, int]:
    """What a DeleteBackups request names: one backup (its object's versions, then its record),
    or every backup of the incarnation (then the incarnation leaves its name's listing)."""
    uid = request.incarnation
    if request.backup_id is None:
        return delete_incarnation_backups(s3, store, bucket, request.cluster_name, uid)
    key = backups.object_key(uid, request.backup_id)
    objects = delete_object_key_versions(s3, bucket, key) if bucket else 0
    records = store.backups.delete(uid, request.backup_id)
    if not store.backups.list(uid):
        store.backups.forget_incarnation(request.cluster_name, uid)
    return {"objectVersions": objects, "records": records}


def reference_problem(reference: str) -> str | None:
    """`UID` or `UID/ID` as the CLI takes it: None when well formed, else the rule."""
    uid, _, backup_id = reference.partition("/")
    if not re.fullmatch(INCARNATION_PATTERN, uid) or (backup_id and not re.fullmatch(BACKUP_ID_PATTERN, backup_id)):
        return (
            "UID (every backup of that deleted cluster incarnation) or UID/ID (one backup), as "
            "`kubestep get backups NAME` shows them"
        )
    return None
