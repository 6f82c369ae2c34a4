"""Request and response models of the management API: they validate input (through Powertools'
OpenAPI validation) and write the OpenAPI document. Responses mirror `kubestep.views` and
`kubestep.operations.operation_view`; their field names are the JSON names (camelCase)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from kubestep import versions
from kubestep.models import (
    API_VERSION,
    NAME_PATTERN,
    AWSCluster,
    AWSNodePool,
    ClusterSpec,
    Model,
    NodePoolSpec,
    Taint,
    UpdateSettings,
)

ClusterName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=40)]
OperationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,80}$")]

# ---------------------------------------------------------------- requests

# Documentation examples, valid for any management service: with no zones or subnets named, the
# control plane takes the service's zones (dedicated VPC) or its first subnet (existing VPC).
EXAMPLE_NODE_POOL: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "AWSNodePool",
    "metadata": {"name": "general"},
    "spec": {"clusterName": "example", "version": "1.32.4", "minNodeCount": 1, "maxNodeCount": 3},
}
EXAMPLE_CREATE: dict[str, Any] = {
    "cluster": {
        "apiVersion": API_VERSION,
        "kind": "AWSCluster",
        "metadata": {"name": "example"},
        "spec": {"controlPlane": {"version": "1.32.4", "instanceType": "m5.large"}},
    },
    "nodePools": [EXAMPLE_NODE_POOL],
    "rollbackOnFailure": True,
}


class CreateClusterBody(Model):
    """`POST /v1/clusters`: `CreateClusterRequest` without `operationId` and `uid`, which the API
    chooses itself (a caller-chosen uid could collide with an old execution's reserved name)."""

    cluster: AWSCluster
    node_pools: list[AWSNodePool] = Field(default_factory=list, alias="nodePools", max_length=20)
    rollback_on_failure: bool = Field(
        default=True,
        alias="rollbackOnFailure",
        description="Delete what the operation created when it fails (false keeps it for debugging).",
    )


class UpgradeClusterBody(Model):
    """`POST /v1/clusters/{name}/upgrade`: the control plane's target version."""

    version: str = Field(description="1.MINOR.PATCH; one minor version above the current one at most")

    _version = field_validator("version")(classmethod(lambda cls, v: versions.check_version(v)))


class SweepOrphansBody(Model):
    """`POST /v1/orphans:sweep`: list (and unless a dry run, delete) what this service tagged for
    clusters whose record is gone."""

    dry_run: bool = Field(default=True, alias="dryRun", description="List only; delete nothing")
    grace_period_seconds: int = Field(
        default=3600,
        alias="gracePeriodSeconds",
        ge=0,
        le=30 * 24 * 3600,
        description="Only resources older than this are deleted",
    )


class UpdateNodePoolBody(Model):
    """`PATCH /v1/clusters/{name}/nodepools/{pool}`: the fields a node pool can change in place."""

    version: str | None = None
    min_node_count: int | None = Field(default=None, alias="minNodeCount", ge=0, le=1000)
    max_node_count: int | None = Field(default=None, alias="maxNodeCount", ge=1, le=1000)
    labels: dict[str, str] | None = None
    taints: list[Taint] | None = None
    update_settings: UpdateSettings | None = Field(default=None, alias="updateSettings")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        return None if value is None else versions.check_version(value)


# ---------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    field: str = Field(description="The offending field's path, e.g. `cluster.spec.controlPlane.version`")
    rule: str = Field(description="The rule it breaks")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `InvalidSpec`, `NotFound`, `LockHeld`")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    operationId: str | None = Field(default=None, description="`LockHeld`: the operation holding the cluster's lock")


class ErrorResponse(BaseModel):
    error: ErrorBody


class GatewayError(BaseModel):
    """What API Gateway itself answers before the function runs (IAM auth, throttling)."""

    message: str | None = Field(default=None, description="e.g. `Missing Authentication Token`")
    Message: str | None = Field(default=None, description="IAM denials: `User: ... is not authorized ...`")


# ---------------------------------------------------------------- operations


class Operation(BaseModel):
    """A workflow execution started on a caller's behalf; poll `statusUrl` until it ends."""

    id: str
    kind: str = Field(description="The workflow: CreateCluster, DeleteCluster, …")
    target: str | None = Field(default=None, description="The cluster the operation works on")
    status: str = Field(description="RUNNING until the execution ends: SUCCEEDED, FAILED, TIMED_OUT or ABORTED")
    executionArn: str | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    error: str | None = None
    cause: str | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="What the operation found or changed (RepairCluster, SweepOrphans)"
    )
    statusUrl: str


# ---------------------------------------------------------------- clusters and node pools


class _Open(BaseModel):
    # Status objects may gain fields; clients must ignore what they do not know.
    model_config = ConfigDict(extra="allow")


class ObjectMeta(_Open):
    name: str
    uid: str | None = None
    createdAt: str | None = None


class LastError(_Open):
    error: str | None = None
    message: str | None = None
    operationId: str | None = None


class NodePoolStatus(_Open):
    phase: str | None = None
    version: str | None = None
    autoScalingGroup: str | None = None
    launchTemplateId: str | None = None
    zone: str | None = None
    subnetId: str | None = None
    readyNodes: int | None = None


class NodePool(BaseModel):
    apiVersion: Literal["kubestep.io/v1"] = API_VERSION
    kind: Literal["AWSNodePool"] = "AWSNodePool"
    metadata: ObjectMeta
    spec: NodePoolSpec
    status: NodePoolStatus


class Replica(_Open):
    index: int
    zone: str | None = None
    subnetId: str | None = None
    autoScalingGroup: str | None = None
    launchTemplateId: str | None = None
    instanceId: str | None = None
    etcdVolumeId: str | None = None
    bootstrap: str | None = Field(default=None, description="The instance's own report: `ok` or `failed:<phase>`")


class ControlPlaneStatus(_Open):
    replicas: list[Replica] = Field(default_factory=list)
    etcd: dict[str, Any] | None = None


class ClusterStatus(_Open):
    phase: str | None = None
    endpoint: str | None = Field(default=None, description="The control plane's internal NLB DNS name (port 443)")
    version: str | None = None
    uid: str | None = None
    clusterCaCertificate: str | None = Field(
        default=None,
        description="The cluster CA certificate (PEM; public): what `kubestep get-credentials` writes as the "
        "kubeconfig's certificate-authority-data. Absent until the create has generated the cluster's PKI",
    )
    generation: int | None = None
    currentOperation: str | None = None
    lastError: LastError | None = None
    resources: dict[str, str] = Field(default_factory=dict, description="Logical name -> AWS id")
    drift: dict[str, str] = Field(
        default_factory=dict, description="What the last repair found changed or missing (`POST …:repair`)"
    )
    controlPlane: ControlPlaneStatus | None = Field(default=None, description="`GET /clusters/{name}` only")
    nodePools: list[NodePool] | None = Field(default=None, description="`GET /clusters/{name}` only")


class Cluster(BaseModel):
    apiVersion: Literal["kubestep.io/v1"] = API_VERSION
    kind: Literal["AWSCluster"] = "AWSCluster"
    metadata: ObjectMeta
    spec: ClusterSpec
    status: ClusterStatus


class ClusterList(BaseModel):
    items: list[Cluster]
    nextToken: str | None = Field(default=None, description="Pass as `nextToken` for the next page")


class NodePoolList(BaseModel):
    items: list[NodePool]


class Event(BaseModel):
    type: str | None = Field(default=None, description="Normal or Warning")
    reason: str | None = None
    message: str | None = None
    involvedObject: str | None = None
    count: int = 1
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    operationId: str | None = None


class EventList(BaseModel):
    items: list[Event]
