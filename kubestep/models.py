"""Manifests: AWSManagementService, AWSCluster, AWSNodePool (pydantic v2).

Field names mirror GKE on AWS (`anthos-gke`) so its users feel at home. Rules that need one
object only live here; rules across objects (zones vs. the service, version skew) live in
`kubestep.validation`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kubestep import versions

API_VERSION = "kubestep.io/v1"

# DNS-1123 label; 40 characters like GKE cluster names, which keeps every derived AWS name
# (tags, ASG names) far inside AWS limits. AWS names that have tight limits use the uid.
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=40)]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
Zone = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]$")]
VpcId = Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8,17}$")]
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]
SecurityGroupId = Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]
# An EC2 instance type: a family with a generation digit (m5, t4g, c6gn, u-6tb1) and a size
# (https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html); whether it
# exists in the region is checked against DescribeInstanceTypes before anything is created.
INSTANCE_TYPE_PATTERN = re.compile(
    r"^[a-z][a-z-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|xlarge|[0-9]+xlarge|metal(-[0-9]+xl)?)$"
)


def _instance_type(value: str) -> str:
    if len(value) > 64 or not INSTANCE_TYPE_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an EC2 instance type name (a family with its generation, then a size: "
            "m5.large, t4g.medium, c6gn.2xlarge)"
        )
    return value


InstanceType = Annotated[str, AfterValidator(_instance_type)]
KmsKeyArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")]
IamArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:.+$")]
KeyName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
ImageId = Annotated[str, StringConstraints(pattern=r"^ami-[0-9a-f]{8,17}$")]
# An instance profile's name, or its ARN.
_IAM_NAME = r"[A-Za-z0-9_+=,.@-]{1,128}"
InstanceProfile = Annotated[
    str,
    StringConstraints(
        pattern=rf"^({_IAM_NAME}|arn:aws[a-z-]*:iam::[0-9]{{12}}:instance-profile/([A-Za-z0-9_+=,.@-]+/)*{_IAM_NAME})$"
    ),
]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TagValue = Annotated[str, StringConstraints(max_length=256)]
Tags = dict[TagKey, TagValue]

RESERVED_TAG_PREFIXES = ("gke:", "aws:", "kubernetes.io/cluster/")


class Model(BaseModel):
    """Strict by default: an unknown field is a typo the user wants to hear about."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    for key in tags:
        if key.startswith(RESERVED_TAG_PREFIXES):
            raise ValueError(f"tag key {key!r} uses a prefix kubestep reserves ({', '.join(RESERVED_TAG_PREFIXES)})")
    if len(tags) > 40:
        raise ValueError("at most 40 tags (AWS allows 50 per resource and kubestep adds its own)")
    return tags


def _version(value: str, info: ValidationInfo) -> str:
    """A version kubestep can install; a stored record's version only has to be well formed
    (the catalog moves on; a record written under an older catalog must stay readable)."""
    if info.context and info.context.get("stored"):
        versions.parse(value)
        return value
    return versions.check_version(value)


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block with its host bits zero ({exc})") from None
    if network.version != 4:
        raise ValueError(f"{value!r} must be an IPv4 CIDR block")
    return str(network)


def overlapping(blocks: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """Pairs of (field, cidr) that overlap."""
    found = []
    nets = [(field, ipaddress.ip_network(cidr)) for field, cidr in blocks]
    for i, (field_a, a) in enumerate(nets):
        for field_b, b in nets[i + 1 :]:
            if a.overlaps(b):
                found.append((field_a, str(a), field_b, str(b)))
    return found


class Metadata(Model):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------- management service


class DedicatedVPC(Model):
    vpc_cidr_block: str = Field(alias="vpcCIDRBlock")
    availability_zones: list[Zone] = Field(alias="availabilityZones", min_length=1, max_length=6)
    private_subnet_cidr_blocks: list[str] = Field(alias="privateSubnetCIDRBlocks", min_length=1)
    public_subnet_cidr_blocks: list[str] = Field(alias="publicSubnetCIDRBlocks", min_length=1)

    @field_validator("vpc_cidr_block")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        value = _cidr(value)
        prefix = ipaddress.ip_network(value).prefixlen
        if not 16 <= prefix <= 28:
            raise ValueError("a VPC CIDR block must be between /16 and /28 (AWS limit)")
        return value

    @field_validator("private_subnet_cidr_blocks", "public_subnet_cidr_blocks")
    @classmethod
    def _subnet_cidrs(cls, values: list[str]) -> list[str]:
        return [_cidr(v) for v in values]

    @field_validator("availability_zones")
    @classmethod
    def _unique_zones(cls, zones: list[str]) -> list[str]:
        if len(set(zones)) != len(zones):
            raise ValueError("availability zones must be unique")
        return zones

    @model_validator(mode="after")
    def _consistent(self) -> DedicatedVPC:
        zones = len(self.availability_zones)
        problems = []
        if len(self.private_subnet_cidr_blocks) != zones:
            problems.append(f"privateSubnetCIDRBlocks needs one block per availability zone ({zones})")
        if len(self.public_subnet_cidr_blocks) != zones:
            problems.append(f"publicSubnetCIDRBlocks needs one block per availability zone ({zones})")
        vpc = ipaddress.ip_network(self.vpc_cidr_block)
        subnets = [("privateSubnetCIDRBlocks", c) for c in self.private_subnet_cidr_blocks] + [
            ("publicSubnetCIDRBlocks", c) for c in self.public_subnet_cidr_blocks
        ]
        for field, cidr in subnets:
            if not ipaddress.ip_network(cidr).subnet_of(vpc):
                problems.append(f"{field}: {cidr} is not inside vpcCIDRBlock {vpc}")
        for field_a, a, field_b, b in overlapping(subnets):
            problems.append(f"subnet blocks overlap: {field_a} {a} and {field_b} {b}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ExistingVPC(Model):
    vpc_id: VpcId = Field(alias="vpcID")
    subnet_ids: list[SubnetId] = Field(alias="subnetIDs", min_length=1, max_length=6)


class KmsRef(Model):
    kms_key_arn: KmsKeyArn | None = Field(default=None, alias="kmsKeyARN")


class ServiceIAM(Model):
    permissions_boundary: str | None = Field(default=None, alias="permissionsBoundary")


class ManagementServiceSpec(Model):
    region: Region
    dedicated_vpc: DedicatedVPC | None = Field(default=None, alias="dedicatedVPC")
    existing_vpc: ExistingVPC | None = Field(default=None, alias="existingVPC")
    kms_key_arn: KmsKeyArn | None = Field(default=None, alias="kmsKeyARN")
    database_encryption: KmsRef = Field(default_factory=KmsRef, alias="databaseEncryption")
    tags: Tags = Field(default_factory=dict)
    iam: ServiceIAM = Field(default_factory=ServiceIAM)

    _tags = field_validator("tags")(classmethod(lambda cls, v: _check_tags(v)))

    @model_validator(mode="after")
    def _one_network(self) -> ManagementServiceSpec:
        if (self.dedicated_vpc is None) == (self.existing_vpc is None):
            raise ValueError("set exactly one of dedicatedVPC or existingVPC")
        if self.dedicated_vpc:
            wrong = [z for z in self.dedicated_vpc.availability_zones if not z.startswith(self.region)]
            if wrong:
                raise ValueError(f"availability zones {wrong} are not in region {self.region}")
        return self


class AWSManagementService(Model):
    api_version: Literal["kubestep.io/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["AWSManagementService"] = "AWSManagementService"
    metadata: Metadata
    spec: ManagementServiceSpec

    @field_validator("metadata")
    @classmethod
    def _short_name(cls, metadata: Metadata) -> Metadata:
        # The name prefixes the table, functions, state machines and roles; IAM role names
        # allow 64 characters and `<name>-control-plane` must fit.
        if len(metadata.name) > 24:
            raise ValueError("a management service name has at most 24 characters (it prefixes AWS names)")
        return metadata

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def zones(self) -> list[str]:
        return list(self.spec.dedicated_vpc.availability_zones) if self.spec.dedicated_vpc else []


# ---------------------------------------------------------------- volumes


VolumeType = Literal["gp2", "gp3", "io1", "io2"]


class Volume(Model):
    size_gib: int = Field(alias="sizeGiB", ge=1, le=16384)
    volume_type: VolumeType = Field(default="gp3", alias="volumeType")
    iops: int | None = Field(default=None, ge=100, le=256000)
    throughput: int | None = Field(default=None, ge=125, le=1000, description="MiB/s, gp3 only")
    kms_key_arn: KmsKeyArn | None = Field(default=None, alias="kmsKeyARN")

    @model_validator(mode="after")
    def _iops(self) -> Volume:
        if self.volume_type in ("io1", "io2") and self.iops is None:
            raise ValueError(f"iops is required for volumeType {self.volume_type}")
        if self.volume_type == "gp2" and self.iops is not None:
            raise ValueError("iops cannot be set for volumeType gp2")
        if self.volume_type == "gp3" and self.iops is not None and not 3000 <= self.iops <= 16000:
            raise ValueError("gp3 iops must be between 3000 and 16000")
        if self.throughput is not None and self.volume_type != "gp3":
            raise ValueError("throughput can only be set for volumeType gp3")
        return self


def _root_volume() -> Volume:
    return Volume(sizeGiB=32, volumeType="gp3")


def _etcd_volume() -> Volume:
    return Volume(sizeGiB=8, volumeType="gp3")


class Etcd(Model):
    main_volume: Volume = Field(default_factory=_etcd_volume, alias="mainVolume")


# ---------------------------------------------------------------- cluster


class Networking(Model):
    vpc_id: VpcId | None = Field(default=None, alias="vpcID")
    pod_address_cidr_blocks: list[str] = Field(
        default_factory=lambda: ["192.168.0.0/16"], alias="podAddressCIDRBlocks", min_length=1, max_length=1
    )
    service_address_cidr_blocks: list[str] = Field(
        default_factory=lambda: ["10.96.0.0/12"], alias="serviceAddressCIDRBlocks", min_length=1, max_length=1
    )
    service_load_balancer_subnet_ids: list[SubnetId] = Field(default_factory=list, alias="serviceLoadBalancerSubnetIDs")
    node_port_range: str = Field(default="30000-32767", alias="nodePortRange", pattern=r"^\d{1,5}-\d{1,5}$")

    @field_validator("pod_address_cidr_blocks", "service_address_cidr_blocks")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return [_cidr(v) for v in values]

    @model_validator(mode="after")
    def _no_overlap(self) -> Networking:
        blocks = [("podAddressCIDRBlocks", c) for c in self.pod_address_cidr_blocks] + [
            ("serviceAddressCIDRBlocks", c) for c in self.service_address_cidr_blocks
        ]
        clashes = overlapping(blocks)
        if clashes:
            a_field, a, b_field, b = clashes[0]
            raise ValueError(f"{a_field} {a} overlaps {b_field} {b}")
        low, high = (int(p) for p in self.node_port_range.split("-"))
        if not 1 <= low < high <= 65535:
            raise ValueError("nodePortRange must be LOW-HIGH with 1 <= LOW < HIGH <= 65535")
        return self


class ControlPlane(Model):
    version: str
    instance_type: InstanceType = Field(default="m5.large", alias="instanceType")
    key_name: KeyName | None = Field(default=None, alias="keyName")
    subnet_ids: list[SubnetId] | None = Field(default=None, alias="subnetIDs", min_length=1, max_length=5)
    availability_zones: list[Zone] | None = Field(default=None, alias="availabilityZones", min_length=1, max_length=5)
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, alias="securityGroupIDs", max_length=4)
    iam_instance_profile: InstanceProfile | None = Field(default=None, alias="iamInstanceProfile")
    image_id: ImageId | None = Field(default=None, alias="imageID")
    root_volume: Volume = Field(default_factory=_root_volume, alias="rootVolume")
    etcd: Etcd = Field(default_factory=Etcd)
    database_encryption: KmsRef = Field(default_factory=KmsRef, alias="databaseEncryption")
    tags: Tags = Field(default_factory=dict)

    _version = field_validator("version")(classmethod(lambda cls, v, info: _version(v, info)))
    _tags = field_validator("tags")(classmethod(lambda cls, v: _check_tags(v)))

    @model_validator(mode="after")
    def _placement(self) -> ControlPlane:
        if self.subnet_ids is not None and self.availability_zones is not None:
            raise ValueError("set subnetIDs or availabilityZones, not both")
        for field, values in (("subnetIDs", self.subnet_ids), ("availabilityZones", self.availability_zones)):
            if values is not None and len(set(values)) != len(values):
                raise ValueError(f"{field} must be unique")
        return self


class AwsIAMAuth(Model):
    admin_identity_arns: list[IamArn] = Field(default_factory=list, alias="adminIdentityARNs")


class Authentication(Model):
    aws_iam: AwsIAMAuth = Field(default_factory=AwsIAMAuth, alias="awsIAM")


class MaintenanceWindow(Model):
    # Weekly window, UTC: e.g. day "SAT", start "03:00", duration 4 hours.
    day: Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"] = "SAT"
    start_time: str = Field(default="03:00", alias="startTime", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    duration_hours: int = Field(default=4, alias="durationHours", ge=1, le=24)


class UpgradePolicy(Model):
    release_channel: Literal["rapid", "regular", "stable", "none"] = Field(default="regular", alias="releaseChannel")
    maintenance_window: MaintenanceWindow = Field(default_factory=MaintenanceWindow, alias="maintenanceWindow")
    auto_upgrade: bool = Field(default=False, alias="autoUpgrade")


class ClusterSpec(Model):
    region: Region | None = None
    networking: Networking = Field(default_factory=Networking)
    control_plane: ControlPlane = Field(alias="controlPlane")
    authentication: Authentication = Field(default_factory=Authentication)
    upgrade_policy: UpgradePolicy = Field(default_factory=UpgradePolicy, alias="upgradePolicy")


class AWSCluster(Model):
    api_version: Literal["kubestep.io/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["AWSCluster"] = "AWSCluster"
    metadata: Metadata
    spec: ClusterSpec

    @property
    def name(self) -> str:
        return self.metadata.name


# ---------------------------------------------------------------- node pool


class Taint(Model):
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    value: Annotated[str, StringConstraints(max_length=63)] = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


LabelKey = Annotated[
    str, StringConstraints(pattern=r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
]
LabelValue = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


class UpdateSettings(Model):
    max_surge: int = Field(default=1, alias="maxSurge", ge=0, le=100)
    max_unavailable: int = Field(default=0, alias="maxUnavailable", ge=0, le=100)

    @model_validator(mode="after")
    def _progress(self) -> UpdateSettings:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError("maxSurge and maxUnavailable cannot both be 0 (an update could never progress)")
        return self


class NodePoolSpec(Model):
    cluster_name: Name = Field(alias="clusterName")
    version: str
    subnet_id: SubnetId | None = Field(default=None, alias="subnetID")
    availability_zone: Zone | None = Field(default=None, alias="availabilityZone")
    min_node_count: int = Field(alias="minNodeCount", ge=0, le=1000)
    max_node_count: int = Field(alias="maxNodeCount", ge=1, le=1000)
    instance_type: InstanceType = Field(default="m5.large", alias="instanceType")
    max_pods_per_node: int = Field(default=110, alias="maxPodsPerNode", ge=8, le=250)
    root_volume: Volume = Field(default_factory=_root_volume, alias="rootVolume")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    tags: Tags = Field(default_factory=dict)
    key_name: KeyName | None = Field(default=None, alias="keyName")
    iam_instance_profile: InstanceProfile | None = Field(default=None, alias="iamInstanceProfile")
    image_id: ImageId | None = Field(default=None, alias="imageID")
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, alias="securityGroupIDs", max_length=4)
    update_settings: UpdateSettings = Field(default_factory=UpdateSettings, alias="updateSettings")

    _version = field_validator("version")(classmethod(lambda cls, v, info: _version(v, info)))
    _tags = field_validator("tags")(classmethod(lambda cls, v: _check_tags(v)))

    @model_validator(mode="after")
    def _counts(self) -> NodePoolSpec:
        if self.min_node_count > self.max_node_count:
            raise ValueError(f"minNodeCount ({self.min_node_count}) must be <= maxNodeCount ({self.max_node_count})")
        if self.subnet_id is not None and self.availability_zone is not None:
            raise ValueError("set subnetID or availabilityZone, not both")
        return self


class AWSNodePool(Model):
    api_version: Literal["kubestep.io/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["AWSNodePool"] = "AWSNodePool"
    metadata: Metadata
    spec: NodePoolSpec

    @property
    def name(self) -> str:
        return self.metadata.name


# ---------------------------------------------------------------- requests


class CreateClusterRequest(Model):
    """`CreateCluster` execution input and `POST /v1/clusters` body."""

    cluster: AWSCluster
    node_pools: list[AWSNodePool] = Field(default_factory=list, alias="nodePools", max_length=20)
    rollback_on_failure: bool = Field(default=True, alias="rollbackOnFailure")

    @model_validator(mode="after")
    def _pools(self) -> CreateClusterRequest:
        names = [p.name for p in self.node_pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node pool names must be unique (repeated: {', '.join(dupes)})")
        return self


class DeleteClusterRequest(Model):
    """`DeleteCluster` execution input."""

    cluster_name: Name = Field(alias="clusterName")
    keep_etcd_volumes: bool = Field(default=False, alias="keepEtcdVolumes")


class NetworkRequest(Model):
    """`ProvisionNetwork` / `DeprovisionNetwork` execution input: `{}` (the network is the
    management service's configuration)."""


def dump(model: BaseModel) -> dict[str, Any]:
    """The manifest form: camelCase aliases, defaults filled in, nothing unset omitted."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
