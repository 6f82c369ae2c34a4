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
    Authentication,
    AWSCluster,
    AWSNodePool,
    BackupPolicy,
    ClusterManagement,
    ClusterSpec,
    ControlPlaneChanges,
    Model,
    NodePoolSpec,
    UpgradePolicy,
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
    "spec": {"clusterName": "example", "version": "1.35.4", "minNodeCount": 1, "maxNodeCount": 3},
}
EXAMPLE_CREATE: dict[str, Any] = {
    "cluster": {
        "apiVersion": API_VERSION,
        "kind": "AWSCluster",
        "metadata": {"name": "example"},
        "spec": {"controlPlane": {"version": "1.35.4", "instanceType": "m5.large"}},
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
    """`POST /v1/clusters/{name}/upgrade`: the control plane's target version, optionally the node
    pools after it, optionally at a later time (an EventBridge Scheduler one-time schedule)."""

    version: str = Field(description="1.MINOR.PATCH; one minor version above the current one at most, never down")
    node_pools: Literal["all"] | list[Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=40)]] | None = (
        Field(
            default=None,
            alias="nodePools",
            max_length=20,
            description='After the control plane, upgrade these node pools to its version ("all" or names)',
        )
    )
    at: str | None = Field(
        default=None,
        max_length=40,
        description="Start the upgrade at this time (ISO 8601 with a zone, e.g. 2026-12-01T03:00:00Z) instead of now; "
        "answers 201 with the schedule",
    )

    _version = field_validator("version")(classmethod(lambda cls, v: versions.check_version(v)))


class SweepOrphansBody(Model):
    """`POST /v1/orphans:sweep`: list (and unless a dry run, delete) what this service tagged for
    clusters whose record is gone."""

    # Strict: JSON `false` is not 0 seconds, nor `0` a boolean.
    dry_run: bool = Field(default=True, alias="dryRun", strict=True, description="List only; delete nothing")
    grace_period_seconds: int = Field(
        default=3600,
        alias="gracePeriodSeconds",
        strict=True,
        ge=0,
        le=30 * 24 * 3600,
        description="Only resources older than this are deleted",
    )


class UpdateClusterBody(Model):
    """`PATCH /v1/clusters/{name}`: control-plane changes (each rolls the replicas one at a time),
    a new upgrade policy and new administrators (both in place), and optionally the node pools'
    version afterwards."""

    control_plane: ControlPlaneChanges = Field(
        default_factory=ControlPlaneChanges, alias="controlPlane", description="Control-plane changes"
    )
    upgrade_policy: UpgradePolicy | None = Field(
        default=None, alias="upgradePolicy", description="A new upgrade policy"
    )
    authentication: Authentication | None = Field(
        default=None,
        description="New cluster administrators (`awsIAM.adminIdentityARNs`, replace all): in place, no instance "
        "is replaced",
    )
    management: ClusterManagement | None = Field(
        default=None, description="Automatic repair of the control plane (`autoRepair`): in place"
    )
    backup: BackupPolicy | None = Field(
        default=None, description="A new backup interval and retention: in place, no instance is replaced"
    )
    node_pools: Literal["all"] | list[Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=40)]] | None = (
        Field(
            default=None,
            alias="nodePools",
            max_length=20,
            description="Node pools to move to the control plane's version",
        )
    )


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
    uid: str | None = Field(
        default=None,
        description="The uid of the cluster incarnation it works on (a cluster deleted and created again under "
        "the same name has another)",
    )
    nodePool: str | None = Field(default=None, description="The node pool a node-pool operation works on")
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
    targetVersion: str | None = Field(
        default=None, description="While an update rolls the pool: the Kubernetes version it rolls to"
    )


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
    version: str | None = Field(
        default=None, description="The Kubernetes version the replica's instance reported it installed"
    )
    launchTemplateVersion: int | None = Field(
        default=None, description="The launch template version the replica's next instance launches with"
    )
    updatePending: bool | None = Field(
        default=None,
        description="True while its launch template carries a spec its running instance has not passed the "
        "health gate with: an update is replacing it, or will",
    )
    deleting: bool = Field(
        default=False, description="Its create is rolling back: the replica's resources are being deleted"
    )
    reportedAt: str | None = Field(default=None, description="When the instance last reported (every minute)")
    adminsGeneration: int | None = Field(
        default=None, description="The administrators generation its aws-iam-authenticator serves"
    )
    adminsError: str | None = Field(
        default=None, description="Why its last read of the administrators failed (it serves adminsGeneration still)"
    )
    certificatesExpireAt: str | None = Field(
        default=None, description="When the first of its certificates expires, as it reports them"
    )


class ClusterAdminsStatus(_Open):
    identityARNs: list[str] = Field(
        default_factory=list, description="`spec.authentication.awsIAM.adminIdentityARNs`: cluster-admin"
    )
    creator: str | None = Field(
        default=None, description="The IAM principal whose API request created the cluster (absent: console)"
    )
    generation: int | None = Field(
        default=None, description="The administrators item's generation (`GET /clusters/{name}` only)"
    )
    appliedBy: int | None = Field(
        default=None, description="How many replicas report serving that generation (`GET /clusters/{name}` only)"
    )


class JoinTokenStatus(_Open):
    createdAt: str | None = Field(default=None, description="When the newest join token was made")
    expiresAt: str | None = Field(default=None, description="When the newest join token expires")
    accepted: int | None = Field(default=None, description="How many values the control plane accepts now")
    rotatesAfter: str | None = Field(default=None, description="When the upgrade planner makes the next one")


class CertificateExpiry(_Open):
    name: str = Field(description="As `kubeadm certs check-expiration` names it (`apiserver`, `admin.conf`, `ca`, …)")
    expiresAt: str
    replica: int = Field(description="The replica whose copy expires first")
    daysLeft: int


class ControlPlaneStatus(_Open):
    replicas: list[Replica] = Field(default_factory=list)
    etcd: dict[str, Any] | None = None


class ClusterStatus(_Open):
    phase: str | None = None
    endpoint: str | None = Field(default=None, description="The control plane's internal NLB DNS name (port 443)")
    version: str | None = None
    targetVersion: str | None = Field(
        default=None, description="While an update rolls the control plane: the Kubernetes version it moves to"
    )
    uid: str | None = None
    vpcId: str | None = Field(default=None, description="The VPC the cluster runs in (`GET /clusters/{name}` only)")
    clusterCaCertificate: str | None = Field(
        default=None,
        description="The cluster CA certificate (PEM; public): what `kubestep get-credentials` writes as the "
        "kubeconfig's certificate-authority-data. Absent until the create has generated the cluster's PKI",
    )
    generation: int | None = None
    currentOperation: str | None = None
    rollingBack: bool = Field(
        default=False, description="The current operation failed or was cancelled and deletes what it created"
    )
    lastError: LastError | None = None
    resources: dict[str, str] = Field(default_factory=dict, description="Logical name -> AWS id")
    drift: dict[str, str] = Field(
        default_factory=dict, description="What the last repair found changed or missing (`POST …:repair`)"
    )
    admins: ClusterAdminsStatus | None = Field(default=None, description="Who is cluster-admin, and where it applies")
    joinToken: JoinTokenStatus | None = Field(
        default=None, description="The join token's times (never its value); rotated daily by the upgrade planner"
    )
    certificates: list[CertificateExpiry] = Field(
        default_factory=list,
        description="The control plane's certificates as the replicas report them, the soonest expiry first",
    )
    controlPlane: ControlPlaneStatus | None = Field(
        default=None, description="The replicas (`etcd`: `GET /clusters/{name}` only)"
    )
    nodePools: list[NodePool] | None = None


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
    cluster: str | None = Field(default=None, description="The cluster whose events these are")
    type: str | None = Field(default=None, description="Normal or Warning")
    reason: str | None = None
    message: str | None = None
    involvedObject: str | None = Field(
        default=None, description="`AWSCluster/<cluster>` or `AWSNodePool/<pool>` (a pool of `cluster`)"
    )
    count: int = 1
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    operationId: str | None = None
    uid: str | None = Field(
        default=None,
        description="The uid of the cluster incarnation the event is about (events outlive a deleted cluster)",
    )


class EventList(BaseModel):
    items: list[Event]


class Backup(BaseModel):
    backupId: str = Field(description="The snapshot's id: its UTC time (`20261205T101500Z`)")
    takenAt: str
    revision: int = Field(description="etcd's revision in the snapshot")
    size: int = Field(description="Bytes")
    sha256: str
    kubernetesVersion: str | None = None
    location: str = Field(description="`s3://<bucket>/backups/<uid>/<id>.db`")
    uid: str = Field(description="The cluster incarnation it belongs to (restored only into it)")
    clusterDeleted: bool = Field(
        default=False, description="Its cluster incarnation is deleted (the backup outlived it)"
    )
    clusterDeletedAt: str | None = Field(default=None, description="When its cluster incarnation was deleted")


class EarlierIncarnation(BaseModel):
    uid: str = Field(description="A deleted cluster of the same name whose backups were kept")
    createdAt: str | None = None
    deletedAt: str
    backups: int = Field(description="How many backups it left")
    listed: bool = Field(description="Its backups are among `items` (allIncarnations=true, or no cluster exists)")


class BackupList(BaseModel):
    items: list[Backup] = Field(
        description="Newest first: the existing cluster's, then (when listed) each deleted incarnation's"
    )
    uid: str | None = Field(default=None, description="The existing cluster's incarnation (none: it is deleted)")
    earlierIncarnations: list[EarlierIncarnation] = Field(
        default_factory=list, description="Deleted clusters of the name that left backups, last deleted first"
    )
    interval: str | None = Field(default=None, description="Time between snapshots (the spec's `backup.interval`)")
    retention: str | None = Field(default=None, description="How long S3 keeps each (`backup.retention`)")
    requestedAt: str | None = Field(default=None, description="When a backup was last asked for")
    late: bool = Field(description="The newest backup is older than twice the interval (a Warning event says so)")


class RestoreClusterBody(Model):
    """`POST /v1/clusters/{name}/restore`: the backup to restore the cluster's etcd from."""

    backup_id: str = Field(
        alias="backupId",
        strict=True,
        max_length=60,
        description="One of the cluster's backups (`kubestep get backups`): its id (`20261205T101500Z`), or "
        "`<uid>/<id>`; a backup of another cluster incarnation is refused",
    )


class RestoreReplica(BaseModel):
    replica: int
    autoScalingGroup: str | None = None
    instanceId: str | None = Field(default=None, description="The instance that stops")
    etcdVolume: str | None = Field(default=None, description="Kept: the snapshot is restored on it")
    action: str


class RestoreClusterDryRun(BaseModel):
    dryRun: Literal[True] = True
    kind: Literal["RestoreCluster"] = "RestoreCluster"
    target: str
    uid: str
    backup: Backup = Field(description="The snapshot restored")
    replicas: list[RestoreReplica] = Field(description="Every replica stops and starts again on the snapshot")
    clusterToken: str
    nodePools: list[str]
    nodes: str = Field(description="Which nodes are replaced")
    message: str


class BackupRequested(BaseModel):
    cluster: str
    uid: str
    requestedAt: str
    message: str


# ---------------------------------------------------------------- operations: lists, progress, dry runs


class OperationList(BaseModel):
    items: list[Operation]
    nextToken: str | None = Field(default=None, description="Pass as `nextToken` for the next page")


class Step(BaseModel):
    index: int = Field(description="1-based position in the operation's progress")
    type: Literal["done", "wait", "error"] = Field(
        description="`done`: a step finished; `wait`: a polling step waits for a resource (shown once per "
        "distinct wait); `error`: a step or the execution failed"
    )
    step: str | None = Field(default=None, description="The state's name")
    message: str
    at: str = Field(description="When (ISO 8601 UTC)")
    elapsedSeconds: float = Field(description="Since the execution started")
    seconds: float | None = Field(default=None, description="`done`: how long the step took")
    map: str | None = Field(default=None, description="The Map state whose iteration ran the step (innermost)")
    iteration: int | None = Field(default=None, description="The Map iteration's index (0-based)")
    item: str | None = Field(
        default=None, description="What the iteration works on, from its input: `replica 0`, `nodePool general`"
    )


class MapRun(BaseModel):
    map: str = Field(description="The Map state's name")
    within: str | None = Field(default=None, description="The outer iteration's item, for a Map inside a Map")
    length: int | None = Field(default=None, description="How many items it iterates over")
    started: int
    succeeded: int
    failed: int = Field(description="Iterations that failed or were aborted")


class MapIteration(BaseModel):
    map: str | None = None
    iteration: int | None = Field(default=None, description="The iteration's index (0-based)")
    item: str | None = Field(default=None, description="What it works on: `replica 0`, `nodePool general`")
    within: str | None = Field(default=None, description="The outer iteration's item, for a Map inside a Map")
    state: Literal["running", "succeeded", "failed", "aborted"]
    startedAt: str | None = None
    endedAt: str | None = None
    startedSeconds: float | None = Field(default=None, description="Since the execution started")
    endedSeconds: float | None = Field(default=None, description="Since the execution started")


class ActiveStep(BaseModel):
    step: str = Field(description="The state's name")
    since: str = Field(description="When it was entered (ISO 8601 UTC)")
    sinceSeconds: float = Field(description="Since the execution started")
    map: str | None = None
    iteration: int | None = None
    item: str | None = None


class OperationSteps(BaseModel):
    operationId: str
    status: str
    timeScale: float = Field(
        description="1 on AWS; in the local runtime, the factor its waits, retries and boots are compressed by"
    )
    items: list[Step]
    next: int = Field(description="Pass as `after` to get only the items after these")
    startedAt: str | None = Field(default=None, description="When the execution started (ISO 8601 UTC)")
    maps: list[MapRun] = Field(
        default_factory=list, description="Each run of a Map state, with its item count (the whole history)"
    )
    parallels: list[str] = Field(
        default_factory=list,
        description="The Parallel states entered (the whole history): their branches' steps are their time",
    )
    iterations: list[MapIteration] = Field(
        default_factory=list,
        description="Every Map iteration with its state now (the whole history): final as soon as it ended",
    )
    activeSteps: list[ActiveStep] = Field(
        default_factory=list, description="The steps running now (entered, not yet exited)"
    )
    historyEnded: bool = Field(
        default=True,
        description="The execution's history has its end: the last step's exit may come after the operation's "
        "status says it ended",
    )


class CreateClusterDryRun(BaseModel):
    dryRun: Literal[True] = True
    kind: Literal["CreateCluster"] = "CreateCluster"
    target: str = Field(description="The cluster's name")
    cluster: AWSCluster = Field(description="The cluster as it would be created (defaults filled in)")
    nodePools: list[AWSNodePool]
    rollbackOnFailure: bool


class DeleteClusterDryRun(BaseModel):
    dryRun: Literal[True] = True
    kind: Literal["DeleteCluster"] = "DeleteCluster"
    target: str
    uid: str | None = None
    keepEtcdVolumes: bool
    deleteBackups: bool = False
    backups: int = Field(
        default=0, description="The cluster's etcd backups: deleted with it when deleteBackups, else kept"
    )
    nodePools: list[str] = Field(description="Node pools deleted with the cluster")
    resources: dict[str, str] = Field(default_factory=dict, description="Logical name -> AWS id, deleted")


class VersionInfo(BaseModel):
    kubestep: str = Field(description="The management service's kubestep version")
    apiVersion: str = Field(description="The manifests' apiVersion")
    managementService: str
    region: str
    kubernetesVersions: list[str] = Field(description="The Kubernetes minor versions clusters can run")
    timeScale: float = Field(description="1 on AWS; the local runtime's time scale otherwise")


class NodePoolDryRun(_Open):
    dryRun: Literal[True] = True
    kind: str = Field(description="CreateNodePool, UpdateNodePool or DeleteNodePool")
    target: str = Field(description="The cluster")
    nodePool: Any = Field(description="The pool (create: its manifest; update/delete: its name)")
    rolls: bool | None = Field(default=None, description="update: whether the change replaces the pool's instances")
    changes: list[str] | None = Field(default=None, description="update: each changed field, `~ path: old -> new`")


class UpdateClusterDryRun(_Open):
    dryRun: Literal[True] = True
    kind: Literal["UpdateCluster"] = "UpdateCluster"
    target: str
    rolls: bool = Field(description="Whether the control plane's replicas are replaced (one at a time)")
    version: str = Field(description="The control plane's version afterwards")
    changes: list[str]
    nodePools: list[str] = Field(description="Node pools upgraded to that version afterwards")


class Schedule(BaseModel):
    id: str = Field(description="The EventBridge Scheduler schedule's name")
    cluster: str
    kind: str = Field(description="The workflow it starts (UpdateCluster)")
    at: str = Field(description="When it fires (ISO 8601 UTC)")
    state: Literal["SCHEDULED", "FIRED", "CANCELLED"]
    version: str | None = None
    nodePools: Any = None
    createdAt: str | None = None
    firedAt: str | None = None
    outcome: str | None = Field(default=None, description="What the run did: `started`, or `skipped: <why>`")
    operationId: str | None = Field(default=None, description="The UpdateCluster operation it started")


class ScheduleList(BaseModel):
    items: list[Schedule]


class ChannelInfo(BaseModel):
    channel: Literal["rapid", "regular", "stable"]
    minor: str
    defaultVersion: str


class MinorInfo(BaseModel):
    minor: str
    defaultVersion: str = Field(description="The newest patch of the minor")
    endOfLife: str | None = None


class ServerConfig(BaseModel):
    """GKE's getAwsServerConfig: the versions kubestep installs and what each channel follows."""

    asOf: str = Field(description="When the catalog was last reviewed")
    validVersions: list[str] = Field(description="Every installable version, newest first")
    minors: list[MinorInfo]
    channels: list[ChannelInfo]
