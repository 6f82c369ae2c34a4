"""The cluster's two secrets in Secrets Manager, made here and never passed through Step
Functions or logs (only their ARNs travel):

- `gke-<uid>-controlplane`: the CAs' certificates and keys, the service-account key pair and
  the Secrets encryption key (kubestep.pki), KMS-encrypted with the cluster's
  databaseEncryption key or the service's key; readable only by the cluster's control-plane role.
- `gke-<uid>-node`: the kubeadm join token (kubestep.join_tokens: the newest value and those
  still accepted, rotated daily); readable by the cluster's nodes and control plane.

The CA certificate and its hash are public: they go on the cluster record (the API's
`status.clusterCaCertificate`, and every join pins the hash)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from kubestep import join_tokens, naming, pki
from kubestep.aws.errors import SECRET_INVALID_REQUEST, Kind, is_already_exists, is_error, is_not_found
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.store import Resource, now


class SecretOfAnotherIncarnation(Exception):
    """A secret under this cluster's name is pending deletion: it belongs to an earlier cluster."""


def _describe(ctx: ClusterContext, name: str) -> dict | None:
    try:
        return ctx.secretsmanager.describe_secret(SecretId=name)
    except Exception as exc:
        if is_not_found(exc, Kind.SECRET):
            return None
        raise


def _create(ctx: ClusterContext, name: str, description: str, value: dict[str, Any], kms_key: str | None) -> str:
    kwargs: dict[str, Any] = {"KmsKeyId": kms_key} if kms_key else {}
    try:
        return ctx.secretsmanager.create_secret(
            Name=name,
            Description=description,
            SecretString=json.dumps(value),
            # Same operation, same request token: a retried create is not a second secret.
            ClientRequestToken=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.operation_id}/{name}")),
            Tags=naming.ec2_tags(ctx.tags(Name=name)),
            **kwargs,
        )["ARN"]
    except Exception as exc:
        if not is_already_exists(exc, Kind.SECRET):
            raise
        found = _describe(ctx, name)
        if found is None:
            ctx.pending(f"secret {name} exists but is not visible yet")
        return found["ARN"]


def _ensure(ctx: ClusterContext, name: str, description: str, make: Any, kms_key: str | None) -> tuple[str, bool]:
    found = _describe(ctx, name)
    if found is not None:
        if found.get("DeletedDate"):
            raise SecretOfAnotherIncarnation(
                f"secret {name} is scheduled for deletion by an earlier cluster of uid {ctx.uid}; "
                "delete this cluster and create it again (it gets a new uid)"
            )
        return found["ARN"], False
    return _create(ctx, name, description, make(), kms_key), True


@step(creates=True)
def ensure_cluster_pki(ctx: ClusterContext) -> dict:
    """The cluster's CAs and keys in the control-plane secret, its join token in the node
    secret; the CA certificate and its hash on the cluster record."""
    cp_name, node_name = naming.control_plane_secret(ctx.uid), naming.node_secret(ctx.uid)
    made: dict[str, pki.ClusterPki] = {}

    def material() -> dict[str, str]:
        made["pki"] = pki.generate()
        return made["pki"].material

    encryption_key = ctx.spec.spec.control_plane.database_encryption.kms_key_arn or ctx.settings.kms_key_arn or None
    cp_arn, created = _ensure(
        ctx, cp_name, f"PKI of kubestep cluster {ctx.name} ({ctx.uid}): control plane only", material, encryption_key
    )
    if created and ctx.resource_id(Resource.CONTROL_PLANE_SECRET) != cp_arn:
        ctx.record_resource(Resource.CONTROL_PLANE_SECRET, cp_arn)
    first_tokens: list[join_tokens.Token] = []

    def first_token() -> dict[str, Any]:
        first_tokens.append(join_tokens.new_token(now()))
        return join_tokens.secret_value(first_tokens)

    node_arn, created = _ensure(
        ctx,
        node_name,
        f"Join token of kubestep cluster {ctx.name} ({ctx.uid}), rotated by the management service",
        first_token,
        ctx.settings.kms_key_arn or None,
    )
    if created and ctx.resource_id(Resource.NODE_SECRET) != node_arn:
        ctx.record_resource(Resource.NODE_SECRET, node_arn)
    if first_tokens and ctx.record.join_token is None:
        ctx.store.clusters.update(ctx.name, join_token=join_tokens.info(first_tokens, now()))
    if ctx.record.cluster_ca_certificate is None or ctx.resource_id(Resource.CONTROL_PLANE_SECRET) is None:
        if "pki" in made:
            certificate = made["pki"].ca_certificate
        else:
            # A re-run after the secret was made: read the public certificate back from it.
            value = json.loads(ctx.secretsmanager.get_secret_value(SecretId=cp_arn)["SecretString"])
            certificate = value["ca.crt"]
        for logical, arn in ((Resource.CONTROL_PLANE_SECRET, cp_arn), (Resource.NODE_SECRET, node_arn)):
            if ctx.resource_id(logical) is None:
                ctx.record_resource(logical, arn)
        ctx.store.clusters.update(
            ctx.name, cluster_ca_certificate=certificate, ca_cert_hash=pki.ca_cert_hash(certificate)
        )
    return {"controlPlaneSecret": cp_arn, "nodeSecret": node_arn}


@step
def delete_cluster_secrets(ctx: ClusterContext, scope: str) -> dict:
    """Schedule both secrets' deletion (their names carry the uid: a re-create never collides)."""
    deleted = []
    for name in (naming.control_plane_secret(ctx.uid), naming.node_secret(ctx.uid)):
        secret = _describe(ctx, name)
        if secret is None or secret.get("DeletedDate") or not ctx.owned(naming.tags_dict(secret.get("Tags")), scope):
            continue
        try:
            ctx.secretsmanager.delete_secret(SecretId=name, RecoveryWindowInDays=7)
        except Exception as exc:
            # An earlier (or retried) call scheduled it already: that is what this step wants.
            if not (is_error(exc, SECRET_INVALID_REQUEST) and (_describe(ctx, name) or {}).get("DeletedDate")):
                raise
        deleted.append(name)
    return {"deleted": deleted}
