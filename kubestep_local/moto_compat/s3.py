"""S3 for the emulator: what moto 5.2.5 lacks for the service's backup bucket.

moto deploys `AWS::S3::Bucket` with its encryption but without its versioning
(`deploy_bucket_versioning` adds it), and skips `AWS::S3::BucketPolicy` with a warning, so the
deployed bucket would lack the TLS-only policy the template gives it. `deploy_bucket_policies`
teaches moto's CloudFormation that type: the policy document is put on the bucket (S3
PutBucketPolicy) on create and update, and deleted with the stack resource, as CloudFormation
does (AWS CloudFormation User Guide, "AWS::S3::BucketPolicy": Bucket, PolicyDocument; the
physical id is the bucket's name). `evaluate_bucket_policies_as_aws` makes moto apply that
policy to object requests as AWS does.
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

    # Pickled with the stack's resources in the runtime's snapshots: found again by this name
    # (the module's __getattr__ makes it, in a process that has not yet).
    BucketPolicy.__module__, BucketPolicy.__qualname__ = __name__, "BucketPolicy"
    return BucketPolicy


def deploy_bucket_policies() -> type:
    """Make moto's CloudFormation deploy `AWS::S3::BucketPolicy` (idempotent, process-wide: a
    capability moto lacks, not a changed answer, so nothing to undo); the model class."""
    global _MODEL
    if _MODEL is not None:
        return _MODEL
    from moto.cloudformation import parsing

    _MODEL = _bucket_policy_model()
    # moto caches its type -> model map on first use; a model defined later must clear it.
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    return _MODEL


def __getattr__(name: str) -> Any:
    # moto is imported lazily (it costs a second); the class exists once something asks for it.
    if name == "BucketPolicy":
        return deploy_bucket_policies()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def deploy_bucket_versioning(patches: Any) -> None:
    """moto 5.2.5's CloudFormation creates an `AWS::S3::Bucket` with its encryption and tags but
    drops `VersioningConfiguration`, so the backup bucket would keep one version per key and a
    delete that must remove every version could not be told from one that removes only the
    current. CloudFormation puts the configuration on the new bucket (AWS CloudFormation User
    Guide, "AWS::S3::Bucket VersioningConfiguration": Status Enabled | Suspended), as S3
    PutBucketVersioning does."""
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    original = FakeBucket.create_from_cloudformation_json

    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        bucket = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        status = (cloudformation_json.get("Properties", {}).get("VersioningConfiguration") or {}).get("Status")
        if status:
            s3_backends[account_id][get_partition(region_name)].put_bucket_versioning(resource_name, status)
        return bucket

    patches.set(FakeBucket, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))


# The request context every call to the emulator stands for: AWS's S3 endpoints are HTTPS (the
# emulator's loopback endpoint is plain HTTP only because it is local).
REQUEST_CONTEXT = {"aws:securetransport": "true"}


def evaluate_bucket_policies_as_aws(patches: Any) -> None:
    """moto 5.2.5 refuses an object request when any statement of the bucket policy has a
    condition that does not hold, whatever its effect (`IAMPolicyStatement.is_action_permitted`
    answers DENIED), so the TLS-only Deny (`aws:SecureTransport` false) refuses every upload.
    AWS applies a statement only when its conditions hold (IAM User Guide, "Policy evaluation
    logic"): an explicit Deny that applies wins, else an Allow that applies permits, else the
    bucket policy is silent. Conditions are evaluated against REQUEST_CONTEXT with the operators
    the service's policies use (`Bool`, `StringEquals`); a statement with another operator is left
    to moto's own evaluation."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        statements = json.loads(self.policy)["Statement"]
        statements = statements if isinstance(statements, list) else [statements]
        if not all(set(s.get("Condition", {})) <= {"Bool", "StringEquals"} for s in statements):
            return original(self, action, resource)
        permitted = False
        for statement in statements:
            if not _conditions_hold(statement.get("Condition", {})):
                continue
            unconditional = IAMPolicyStatement({k: v for k, v in statement.items() if k != "Condition"})
            result = unconditional.is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return result
            permitted = permitted or result == PermissionResult.PERMITTED
        return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL

    patches.set(FakeBucket, "get_permission", get_permission)


def _conditions_hold(conditions: dict[str, dict[str, Any]]) -> bool:
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            actual = REQUEST_CONTEXT.get(key.lower())
            values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
            if operator == "Bool":
                values, actual = [v.lower() for v in values], (actual or "").lower()
            if actual is None or actual not in values:
                return False
    return True
