"""kubestep/backup_deletion.py against moto's S3 (a versioned bucket, as infra/backups.py makes
it): every version and delete marker of one incarnation's prefix goes, nothing of another's, and
a prefix that is not exactly one incarnation's is refused before any call."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from kubestep import backup_deletion, backups


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="svc-backups")
        client.put_bucket_versioning(Bucket="svc-backups", VersioningConfiguration={"Status": "Enabled"})
        yield client


def _versions(s3, prefix: str) -> int:
    found = s3.list_object_versions(Bucket="svc-backups", Prefix=prefix)
    return len(found.get("Versions", [])) + len(found.get("DeleteMarkers", []))


def test_every_version_and_delete_marker_of_one_incarnation_goes_and_nothing_else(s3):
    mine, other = backups.object_key("u1", "20261205T101500Z"), backups.object_key("u2", "20261205T101500Z")
    for body in (b"one", b"two"):
        s3.put_object(Bucket="svc-backups", Key=mine, Body=body)
        s3.put_object(Bucket="svc-backups", Key=other, Body=body)
    s3.delete_object(Bucket="svc-backups", Key=mine)  # a delete marker over the two versions
    # A uid that begins with the other's must not match it: the prefix ends with its slash.
    s3.put_object(Bucket="svc-backups", Key=backups.object_key("u10", "20261205T101500Z"), Body=b"x")
    assert _versions(s3, backups.cluster_prefix("u1")) == 3

    assert backup_deletion.delete_object_versions(s3, "svc-backups", backups.cluster_prefix("u1")) == 3
    assert _versions(s3, backups.cluster_prefix("u1")) == 0
    assert _versions(s3, backups.cluster_prefix("u2")) == 2 and _versions(s3, backups.cluster_prefix("u10")) == 1
    # Idempotent: a retry finds nothing left and deletes nothing.
    assert backup_deletion.delete_object_versions(s3, "svc-backups", backups.cluster_prefix("u1")) == 0


@pytest.mark.parametrize(
    "prefix", ["", "backups/", "backups//", "backups/u1", "backups/u1/x/", "backups/U1/", "other/u1/"]
)
def test_a_prefix_that_is_not_one_incarnations_is_refused(s3, prefix):
    s3.put_object(Bucket="svc-backups", Key=backups.object_key("u1", "20261205T101500Z"), Body=b"x")
    with pytest.raises(ValueError, match="one incarnation's backups prefix"):
        backup_deletion.delete_object_versions(s3, "svc-backups", prefix)
    assert _versions(s3, "") == 1
