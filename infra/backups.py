"""The management service's bucket: etcd backups under `backups/` (kubestep/backups.py) and the
instances' bootstrap bundles under `bootstrap/` (kubestep/bootstrap/bundle.py). Its construct
id and output keep their first names ("Backups", BackupBucketName): renaming them would make
CloudFormation replace a retained bucket, and leave the old one and its backups behind.

Encrypted with the service's key (S3 Bucket Keys: one data key per bucket and period, not one
KMS call per object), versioned, public access blocked, TLS only, and retained with the stack
like the table: backups outlive a cluster, and the service, unless deleted explicitly. S3
expires the snapshots itself: one lifecycle rule per retention a manifest may choose, keyed on
the object's retention tag.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from kubestep import backups
from kubestep.bootstrap import bundle


class BackupBucket(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=_lifecycle_rules(),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    @property
    def bucket_name(self) -> str:
        return self.bucket.bucket_name

    @property
    def bucket_arn(self) -> str:
        return self.bucket.bucket_arn


def _lifecycle_rules() -> list[s3.LifecycleRule]:
    rules = [
        s3.LifecycleRule(
            id=f"retain-{days}d",
            prefix=f"{backups.PREFIX}/",
            tag_filters={backups.RETENTION_TAG: str(days)},
            expiration=cdk.Duration.days(days),
            noncurrent_version_expiration=cdk.Duration.days(backups.NONCURRENT_DAYS),
        )
        for days in backups.RETENTION_DAYS
    ]
    rules.append(
        s3.LifecycleRule(
            id="retain-at-most",
            prefix=f"{backups.PREFIX}/",
            expiration=cdk.Duration.days(backups.LONGEST_RETENTION_DAYS),
            noncurrent_version_expiration=cdk.Duration.days(backups.NONCURRENT_DAYS),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
        )
    )
    # A deleted cluster's bootstrap bundles: the delete leaves delete markers, the data goes a day later.
    rules.append(
        s3.LifecycleRule(
            id="deleted-bootstrap-bundles",
            prefix=f"{bundle.PREFIX}/",
            noncurrent_version_expiration=cdk.Duration.days(backups.NONCURRENT_DAYS),
        )
    )
    # Delete markers left once every version of an object has expired.
    rules.append(s3.LifecycleRule(id="expired-delete-markers", expired_object_delete_marker=True))
    return rules
