"""The cluster's bootstrap secret (kubeadm bootstrap token and certificate key) in Secrets
Manager, KMS-encrypted. Generated here, read only by the cluster's instances; its value never
passes through Step Functions or logs."""

from __future__ import annotations

import json
import secrets
import string
import uuid

from kubestep import naming
from kubestep.aws.errors import Kind, is_already_exists, is_not_found
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.store import Resource

TOKEN_ALPHABET = string.ascii_lowercase + string.digits


def _bootstrap_token() -> str:
    # kubeadm's format: [a-z0-9]{6}.[a-z0-9]{16}
    part = lambda n: "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(n))  # noqa: E731
    return f"{part(6)}.{part(16)}"


@step(creates=True)
def ensure_bootstrap_secret(ctx: ClusterContext) -> dict:
    """Generate the cluster's bootstrap secret (its value never leaves Secrets Manager)."""
    name = naming.bootstrap_secret(ctx.uid)
    try:
        arn = ctx.secretsmanager.describe_secret(SecretId=name)["ARN"]
    except Exception as exc:
        if not is_not_found(exc, Kind.SECRET):
            raise
        kwargs = {}
        if ctx.settings.kms_key_arn:
            kwargs["KmsKeyId"] = ctx.settings.kms_key_arn
        try:
            arn = ctx.secretsmanager.create_secret(
                Name=name,
                Description=f"kubeadm bootstrap material of kubestep cluster {ctx.name} ({ctx.uid})",
                SecretString=json.dumps({"token": _bootstrap_token(), "certificateKey": secrets.token_hex(32)}),
                # Same operation, same request token: a retried create is not a second secret.
                ClientRequestToken=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.operation_id}/{name}")),
                Tags=[{"Key": k, "Value": v} for k, v in ctx.tags().items()],
                **kwargs,
            )["ARN"]
        except Exception as exc2:
            if not is_already_exists(exc2, Kind.SECRET):
                raise
            arn = ctx.secretsmanager.describe_secret(SecretId=name)["ARN"]
    if ctx.resource_id(Resource.BOOTSTRAP_SECRET) != arn:
        ctx.record_resource(Resource.BOOTSTRAP_SECRET, arn)
    return {"secret": name}


@step
def delete_bootstrap_secret(ctx: ClusterContext, scope: str) -> dict:
    """Schedule the secret's deletion (its name carries the uid: a re-create never collides)."""
    name = naming.bootstrap_secret(ctx.uid)
    try:
        secret = ctx.secretsmanager.describe_secret(SecretId=name)
    except Exception as exc:
        if is_not_found(exc, Kind.SECRET):
            return {"deleted": False}
        raise
    if secret.get("DeletedDate") or not ctx.owned(naming.tags_dict(secret.get("Tags")), scope):
        return {"deleted": False}
    ctx.secretsmanager.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    return {"deleted": True}
