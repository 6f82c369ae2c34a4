"""Typed records, one per item kind of the single table. Repositories read and write these;
callers never see raw DynamoDB items (attribute names are the camelCase aliases)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubestep.models import AWSCluster, AWSNodePool, dump
from kubestep.store.keys import KEY_ATTRIBUTES, ServiceTarget, Target

# Manifests read back from the table were valid when they were stored: later catalog changes
# (a Kubernetes minor leaving the supported list) must not make them unreadable.
STORED = {"stored": True}


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints/floats, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class Resource(StrEnum):
    """Logical names of the AWS resources a cluster, replica or node pool records."""

    SG_LB = "sg-lb"
    SG_CONTROL_PLANE = "sg-controlplane"
    SG_NODES = "sg-nodes"
    NLB = "nlb"
    TARGET_GROUP = "target-group"
    LISTENER = "listener"
    CONTROL_PLANE_SECRET = "controlplane-secret"
    NODE_SECRET = "node-secret"
    CONTROL_PLANE_ROLE = "controlplane-role"
    NODE_ROLE = "node-role"
    CONTROL_PLANE_PROFILE = "controlplane-instance-profile"
    NODE_PROFILE = "node-instance-profile"
    ETCD_VOLUME = "etcd-volume"
    LAUNCH_TEMPLATE = "launch-template"
    ASG = "asg"
    DNS_RECORD = "dns-record"
    TERMINATION_QUEUE = "termination-queue"
    TERMINATION_RULE = "termination-rule"


class Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Self | None:
        if item is None:
            return None
        data = {k: plain(v) for k, v in item.items() if k not in KEY_ATTRIBUTES}
        return cls.model_validate(data, context=STORED)

    def to_item(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def attribute(cls, field: str) -> str:
        """The stored attribute name of a field (its alias), for update expressions."""
        info = cls.model_fields.get(field)
        if info is None:
            raise AttributeError(f"{cls.__name__} has no field {field!r}")
        return info.alias or field


class ResourceRef(Record):
    id: str
    created_by: str | None = None


class ErrorInfo(Record):
    error: str
    message: str | None = None
    operation_id: str | None = None
    # The command that resumes or repairs what the failed operation left (kubestep.recovery).
    hint: str | None = None


# ---------------------------------------------------------------- network


class NetworkZone(Record):
    zone_name: str | None = None  # where AWS put the subnets (the manifest may name a zone ID)
    public_subnet_id: str | None = None
    private_subnet_id: str | None = None
    private_subnet_ids: list[str] = Field(default_factory=list)  # existing VPC
    allocation_id: str | None = None
    nat_gateway_id: str | None = None
    private_route_table_id: str | None = None


class ExistingSubnet(Record):
    zone: str
    cidr: str


class NetworkRecord(Record):
    status: str = "PROVISIONING"
    mode: str | None = None
    service: str | None = None
    operation_id: str | None = None
    vpc_id: str | None = None
    cidr: str | None = None
    internet_gateway_id: str | None = None
    public_route_table_id: str | None = None
    zones: dict[str, NetworkZone] = Field(default_factory=dict)
    subnets: dict[str, ExistingSubnet] = Field(default_factory=dict)
    endpoints: dict[str, str] = Field(default_factory=dict)
    hosted_zone_id: str | None = None
    dns_domain: str | None = None
    last_error: ErrorInfo | None = None
    updated_at: str | None = None


# ---------------------------------------------------------------- clusters


class JoinTokenInfo(Record):
    created_at: str
    expires_at: str
    # How many values the control plane accepts right now (the newest and those still overlapping).
    accepted: int = 1


class ClusterRecord(Record):
    name: str
    uid: str
    generation: int = 1
    phase: str = "PROVISIONING"
    spec: AWSCluster
    version: str
    endpoint: str | None = None
    resources: dict[str, ResourceRef] = Field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    created_by: str | None = None
    # The IAM principal whose API request created the cluster (None: started from the console).
    creator: str | None = None
    current_operation: str | None = None
    last_error: ErrorInfo | None = None
    # The join token's public facts (never its value): when the newest was made, when it expires.
    join_token: JoinTokenInfo | None = None
    # Public PKI facts (never a private key): the cluster CA and the hash joins pin.
    cluster_ca_certificate: str | None = None
    ca_cert_hash: str | None = None
    # Set while an update rolls the control plane: the spec it moves to.
    target_spec: AWSCluster | None = None
    # The machine image pinned per architecture (amd64, arm64) for this cluster's instances.
    images: dict[str, str] = Field(default_factory=dict)
    # Resources the cluster's operations found missing or changed (drift), by logical name.
    drift: dict[str, str] = Field(default_factory=dict)

    def resource_id(self, logical: Resource) -> str | None:
        ref = self.resources.get(logical)
        return ref.id if ref else None

    def to_item(self) -> dict[str, Any]:
        item = super().to_item()
        item["spec"] = dump(self.spec)
        if self.target_spec is not None:
            item["targetSpec"] = dump(self.target_spec)
        return item


class NodePoolRecord(Record):
    name: str
    cluster: str
    spec: AWSNodePool
    phase: str = "PROVISIONING"
    version: str
    resources: dict[str, ResourceRef] = Field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    created_by: str | None = None
    launch_template_id: str | None = None
    launch_template_version: int | None = None
    # The spec hash (`gke:spec`) of the template version new instances launch with.
    launch_spec: str | None = None
    asg_name: str | None = None
    zone: str | None = None
    subnet_id: str | None = None
    ready_nodes: int | None = None
    # Set while an update rolls the pool: the spec it rolls to and how far it got.
    target_spec: AWSNodePool | None = None
    rollout: dict[str, Any] | None = None

    def to_item(self) -> dict[str, Any]:
        item = super().to_item()
        item["spec"] = dump(self.spec)
        if self.target_spec is not None:
            item["targetSpec"] = dump(self.target_spec)
        return item


class EtcdMember(Record):
    """One per control-plane replica: where it lives and the AWS resources of its slot."""

    index: int
    zone: str
    subnet_id: str
    name: str
    peer_name: str
    resources: dict[str, ResourceRef] = Field(default_factory=dict)
    volume_id: str | None = None
    launch_template_id: str | None = None
    launch_template_version: int | None = None
    # The spec hash (`gke:spec`) of the template version the replica's next instance launches
    # with, and the one its running instance passed the health gate with.
    launch_spec: str | None = None
    healthy_spec: str | None = None
    asg_name: str | None = None
    instance_id: str | None = None
    bootstrap: str | None = None
    version: str | None = None
    # Automatic repair: since when (and why) the instance that passed the gate has been seen
    # unhealthy: `{instanceId, since, problem}`; cleared when it is healthy again.
    unhealthy: dict[str, str] | None = None


class EtcdConfig(Record):
    initial_cluster_token: str
    data_dir: str
    members: int
    control_plane_secret: str | None = None
    node_secret: str | None = None


# ---------------------------------------------------------------- operations, events, locks


# Operations whose target is not a cluster, by the kind their workflow records (never by the
# target's text: a cluster may not be named like these, but keys must not depend on that).
SERVICE_TARGET_KINDS = {
    "ProvisionNetwork": ServiceTarget.NETWORK,
    "DeprovisionNetwork": ServiceTarget.NETWORK,
    "SweepOrphans": ServiceTarget.ORPHANS,
}


class Operation(Record):
    operation_id: str
    kind: str
    target: str
    status: str = "RUNNING"
    execution_arn: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    error: str | None = None
    cause: str | None = None
    uid: str | None = None
    # What the operation asked for (e.g. the target version of an upgrade), set by its owner.
    parameters: dict[str, Any] = Field(default_factory=dict)
    # Set while compensation runs after a failure: the operation is not over yet.
    compensating: bool | None = None
    cancel_requested: bool | None = None
    progress: dict[str, Any] | None = None

    @property
    def keyed_target(self) -> Target:
        """What the operation's keys (lock, operations index) are built from."""
        return SERVICE_TARGET_KINDS.get(self.kind, self.target)

    @property
    def on_cluster(self) -> bool:
        return self.kind not in SERVICE_TARGET_KINDS


class Event(Record):
    type: str
    reason: str
    message: str
    involved_object: str
    count: int = 1
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    operation_id: str | None = None
    cluster: str | None = None
    # The cluster incarnation it is about (a name can be deleted and created again).
    uid: str | None = None


class Lock(Record):
    operation_id: str
    execution_arn: str | None = None
    acquired_at: str
    expires_at: str
    took_over_from: str | None = None


class BootstrapReport(Record):
    """What an instance says about itself (docs/contracts.md): at the end of each boot, then
    every minute from its report timer."""

    key: str | None = None
    status: str
    instance_id: str | None = None
    reported_at: str | None = None
    source: str | None = None  # boot | timer
    version: str | None = None
    checks: dict[str, Any] = Field(default_factory=dict)
    certificates: dict[str, str] = Field(default_factory=dict)  # name -> notAfter (ISO 8601 UTC)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed_phase(self) -> str | None:
        if not self.status.startswith("failed"):
            return None
        return self.status.partition(":")[2] or "unknown"


class VersionClaim(Record):
    """Which replica made a cluster-wide change for a Kubernetes version (the kubeadm upgrade,
    the add-ons), once per version; `status` ends `upgraded` / `applied`."""

    instance_id: str
    replica: int | None = None
    status: str
    claimed_at: str | None = None
    done_at: str | None = None


class ClusterAdmins(Record):
    """What the control plane's aws-iam-authenticator maps to the cluster-admin group."""

    generation: int
    role_arns: list[str] = Field(default_factory=list, alias="roleARNs")
    user_arns: list[str] = Field(default_factory=list, alias="userARNs")
    updated_at: str | None = None


class InitClaim(Record):
    """Which instance initialised the cluster (kubeadm init runs once per cluster)."""

    instance_id: str
    replica: int | None = None
    status: str = "initializing"
    claimed_at: str | None = None


class Schedule(Record):
    schedule_id: str
    cluster: str
    # The cluster incarnation the schedule was made for: it never acts on a later cluster of the
    # same name (absent on schedules made before incarnations were recorded).
    uid: str | None = None
    kind: str
    at: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    state: str = "SCHEDULED"
    schedule_arn: str | None = None
    created_at: str | None = None
    fired_at: str | None = None
    cancelled_at: str | None = None
    outcome: str | None = None
    operation_id: str | None = None
