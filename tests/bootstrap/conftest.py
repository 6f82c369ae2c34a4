"""Shared params and secrets for the bootstrap tests."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from boto3.dynamodb.types import TypeSerializer

from kubestep import backups
from kubestep.bootstrap import BootstrapParams, DnsZone, Taint, components
from kubestep.store import keys
from kubestep.store.backups import BackupPolicy
from kubestep.store.records import ClusterAdmins

ACCOUNT = "123456789012"
NODE_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:gke-abcd1234-node-AbCdEf"
CONTROL_PLANE_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:gke-abcd1234-controlplane-GhIjKl"
JOIN_TOKEN = "abcdef.0123456789abcdef"
ENCRYPTION_KEY = base64.b64encode(bytes(range(32))).decode()
CA_HASH = "sha256:" + "3f" * 32
QUEUE = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/svc-node-lifecycle-abcd1234"


def pem(kind: str, tag: str) -> str:
    body = base64.b64encode(f"{tag} material".encode() * 4).decode()
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


CONTROL_PLANE_SECRET_VALUE = {
    "ca.crt": pem("CERTIFICATE", "cluster-ca"),
    "ca.key": pem("EC PRIVATE KEY", "cluster-ca-key"),
    "etcd-ca.crt": pem("CERTIFICATE", "etcd-ca"),
    "etcd-ca.key": pem("EC PRIVATE KEY", "etcd-ca-key"),
    "front-proxy-ca.crt": pem("CERTIFICATE", "front-proxy-ca"),
    "front-proxy-ca.key": pem("EC PRIVATE KEY", "front-proxy-ca-key"),
    "sa.key": pem("EC PRIVATE KEY", "service-account-key"),
    "sa.pub": pem("PUBLIC KEY", "service-account-pub"),
    "encryptionKey": ENCRYPTION_KEY,
}
SECRETS = {NODE_SECRET: json.dumps({"token": JOIN_TOKEN}), CONTROL_PLANE_SECRET: json.dumps(CONTROL_PLANE_SECRET_VALUE)}

COMMON = dict(
    table="svc-kubestep",
    region="us-east-1",
    service_name="svc",
    cluster_name="prod",
    uid="abcd1234",
    version="1.35.4",
    endpoint="gke-abcd1234-cp-0123456789abcdef.elb.us-east-1.amazonaws.com",
    ca_cert_hash=CA_HASH,
    node_secret_arn=NODE_SECRET,
    pod_cidr="10.244.0.0/16",
    service_cidr="10.96.0.0/12",
)


ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/Admin"
ADMIN_USER = f"arn:aws:iam::{ACCOUNT}:user/alice"


def admins_item(
    generation: int = 1,
    roles: tuple[str, ...] = (ADMIN_ROLE,),
    users: tuple[str, ...] = (ADMIN_USER,),
    uid: str = "abcd1234",
    updated_at: str = "2026-12-01T10:00:00.000Z",
) -> dict[str, dict]:
    """The cluster administrators item as the management service writes it (the store's record,
    `kubestep.store.admins`) and GetItem returns it (DynamoDB JSON), filed under its key for the
    DynamoDB stand-in."""
    record = ClusterAdmins(generation=generation, role_arns=list(roles), user_arns=list(users), updated_at=updated_at)
    item = {"pk": keys.cluster_access_pk(uid), "sk": keys.ADMINS_SK, **record.to_item()}
    serializer = TypeSerializer()
    return {f"{item['pk']}|{item['sk']}": {name: serializer.serialize(value) for name, value in item.items()}}


def backup_policy_item(
    bucket: str, uid: str = "abcd1234", interval_minutes: int = 30, requested_at: str | None = None
) -> dict[str, dict]:
    """The backup policy item as kubestep.resources.backups publishes it (the store's record,
    `kubestep.store.backups.BackupPolicy`), as GetItem returns it, filed under its key."""
    policy = BackupPolicy(
        bucket=bucket,
        prefix=backups.cluster_prefix(uid),
        interval_minutes=interval_minutes,
        retention_days=7,
        requested_at=requested_at,
    )
    item = {"pk": keys.cluster_access_pk(uid), "sk": keys.BACKUP_POLICY_SK, **policy.to_item()}
    serializer = TypeSerializer()
    return {f"{item['pk']}|{item['sk']}": {name: serializer.serialize(value) for name, value in item.items()}}


def control_plane(index: int = 0, **changes) -> BootstrapParams:
    fields = dict(
        COMMON,
        role="control-plane",
        control_plane_secret_arn=CONTROL_PLANE_SECRET,
        dns=DnsZone("Z0123456789ABCDEFGHIJ", "svc.kubestep.internal"),
        replica_index=index,
        replica_count=3,
        etcd_volume_id=f"vol-0123456789abcdef{index}",
        node_termination_queue_url=QUEUE,
        encrypt_secrets=True,
        encryption_algorithm="ECDSA-P256",
    )
    return BootstrapParams(**(fields | changes))


def node(**changes) -> BootstrapParams:
    fields = dict(
        COMMON,
        role="node",
        version="1.34.8",
        node_labels={"workload": "batch", "node.kubernetes.io/pool": "batch"},
        node_taints=(Taint("dedicated", "batch", "NoSchedule"),),
        max_pods=58,
        kubelet_settings={"kubeReserved": {"cpu": "100m", "memory": "256Mi"}},
    )
    return BootstrapParams(**(fields | changes))


def variants() -> dict[str, BootstrapParams]:
    """Every shape of user-data: both roles, each optional feature on and off, every minor."""
    found = {
        "control-plane": control_plane(),
        "control-plane-minimal": control_plane(
            2, node_termination_queue_url=None, encrypt_secrets=False, replica_count=3
        ),
        "control-plane-single": control_plane(0, replica_count=1),
        "node": node(),
        "node-minimal": node(node_labels={}, node_taints=(), max_pods=None, kubelet_settings={}),
    }
    for minor in components.supported_minors():
        found[f"control-plane-1.{minor}"] = control_plane(1, version=f"1.{minor}.2")
        found[f"node-1.{minor}"] = node(version=f"1.{minor}.2")
    return found


@pytest.fixture
def replace():
    return dataclasses.replace
