"""The cluster's kubeadm join token, rotated by the management service (docs/contracts.md,
"Join token"): the node secret `gke-<uid>-node` lists every value the control plane accepts,
newest first, each with its expiry; `token` is the newest, the one a joining instance uses. A new
value is added every ROTATE_AFTER and each stays valid for LIFETIME, so a node that read the
previous value just before a rotation still joins (the overlap); the control-plane replicas
register the listed values and delete the ones no longer listed.

Values never leave Lambda memory and Secrets Manager: a step returns only which clusters
rotated, the cluster record keeps only the times (`joinToken`), and no log names a value."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubestep import pki
from kubestep.aws.errors import Kind, is_already_exists, is_not_found
from kubestep.store import ClusterRecord, Resource, Store, iso, parse_iso
from kubestep.store.records import JoinTokenInfo

ROTATE_AFTER = timedelta(days=1)
LIFETIME = timedelta(days=3)
# Clusters whose control plane runs (and so registers tokens); a create writes the first value,
# a delete removes the secret.
ROTATED_PHASES = ("RUNNING", "DEGRADED", "RECONCILING")
UID_TAG = "gke:cluster-uid"


@dataclass(frozen=True)
class Token:
    value: str
    created_at: datetime
    expires_at: datetime

    def item(self) -> dict[str, str]:
        return {"token": self.value, "createdAt": iso(self.created_at), "expiresAt": iso(self.expires_at)}


def new_token(now: datetime) -> Token:
    return Token(pki.bootstrap_token(), now, now + LIFETIME)


def secret_value(tokens: list[Token]) -> dict[str, Any]:
    """The node secret's JSON: `token` (the newest, what joins use) and every accepted value."""
    newest = tokens[0]
    return {"token": newest.value, "tokens": [t.item() for t in tokens]}


def parse(value: dict[str, Any], written_at: datetime) -> list[Token]:
    """The accepted values, newest first. A secret written before rotation existed holds only
    `token`: it counts as made when the secret was last written."""
    listed = value.get("tokens")
    if isinstance(listed, list) and listed:
        tokens = [
            Token(t["token"], parse_iso(t["createdAt"]), parse_iso(t["expiresAt"]))
            for t in listed
            if isinstance(t, dict) and {"token", "createdAt", "expiresAt"} <= set(t)
        ]
        if tokens:
            return sorted(tokens, key=lambda t: t.created_at, reverse=True)
    return [Token(str(value.get("token", "")), written_at, written_at + LIFETIME)]


def due(tokens: list[Token], now: datetime) -> bool:
    return now - tokens[0].created_at >= ROTATE_AFTER


def rotated(tokens: list[Token], now: datetime) -> list[Token]:
    """A new newest value, and the earlier ones that have not expired (the overlap)."""
    return [new_token(now), *(t for t in tokens if t.expires_at > now)]


def info(tokens: list[Token], now: datetime) -> JoinTokenInfo:
    newest = tokens[0]
    return JoinTokenInfo(
        created_at=iso(newest.created_at),
        expires_at=iso(newest.expires_at),
        accepted=len([t for t in tokens if t.expires_at > now]),
    )


def _request_token(secret_arn: str, replaced: Token) -> str:
    """The same rotation of the same value is the same Secrets Manager version: a retried or
    concurrent rotation adds one version, and the loser is told the version exists."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{secret_arn}#rotate-after#{iso(replaced.created_at)}"))


def _read(secretsmanager: Any, arn: str) -> list[Token]:
    answer = secretsmanager.get_secret_value(SecretId=arn)
    return parse(json.loads(answer["SecretString"]), answer["CreatedDate"].astimezone(UTC))


def rotate(secretsmanager: Any, store: Store, record: ClusterRecord, now: datetime) -> str | None:
    """Rotate `record`'s join token when due; the outcome in words, or None when nothing was
    due. Only the secret the record names, and only while it carries the record's uid."""
    arn = record.resource_id(Resource.NODE_SECRET)
    if not arn:
        return None
    try:
        described = secretsmanager.describe_secret(SecretId=arn)
    except Exception as exc:
        if is_not_found(exc, Kind.SECRET):
            return None
        raise
    tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
    if described.get("DeletedDate") or tags.get(UID_TAG) != record.uid:
        return None  # being deleted, or not this incarnation's
    tokens = _read(secretsmanager, arn)
    outcome = None
    if due(tokens, now):
        wanted = rotated(tokens, now)
        try:
            secretsmanager.put_secret_value(
                SecretId=arn,
                SecretString=json.dumps(secret_value(wanted)),
                ClientRequestToken=_request_token(arn, tokens[0]),
            )
            tokens = wanted
            outcome = (
                f"new join token, valid until {iso(wanted[0].expires_at)}; {len(wanted) - 1} earlier still accepted"
            )
        except Exception as exc:
            if not is_already_exists(exc, Kind.SECRET):
                raise
            tokens = _read(secretsmanager, arn)  # a concurrent run rotated it: record what it wrote
    current = info(tokens, now)
    if record.join_token != current:
        store.clusters.update(record.name, join_token=current)
    return outcome
