"""What the Lambda side tells an instance: `BootstrapParams`, non-secret values only.

User-data is readable by anyone allowed `ec2:DescribeInstanceAttribute`, so nothing here is
secret: the instance reads its key material from Secrets Manager with its own role (the
control-plane secret's CA keys and Secrets-encryption key, the node secret's join token).
Every field is checked when the params are made; a bad value raises ValueError naming the
field and the rule, before anything is rendered."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubestep.bootstrap import components, schema

ROLES = ("control-plane", "node")
VERSION = re.compile(r"^1\.(\d+)\.(\d+)$")
CA_CERT_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
QUEUE_URL = re.compile(r"^https://sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")
HOSTED_ZONE_ID = re.compile(r"^[A-Z0-9]{1,32}$")  # AWS ids look like Z0123…; the emulator's do not
VOLUME_ID = re.compile(r"^vol-[0-9a-f]{8,17}$")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
UID = re.compile(r"^[a-z][a-z0-9]{3,31}$")
TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# The kubelet refuses to start with --node-labels in the kubernetes.io / k8s.io namespaces
# except these prefixes (NodeRestriction's self-labelling rules).
KUBELET_SELF_LABEL_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")
# KubeletConfiguration fields the bootstrap sets itself; `kubelet_settings` may not override them.
KUBELET_FIELDS_OWNED = frozenset(
    {
        "apiVersion",
        "kind",
        "maxPods",
        "cgroupDriver",
        "providerID",
        "staticPodPath",
        "authentication",
        "authorization",
        "clusterDNS",
        "clusterDomain",
        "rotateCertificates",
        "serverTLSBootstrap",
        "tlsCertFile",
        "tlsPrivateKeyFile",
    }
)


@dataclass(frozen=True)
class DnsZone:
    """The management service's Route 53 private hosted zone (DECISIONS: stable replica identity)."""

    hosted_zone_id: str  # e.g. Z0123456789ABCDEFGHIJ
    domain: str  # `<svc>.kubestep.internal`, associated with the service's VPC


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute


def stable_replica_name(uid: str, index: int, domain: str) -> str:
    """Replica `index`'s identity that survives instance replacement: its A record in the
    private hosted zone (`cp-<i>.<uid>.<domain>`), which the instance UPSERTs at boot. etcd's
    peer/client URLs and certificate SANs use it. The Lambda side uses this for the record
    fields; the bootstrap for everything else."""
    return f"cp-{index}.{uid}.{domain}"


@dataclass(frozen=True)
class BootstrapParams:
    """Everything an instance needs to find and join its cluster (non-secret values only)."""

    # The management service's DynamoDB table: the instance writes its bootstrap report there
    # (under the keys kubestep.store.keys gives it), and control-plane replicas claim
    # "initialise once" in it.
    table: str
    # AWS region of the service (Secrets Manager, DynamoDB, EC2 API calls).
    region: str
    # Management service name (`<svc>`); names the report's writer in logs.
    service_name: str
    # The user's cluster name (kubeadm `clusterName`, kubeconfig context names).
    cluster_name: str
    # The cluster's uid: names AWS resources, the etcd cluster token, the authenticator's cluster
    # id, the cloud controller manager's `--cluster-name` (instances carry
    # `kubernetes.io/cluster/<uid>=owned`).
    uid: str
    # "control-plane" or "node".
    role: str
    # Kubernetes version to install, `1.MINOR.PATCH` (MINOR >= 31: kubeadm v1beta4).
    version: str
    # The NLB's DNS name; the API endpoint is `<endpoint>:443` (kubeadm `controlPlaneEndpoint`).
    endpoint: str
    # `sha256:<hex>` of the cluster CA certificate's SubjectPublicKeyInfo; every join pins it.
    ca_cert_hash: str
    # ARN of `gke-<uid>-node`: {"token": "<kubeadm bootstrap token>"} (nodes and control plane read it).
    node_secret_arn: str
    # Pod and Service CIDRs from the cluster spec (kubeadm networking, Calico's IP pool).
    pod_cidr: str
    service_cidr: str
    # Control plane only: ARN of `gke-<uid>-controlplane` (CA certs and keys, `sa.key`/`sa.pub`,
    # `encryptionKey`), readable only by the cluster's control-plane role.
    control_plane_secret_arn: str | None = None
    # Control plane only: the private hosted zone where the replica UPSERTs its A record.
    dns: DnsZone | None = None
    # Control plane only: this replica's index, the number of replicas, its etcd EBS volume.
    replica_index: int | None = None
    replica_count: int | None = None
    etcd_volume_id: str | None = None
    # Control plane only: the SQS queue the AWS Node Termination Handler processes (queue mode);
    # None installs no handler.
    node_termination_queue_url: str | None = None
    # Control plane only: encrypt Secrets at rest (`databaseEncryption`); the key is the
    # control-plane secret's `encryptionKey`.
    encrypt_secrets: bool = False
    # Control plane only: kubeadm's `encryptionAlgorithm` (ClusterConfiguration), the type of every
    # key kubeadm makes on the replicas; that of the cluster CA's key (kubestep.pki.encryption_algorithm:
    # ECDSA-P256, or RSA-2048 for a PKI made before), so leaves match the CA they are signed with.
    encryption_algorithm: str | None = None
    # Nodes only: node-pool labels (kubelet `--node-labels`), taints (registered at join), maxPods.
    node_labels: Mapping[str, str] = field(default_factory=dict)
    node_taints: tuple[Taint, ...] = ()
    max_pods: int | None = None
    # Extra KubeletConfiguration (kubelet.config.k8s.io/v1beta1) fields, e.g. kubeReserved;
    # only fields of the upstream type, never ones the bootstrap sets itself.
    kubelet_settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise ValueError("invalid bootstrap parameters: " + "; ".join(problems))

    @property
    def minor(self) -> int:
        return int(VERSION.match(self.version).group(1))  # type: ignore[union-attr]

    @property
    def is_control_plane(self) -> bool:
        return self.role == "control-plane"

    @property
    def replica_names(self) -> tuple[str, ...]:
        """The stable names of every replica, in index order (control plane only)."""
        assert self.dns is not None and self.replica_count is not None
        return tuple(stable_replica_name(self.uid, i, self.dns.domain) for i in range(self.replica_count))

    @property
    def replica_name(self) -> str:
        assert self.replica_index is not None
        return self.replica_names[self.replica_index]

    @property
    def etcd_cluster_token(self) -> str:
        # Keeps a member from joining another cluster's etcd by mistake (control_plane.plan records it).
        return f"gke-{self.uid}-etcd"


def _check_cidr(name: str, value: str, problems: list[str]) -> None:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        problems.append(f"{name} must be an IPv4 CIDR block such as 10.96.0.0/12 (got {value!r})")
        return
    if network.version != 4:
        problems.append(f"{name} must be an IPv4 CIDR block (got {value!r})")


def _check_label_key(name: str, key: str, problems: list[str]) -> None:
    prefix, _, label = key.rpartition("/")
    if not LABEL_NAME.match(label) or (prefix and not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", prefix)):
        problems.append(f"{name} key {key!r} is not a valid Kubernetes label key")
    elif (prefix.endswith("kubernetes.io") or prefix.endswith("k8s.io")) and not key.startswith(
        KUBELET_SELF_LABEL_PREFIXES
    ):
        problems.append(
            f"{name} key {key!r} is in a namespace the kubelet may not set on itself "
            f"(allowed: {', '.join(KUBELET_SELF_LABEL_PREFIXES)}, or a prefix outside kubernetes.io/k8s.io)"
        )


def validate(p: BootstrapParams) -> list[str]:  # noqa: C901 - one check per field reads best flat
    problems: list[str] = []
    if not TABLE.match(p.table or ""):
        problems.append(f"table must be a DynamoDB table name (got {p.table!r})")
    if not REGION.match(p.region or ""):
        problems.append(f"region must be an AWS region such as us-east-1 (got {p.region!r})")
    if not DNS_LABEL.match(p.service_name or ""):
        problems.append(f"service_name must be a DNS label (got {p.service_name!r})")
    if not DNS_LABEL.match(p.cluster_name or ""):
        problems.append(f"cluster_name must be a DNS label (got {p.cluster_name!r})")
    if not UID.match(p.uid or ""):
        problems.append(f"uid must be 4-32 lowercase letters and digits starting with a letter (got {p.uid!r})")
    if p.role not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)} (got {p.role!r})")
    match = VERSION.match(p.version or "")
    if not match:
        problems.append(f"version must look like 1.MINOR.PATCH (got {p.version!r})")
    elif int(match.group(1)) not in components.supported_minors():
        listed = ", ".join(f"1.{m}" for m in components.supported_minors())
        problems.append(f"version {p.version}: the bootstrap installs Kubernetes {listed} (the version catalog)")
    if not re.match(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", p.endpoint or ""):
        problems.append(f"endpoint must be the load balancer's DNS name, without scheme or port (got {p.endpoint!r})")
    if not CA_CERT_HASH.match(p.ca_cert_hash or ""):
        problems.append("ca_cert_hash must be sha256:<64 lowercase hex> of the CA's SubjectPublicKeyInfo")
    if not SECRET_ARN.match(p.node_secret_arn or ""):
        problems.append(f"node_secret_arn must be a Secrets Manager secret ARN (got {p.node_secret_arn!r})")
    _check_cidr("pod_cidr", p.pod_cidr, problems)
    _check_cidr("service_cidr", p.service_cidr, problems)
    if not problems and ipaddress.ip_network(p.pod_cidr).overlaps(ipaddress.ip_network(p.service_cidr)):
        problems.append(f"pod_cidr {p.pod_cidr} and service_cidr {p.service_cidr} must not overlap")
    if p.role == "control-plane":
        problems += _validate_control_plane(p)
    elif p.role == "node":
        problems += _validate_node(p)
    for key in p.kubelet_settings:
        if key in KUBELET_FIELDS_OWNED:
            problems.append(f"kubelet_settings.{key} is set by the bootstrap and cannot be overridden")
        elif key not in schema.kubelet_fields():
            problems.append(
                f"kubelet_settings.{key} is not a KubeletConfiguration (kubelet.config.k8s.io/v1beta1) field"
            )
    if not problems and p.kubelet_settings:
        document = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}
        problems += [
            f"kubelet_settings: {x}" for x in schema.problems(schema.KUBELET, {**document, **p.kubelet_settings})
        ]
    return problems


def _validate_control_plane(p: BootstrapParams) -> list[str]:
    problems: list[str] = []
    if not SECRET_ARN.match(p.control_plane_secret_arn or ""):
        problems.append("control_plane_secret_arn must be a Secrets Manager secret ARN (control plane)")
    if p.dns is None:
        problems.append("dns (hosted zone id and domain) is required for the control plane")
    else:
        if not HOSTED_ZONE_ID.match(p.dns.hosted_zone_id or ""):
            problems.append(f"dns.hosted_zone_id must be a Route 53 hosted zone id (got {p.dns.hosted_zone_id!r})")
        labels = (p.dns.domain or "").split(".")
        if len(labels) < 2 or not all(DNS_LABEL.match(label) for label in labels):
            problems.append(f"dns.domain must be a lowercase DNS domain (got {p.dns.domain!r})")
    if p.replica_count is None or not 1 <= p.replica_count <= 7:
        problems.append(f"replica_count must be 1..7 (got {p.replica_count!r})")
    if p.replica_index is None or p.replica_count is None or not 0 <= p.replica_index < p.replica_count:
        problems.append(f"replica_index must be 0..replica_count-1 (got {p.replica_index!r})")
    if not VOLUME_ID.match(p.etcd_volume_id or ""):
        problems.append(f"etcd_volume_id must be an EBS volume id (got {p.etcd_volume_id!r})")
    algorithms = schema.enum(schema.KUBEADM, "EncryptionAlgorithmType")
    if p.encryption_algorithm not in algorithms:
        problems.append(
            f"encryption_algorithm must be one of kubeadm's {', '.join(algorithms)} "
            f"(the cluster CA's key type; got {p.encryption_algorithm!r})"
        )
    if p.node_termination_queue_url is not None and not QUEUE_URL.match(p.node_termination_queue_url):
        problems.append(f"node_termination_queue_url must be an SQS queue URL (got {p.node_termination_queue_url!r})")
    if p.node_labels or p.node_taints or p.max_pods is not None:
        problems.append("node_labels, node_taints and max_pods apply to node pools, not the control plane")
    return problems


def _validate_node(p: BootstrapParams) -> list[str]:
    problems: list[str] = []
    control_plane_only = {
        "control_plane_secret_arn": p.control_plane_secret_arn,
        "dns": p.dns,
        "replica_index": p.replica_index,
        "replica_count": p.replica_count,
        "etcd_volume_id": p.etcd_volume_id,
        "node_termination_queue_url": p.node_termination_queue_url,
        "encryption_algorithm": p.encryption_algorithm,
    }
    for name, value in control_plane_only.items():
        if value is not None:
            problems.append(f"{name} applies to the control plane only")
    if p.encrypt_secrets:
        problems.append("encrypt_secrets applies to the control plane only")
    for key, value in p.node_labels.items():
        _check_label_key("node_labels", key, problems)
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            problems.append(f"node_labels[{key!r}] value {value!r} is not a valid Kubernetes label value")
    for taint in p.node_taints:
        _check_label_key("node_taints", taint.key, problems)
        if not LABEL_VALUE.match(taint.value):
            problems.append(f"node_taints {taint.key!r} value {taint.value!r} is not a valid taint value")
        if taint.effect not in TAINT_EFFECTS:
            problems.append(f"node_taints {taint.key!r} effect must be one of {', '.join(TAINT_EFFECTS)}")
    if p.max_pods is not None and not (isinstance(p.max_pods, int) and 1 <= p.max_pods <= 1024):
        problems.append(f"max_pods must be 1..1024 (got {p.max_pods!r})")
    return problems
