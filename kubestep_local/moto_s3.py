"""S3 for the emulator: what moto 5.2.5's CloudFormation lacks for the service's backup bucket.

moto deploys `AWS::S3::Bucket` (encryption, versioning, lifecycle, public access block) but skips
`AWS::S3::BucketPolicy` with a warning, so the deployed bucket would lack the TLS-only policy the
template gives it. `deploy_bucket_policies` teaches moto's CloudFormation that type: the policy
document is put on the bucket (S3 PutBucketPolicy) on create and update, and deleted with the
stack resource, as CloudFormation does (AWS CloudFormation User Guide, "AWS::S3::BucketPolicy":
Bucket, PolicyDocument; the physical id is the bucket's name).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

_MODEL: type | None = None


def _bucket_policy_model() -> type:
    from moto.core.common_models import CloudFormationModel
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    def backend(account_id: str, region_name: str) -> Any:
        return s3_backends[account_id][get_partition(region_name)]

    class BucketPolicy(CloudFormationModel):
        def __init__(self, bucket: str, account_id: str, region_name: str) -> None:
            self.bucket = bucket
            self.account_id, self.region_name = account_id, region_name

        @property
        def physical_resource_id(self) -> str:
            return self.bucket

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::S3::BucketPolicy"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> BucketPolicy:
            properties = cloudformation_json["Properties"]
            bucket = properties["Bucket"]
            document = json.dumps(properties["PolicyDocument"]).encode()
            backend(account_id, region_name).put_bucket_policy(bucket, document)
            return cls(bucket, account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(  # type: ignore[override]
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> BucketPolicy:
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        def delete(self, account_id: str, region_name: str) -> None:
            # Stack deletion calls it (its template holds intrinsics; this knows the bucket).
            with contextlib.suppress(MissingBucket):  # the bucket went first: nothing to delete
                backend(account_id, region_name).delete_bucket_policy(self.bucket)

    return BucketPolicy


def deploy_bucket_policies() -> None:
    """Make moto's CloudFormation deploy `AWS::S3::BucketPolicy` (idempotent, process-wide: a
    capability moto lacks, not a changed answer, so nothing to undo)."""
    global _MODEL
    if _MODEL is not None:
        return
    from moto.cloudformation import parsing

    _MODEL = _bucket_policy_model()
    # moto caches its type -> model map on first use; a model defined later must clear it.
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
