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
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from kubestep import backups, cluster_admins, versions
from kubestep.errors import shown
from kubestep.names import NAME_PATTERN

API_VERSION = "kubestep.io/v1"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=40)]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
# A zone's name (us-east-1a) or its ID (use1-az1). Names are shuffled per account; IDs name the same
# physical zone in every account ("AZ IDs for your AWS resources", AWS RAM User Guide).
ZONE_NAME_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]$"
ZONE_ID_PATTERN = r"^[a-z]{3,6}\d-az\d{1,2}$"
Zone = Annotated[str, StringConstraints(pattern=f"{ZONE_NAME_PATTERN}|{ZONE_ID_PATTERN}")]
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
            f"{shown(value)} is not an EC2 instance type name (a family with its generation, then a size: "
            "m5.large, t4g.medium, c6gn.2xlarge)"
        )
    return value


InstanceType = Annotated[str, AfterValidator(_instance_type)]
KmsKeyArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")]
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
    """Strict: an unknown field is a typo the user wants to hear about, and a value of the wrong
    JSON type is refused, not coerced (`true` is not 1 node, `"3"` not 3, `"false"` not false)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True, strict=True)


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
    except ValueError:
        raise ValueError(f"{shown(value)} is not a CIDR block with its host bits zero") from None
    if network.version != 4:
        raise ValueError(f"{shown(value)} must be an IPv4 CIDR block")
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
    name: Name = Field(
        description=(
            "The object's name: a DNS-1123 label (lower-case letters, digits and '-', starting with a letter), "
            "at most 40 characters. A cluster's name can be reused as soon as it is deleted: AWS names use the "
            "cluster's uid."
        )
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Free-form key/value labels kept with the object (not applied to AWS resources; use `tags` for those)."
        ),
    )


# ---------------------------------------------------------------- management service


# Region words as AWS abbreviates them in zone IDs (us-east-1 -> use1, ap-northeast-1 -> apne1,
# us-gov-west-1 -> usgw1): the published AZ ID list follows this rule.
_ZONE_ID_WORDS = {"gov": "g", "north": "n", "south": "s", "east": "e", "west": "w", "central": "c"}
_ZONE_ID_WORDS |= {
    f"{a}{b}": _ZONE_ID_WORDS[a] + _ZONE_ID_WORDS[b] for a in ("north", "south") for b in ("east", "west")
}


def is_zone_id(zone: str) -> bool:
    return re.fullmatch(ZONE_ID_PATTERN, zone) is not None


def zone_in_region(zone: str, region: str) -> bool:
    """A zone name starts with its region; a zone ID with the region's abbreviation (a region
    whose words have no known abbreviation is not second-guessed)."""
    if not is_zone_id(zone):
        return zone.startswith(region) and len(zone) == len(region) + 1
    country, *words, number = region.split("-")
    if any(w not in _ZONE_ID_WORDS for w in words):
        return True
    return zone.split("-az")[0] == country + "".join(_ZONE_ID_WORDS[w] for w in words) + number


class DedicatedVPC(Model):
    vpc_cidr_block: str = Field(
        alias="vpcCIDRBlock", description="The VPC's IPv4 CIDR block, /16 to /28 (AWS limit), e.g. 10.0.0.0/16."
    )
    availability_zones: list[Zone] = Field(
        alias="availabilityZones",
        min_length=1,
        max_length=6,
        description=(
            "The zones of the VPC (1 to 6), by name (us-east-1a) or by zone ID (use1-az1, the same physical zone "
            "in every account; names are shuffled per account): one private and one public subnet each; a "
            "cluster's control plane puts one replica per zone. Clusters name the zones the same way."
        ),
    )
    private_subnet_cidr_blocks: list[str] = Field(
        alias="privateSubnetCIDRBlocks",
        min_length=1,
        description=(
            "One CIDR block per availability zone, inside vpcCIDRBlock: the private subnets of control planes "
            "and nodes."
        ),
    )
    public_subnet_cidr_blocks: list[str] = Field(
        alias="publicSubnetCIDRBlocks",
        min_length=1,
        description=(
            "One CIDR block per availability zone, inside vpcCIDRBlock: the public subnets of the NAT gateways."
        ),
    )

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
    vpc_id: VpcId = Field(
        alias="vpcID", description="The id of the VPC to use (vpc-...); kubestep creates no network in it."
    )
    subnet_ids: list[SubnetId] = Field(
        alias="subnetIDs",
        min_length=1,
        max_length=6,
        description=(
            "Private subnets of that VPC (1 to 6) for control planes and nodes; they need a route to the "
            "internet (NAT) or VPC endpoints."
        ),
    )


class KmsRef(Model):
    kms_key_arn: KmsKeyArn | None = Field(
        default=None,
        alias="kmsKeyARN",
        description="ARN of the KMS key (or alias) to encrypt with; default: the management service's key.",
    )


class ServiceIAM(Model):
    permissions_boundary: str | None = Field(
        default=None,
        alias="permissionsBoundary",
        description="ARN of an IAM managed policy set as permissions boundary on every role kubestep creates.",
    )


class Upgrades(Model):
    """How the management service schedules automatic upgrades."""

    max_concurrent: int = Field(
        default=3,
        alias="maxConcurrent",
        ge=1,
        le=50,
        description="At most this many clusters upgrade at once across the fleet (default 3).",
    )
    planner_schedule: str = Field(
        default="rate(15 minutes)",
        alias="plannerSchedule",
        pattern=r"^(rate\(\d+ (minute|minutes|hour|hours)\)|cron\(.+\))$",
        description="How often the upgrade planner looks for due upgrades (an EventBridge schedule expression).",
    )


class ManagementServiceSpec(Model):
    region: Region = Field(description="The AWS region of the management service and all its clusters, e.g. us-east-1.")
    dedicated_vpc: DedicatedVPC | None = Field(
        default=None,
        alias="dedicatedVPC",
        description="Create and own a VPC for the clusters (set this or existingVPC).",
    )
    existing_vpc: ExistingVPC | None = Field(
        default=None,
        alias="existingVPC",
        description="Use a VPC and subnets that already exist (set this or dedicatedVPC).",
    )
    kms_key_arn: KmsKeyArn | None = Field(
        default=None,
        alias="kmsKeyARN",
        description=(
            "ARN of the KMS key for the service's table, secrets and volumes; default: a key the stack creates."
        ),
    )
    database_encryption: KmsRef = Field(
        default_factory=KmsRef,
        alias="databaseEncryption",
        description="The KMS key that encrypts the service's DynamoDB table.",
    )
    tags: Tags = Field(
        default_factory=dict,
        description=(
            "AWS tags added to every resource of the service and its clusters (at most 40; prefixes gke:, aws:,"
            " kubernetes.io/cluster/ are reserved)."
        ),
    )
    iam: ServiceIAM = Field(default_factory=ServiceIAM, description="IAM settings of the roles the service creates.")
    upgrades: Upgrades = Field(default_factory=Upgrades, description="How automatic upgrades are scheduled.")

    _tags = field_validator("tags")(classmethod(lambda cls, v: _check_tags(v)))

    @model_validator(mode="after")
    def _one_network(self) -> ManagementServiceSpec:
        if (self.dedicated_vpc is None) == (self.existing_vpc is None):
            raise ValueError("set exactly one of dedicatedVPC or existingVPC")
        if self.dedicated_vpc:
            wrong = [z for z in self.dedicated_vpc.availability_zones if not zone_in_region(z, self.region)]
            if wrong:
                raise ValueError(f"availability zones {wrong} are not in region {self.region}")
        return self


class AWSManagementService(Model):
    api_version: Literal["kubestep.io/v1"] = Field(
        default=API_VERSION, alias="apiVersion", description="Always kubestep.io/v1."
    )
    kind: Literal["AWSManagementService"] = Field(
        default="AWSManagementService", description="Always AWSManagementService."
    )
    metadata: Metadata = Field(
        description="The service's name (at most 24 characters: it prefixes the stack's AWS names)."
    )
    spec: ManagementServiceSpec = Field(description="Where the service runs and how its network is made.")

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
    size_gib: int = Field(alias="sizeGiB", ge=1, le=16384, description="Size in GiB (1 to 16384).")
    volume_type: VolumeType = Field(
        default="gp3", alias="volumeType", description="EBS volume type: gp2, gp3 (default), io1 or io2."
    )
    iops: int | None = Field(
        default=None,
        ge=100,
        le=256000,
        description="Provisioned IOPS: required for io1/io2, 3000-16000 for gp3, not allowed for gp2.",
    )
    throughput: int | None = Field(
        default=None, ge=125, le=1000, description="Throughput in MiB/s (125 to 1000), gp3 only."
    )
    kms_key_arn: KmsKeyArn | None = Field(
        default=None,
        alias="kmsKeyARN",
        description="ARN of the KMS key that encrypts the volume; default: the management service's key.",
    )

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
    main_volume: Volume = Field(
        default_factory=_etcd_volume,
        alias="mainVolume",
        description="Each replica's etcd data volume (default 8 GiB gp3); it outlives instance replacements.",
    )


# ---------------------------------------------------------------- cluster


class Networking(Model):
    vpc_id: VpcId | None = Field(
        default=None,
        alias="vpcID",
        description="Leave empty with a dedicated VPC; with an existing VPC, the service's VPC id.",
    )
    pod_address_cidr_blocks: list[str] = Field(
        default_factory=lambda: ["192.168.0.0/16"],
        alias="podAddressCIDRBlocks",
        min_length=1,
        max_length=1,
        description=(
            "One IPv4 CIDR block for pod IPs (default 192.168.0.0/16); must not overlap the VPC or the service CIDR."
        ),
    )
    service_address_cidr_blocks: list[str] = Field(
        default_factory=lambda: ["10.96.0.0/12"],
        alias="serviceAddressCIDRBlocks",
        min_length=1,
        max_length=1,
        description=(
            "One IPv4 CIDR block for Service cluster IPs (default 10.96.0.0/12); must not overlap the VPC or "
            "the pod CIDR."
        ),
    )
    service_load_balancer_subnet_ids: list[SubnetId] = Field(
        default_factory=list,
        alias="serviceLoadBalancerSubnetIDs",
        description="Subnets reserved for this cluster's Kubernetes Services of type LoadBalancer: they get the "
        "cluster's kubernetes.io/cluster/<uid> tag, so the AWS cloud controller manager of a cluster that does not "
        "name them ignores them, while this cluster's also finds every subnet of the VPC without such a tag (pin one "
        "Service with its service.beta.kubernetes.io/aws-load-balancer-subnets annotation). Only the service's own "
        "subnets (the existing VPC's listed ones, or those it made) can be named. Default: none tagged; "
        "every cluster finds the service's subnets by their kubernetes.io/role/elb=1 (internet-facing) or "
        "kubernetes.io/role/internal-elb=1 (internal) tags.",
    )
    node_port_range: str = Field(
        default="30000-32767",
        alias="nodePortRange",
        pattern=r"^\d{1,5}-\d{1,5}$",
        description="The NodePort range LOW-HIGH (default 30000-32767), opened to the VPC on nodes.",
    )

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
    version: str = Field(
        description=(
            'Kubernetes version 1.MINOR.PATCH (quote it in YAML: "1.35.4"); '
            "`kubestep version` lists the supported minors."
        )
    )
    instance_type: InstanceType = Field(
        default="m5.large", alias="instanceType", description="EC2 instance type of each replica (default m5.large)."
    )
    key_name: KeyName | None = Field(
        default=None,
        alias="keyName",
        description="Name of an EC2 key pair for SSH access to the replicas (default none).",
    )
    subnet_ids: list[SubnetId] | None = Field(
        default=None,
        alias="subnetIDs",
        min_length=1,
        max_length=5,
        description="Existing VPC only: 1 subnet (three replicas share it), or 3 or 5 subnets (one replica each).",
    )
    availability_zones: list[Zone] | None = Field(
        default=None,
        alias="availabilityZones",
        min_length=1,
        max_length=5,
        description=(
            "Dedicated VPC only: the zones of the replicas, one replica per zone (1, 3 or 5; default all the "
            "service's zones)."
        ),
    )
    security_group_ids: list[SecurityGroupId] = Field(
        default_factory=list,
        alias="securityGroupIDs",
        max_length=4,
        description="Up to 4 more security groups for the replicas (besides the ones kubestep creates).",
    )
    iam_instance_profile: InstanceProfile | None = Field(
        default=None,
        alias="iamInstanceProfile",
        description="Name of an instance profile to use instead of the cluster's own control-plane profile.",
    )
    image_id: ImageId | None = Field(
        default=None,
        alias="imageID",
        description=(
            "An AMI id (ami-...) for the replicas instead of the Ubuntu image kubestep picks "
            "(Canonical's published image for the region)."
        ),
    )
    root_volume: Volume = Field(
        default_factory=_root_volume, alias="rootVolume", description="Each replica's root volume (default 32 GiB gp3)."
    )
    etcd: Etcd = Field(default_factory=Etcd, description="The etcd data volume of each replica.")
    database_encryption: KmsRef = Field(
        default_factory=KmsRef,
        alias="databaseEncryption",
        description="The KMS key that encrypts Kubernetes Secrets at rest in etcd.",
    )
    tags: Tags = Field(
        default_factory=dict,
        description=(
            "AWS tags added to the control plane's resources (at most 40; reserved prefixes gke:, aws:, "
            "kubernetes.io/cluster/)."
        ),
    )

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


def _admin_identity(value: str, info: ValidationInfo) -> str:
    """An IAM user or role ARN; a stored record keeps what it was stored with."""
    if info.context and info.context.get("stored"):
        return value
    return cluster_admins.check_identity(value)


AdminIdentityArn = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_admin_identity)]


class AwsIAMAuth(Model):
    admin_identity_arns: list[AdminIdentityArn] = Field(
        default_factory=list,
        alias="adminIdentityARNs",
        max_length=cluster_admins.MAX_ADMINS,
        description=(
            "IAM user or role ARNs mapped to the cluster-admin group through aws-iam-authenticator (at most "
            f"{cluster_admins.MAX_ADMINS}; a role with or without its path). Default: whoever creates the "
            "cluster through the API (an assumed-role session counts as its role). Changes in place, without "
            "replacing instances."
        ),
    )

    @field_validator("admin_identity_arns")
    @classmethod
    def _unique(cls, arns: list[str]) -> list[str]:
        repeated = sorted({a for a in arns if arns.count(a) > 1})
        if repeated:
            raise ValueError(f"must be unique (repeated: {', '.join(repeated)})")
        return arns


class Authentication(Model):
    aws_iam: AwsIAMAuth = Field(
        default_factory=AwsIAMAuth,
        alias="awsIAM",
        description="Authentication with AWS IAM identities (aws-iam-authenticator).",
    )


DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
Day = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


def _time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{shown(value)} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)"
        ) from None
    return value


def _duration(value: Any) -> Any:
    """`4h`, `90m`, `1h30m` or a number of hours."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 60)
    if isinstance(value, str):
        match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", value.strip())
        if match and value.strip():
            return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    raise ValueError(f"{shown(value)} is not a duration like 4h, 90m or 1h30m")


class MaintenanceWindow(Model):
    """When automatic upgrades may start: on these days, from `start` for `duration`, in `timeZone`."""

    start: str = Field(
        default="03:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description='Start of the window, HH:MM in the window\'s time zone (default "03:00"; quote it in YAML).',
    )
    duration_minutes: Annotated[int, BeforeValidator(_duration)] = Field(
        default=240,
        alias="duration",
        ge=60,
        le=24 * 60,
        description="Length of the window: 4h (default), 90m, 1h30m, or a number of hours; 1h to 24h.",
    )
    days: list[Day] = Field(
        default_factory=lambda: list(DAYS),
        min_length=1,
        max_length=7,
        description="Days the window opens on (MON … SUN; default every day).",
    )
    time_zone: Annotated[str, AfterValidator(_time_zone)] = Field(
        default="UTC", alias="timeZone", description="IANA time zone of `start` and `days` (default UTC)."
    )

    @field_serializer("duration_minutes")
    def _duration_text(self, minutes: int) -> str:
        # Written back the way it is read: a bare number would mean hours.
        hours, rest = divmod(minutes, 60)
        return (f"{hours}h" if hours else "") + (f"{rest}m" if rest else "")

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: list[str]) -> list[str]:
        if len(set(days)) != len(days):
            raise ValueError("days must be unique")
        return days

    def opened_at(self, moment: Any) -> Any:
        """When the window that is open at `moment` (an aware datetime) opened, or None."""
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo

        local = moment.astimezone(ZoneInfo(self.time_zone))
        hour, minute = (int(p) for p in self.start.split(":"))
        # A window that started yesterday may still be open (e.g. 22:00 for 4 hours).
        for back in (0, 1):
            day = (local - timedelta(days=back)).date()
            opened = datetime(day.year, day.month, day.day, hour, minute, tzinfo=local.tzinfo)
            closes = opened + timedelta(minutes=self.duration_minutes)
            if DAYS[opened.weekday()] in self.days and opened <= local < closes:
                return opened
        return None


# YAML 1.1's words for a boolean, which people write in manifests (`autoUpgrade: off`) and a
# YAML 1.2 reader keeps as words: accepted for manifest switches, nothing else is coerced.
YAML_BOOLEAN_WORDS = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}


def _yaml_boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in YAML_BOOLEAN_WORDS:
        return YAML_BOOLEAN_WORDS[value.strip().lower()]
    return value


ManifestSwitch = Annotated[bool, BeforeValidator(_yaml_boolean)]


class UpgradePolicy(Model):
    release_channel: Literal["rapid", "regular", "stable", "none"] = Field(
        default="regular",
        alias="releaseChannel",
        description="Which versions automatic upgrades follow: rapid, regular (default), stable, or none.",
    )
    maintenance_window: MaintenanceWindow = Field(
        default_factory=MaintenanceWindow, alias="maintenanceWindow", description="When automatic upgrades may run."
    )
    auto_upgrade: ManifestSwitch = Field(
        default=False,
        alias="autoUpgrade",
        description=(
            "Upgrade automatically to the release channel's version inside the maintenance window (default false)."
        ),
    )


# ---------------------------------------------------------------- automatic repair


def _unhealthy_after(value: Any) -> Any:
    """`10m`, `90s`, `1h30m` (Go's duration grammar, `kubestep.durations`) or a number of seconds;
    3m to 24h. Kept as written (its seconds: `AutoRepair.unhealthy_after_seconds`)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{shown(value)} is not a duration like 10m, 5m30s or 1h")
    seconds = _seconds(value)
    if not MIN_UNHEALTHY_AFTER <= seconds <= MAX_UNHEALTHY_AFTER:
        raise ValueError(
            f"{shown(value)} must be from 3m to 24h (a replica or node reports every minute: a shorter wait "
            "would replace members for a late report)"
        )
    return value


def _seconds(value: int | str) -> int:
    from kubestep.durations import InvalidDuration, parse_duration

    try:
        return value if isinstance(value, int) else int(parse_duration(value))
    except InvalidDuration as exc:
        raise ValueError(str(exc)) from None


def _max_unhealthy(value: Any) -> Any:
    """A count (`2`) or a share of the members (`40%`), as Cluster API's MachineHealthCheck."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{value} must be at least 1 (turn repair off with enabled: false instead)")
        return value
    if isinstance(value, str):
        share = re.fullmatch(r"(\d{1,3})%", value.strip())
        if share and 1 <= int(share.group(1)) <= 100:
            return value.strip()
    raise ValueError(f"{shown(value)} is not a count of at least 1 or a share from 1% to 100% (e.g. 1, 40%)")


MaxUnhealthy = Annotated[int | str, BeforeValidator(_max_unhealthy)]
UnhealthyAfter = Annotated[int | str, BeforeValidator(_unhealthy_after)]
MIN_UNHEALTHY_AFTER = 180  # three missed reports: one late report is not a failure
MAX_UNHEALTHY_AFTER = 24 * 3600


class AutoRepair(Model):
    """Replace members that stay unhealthy: nodes whose periodic report stops, control-plane
    replicas whose API server or bootstrap fails after they were healthy. When more than
    `maxUnhealthy` members are unhealthy at once nothing is repaired (a network partition looks
    like a dead fleet)."""

    enabled: ManifestSwitch = Field(description="Repair unhealthy members automatically.")
    unhealthy_after: UnhealthyAfter = Field(
        default="10m",
        alias="unhealthyAfter",
        description="How long a member may stay unhealthy before it is replaced: 10m (default), 5m, 1h30m, "
        "or seconds; 3m to 24h.",
    )
    max_unhealthy: MaxUnhealthy = Field(
        alias="maxUnhealthy",
        description="Most members that may be unhealthy at once for repairs to go on: a count (1) or a share "
        "(40%, rounded up); more than that and nothing is repaired, with a Warning event.",
    )

    @property
    def unhealthy_after_seconds(self) -> int:
        return _seconds(self.unhealthy_after)

    def allowed(self, members: int) -> int:
        """How many of `members` may be unhealthy at once and still be repaired."""
        if isinstance(self.max_unhealthy, str):
            return -(-members * int(self.max_unhealthy.rstrip("%")) // 100)  # rounded up
        return self.max_unhealthy


class ControlPlaneAutoRepair(AutoRepair):
    """A replica's repair is opt-in: replacing one is a change to etcd's membership."""

    enabled: ManifestSwitch = Field(default=False, description="Repair unhealthy replicas automatically (default off).")
    max_unhealthy: MaxUnhealthy = Field(
        default=1,
        alias="maxUnhealthy",
        description="Most replicas that may be unhealthy at once for repairs to go on: a count (default 1) or a "
        "share (rounded up); more than that and nothing is repaired, with a Warning event.",
    )


class NodePoolAutoRepair(AutoRepair):
    enabled: ManifestSwitch = Field(default=True, description="Repair unhealthy nodes automatically (default on).")
    max_unhealthy: MaxUnhealthy = Field(
        default="40%",
        alias="maxUnhealthy",
        description="Most nodes of the pool that may be unhealthy at once for repairs to go on: a count or a "
        "share (default 40%, rounded up); more than that and nothing is repaired, with a Warning event.",
    )


class ClusterManagement(Model):
    auto_repair: ControlPlaneAutoRepair = Field(
        default_factory=ControlPlaneAutoRepair,
        alias="autoRepair",
        description="Automatic repair of the control-plane replicas (default off; maxUnhealthy 1: one replica at "
        "a time, never while another operation runs).",
    )


class NodePoolManagement(Model):
    auto_repair: NodePoolAutoRepair = Field(
        default_factory=NodePoolAutoRepair,
        alias="autoRepair",
        description="Automatic repair of the pool's nodes (default on, maxUnhealthy 40%): a node whose periodic "
        "report stops is marked Unhealthy in its Auto Scaling group, which drains and replaces it.",
    )


def _retention_days(value: Any) -> Any:
    """`7d` or a number of days, one of the retentions the backup bucket's lifecycle rules know."""
    days = value
    if isinstance(value, str):
        match = re.fullmatch(r"(\d+)d", value.strip())
        days = int(match.group(1)) if match else None
    if isinstance(days, bool) or not isinstance(days, int) or days not in backups.RETENTION_DAYS:
        allowed = ", ".join(f"{d}d" for d in backups.RETENTION_DAYS)
        raise ValueError(f"{shown(value)} is not a backup retention: one of {allowed}")
    return days


def _backup_interval(value: Any) -> Any:
    minutes = _duration(value)
    if not 5 <= minutes <= 24 * 60:
        raise ValueError(f"{shown(value)} is not a backup interval: 5m to 24h")
    return minutes


class BackupPolicy(Model):
    """How often the control plane's etcd leader snapshots etcd to the service's backup bucket,
    and how long S3 keeps each snapshot."""

    interval_minutes: Annotated[int, BeforeValidator(_backup_interval)] = Field(
        default=backups.DEFAULT_INTERVAL_MINUTES,
        alias="interval",
        ge=5,
        le=24 * 60,
        description="Time between snapshots: 30m (default), 1h, 1h30m, or a number of hours; 5m to 24h.",
    )
    retention_days: Annotated[int, BeforeValidator(_retention_days)] = Field(
        default=backups.DEFAULT_RETENTION_DAYS,
        alias="retention",
        description="How long each snapshot is kept: 7d (default); one of "
        + ", ".join(f"{d}d" for d in backups.RETENTION_DAYS)
        + ".",
    )

    @field_serializer("interval_minutes")
    def _interval_text(self, minutes: int) -> str:
        hours, rest = divmod(minutes, 60)
        return (f"{hours}h" if hours else "") + (f"{rest}m" if rest else "")

    @field_serializer("retention_days")
    def _retention_text(self, days: int) -> str:
        return f"{days}d"


class ClusterSpec(Model):
    region: Region | None = Field(default=None, description="Optional; must be the management service's region.")
    networking: Networking = Field(
        default_factory=Networking, description="Pod and Service address ranges, NodePorts, load balancer subnets."
    )
    control_plane: ControlPlane = Field(
        alias="controlPlane", description="The control plane: Kubernetes version, instances, placement, volumes."
    )
    authentication: Authentication = Field(default_factory=Authentication, description="Who administers the cluster.")
    upgrade_policy: UpgradePolicy = Field(
        default_factory=UpgradePolicy,
        alias="upgradePolicy",
        description="Release channel, automatic upgrades and their maintenance window.",
    )
    management: ClusterManagement = Field(
        default_factory=ClusterManagement, description="Automatic repair of the control plane."
    )
    backup: BackupPolicy = Field(
        default_factory=BackupPolicy, description="Scheduled etcd snapshots: their interval and retention."
    )


# Names of what operations work on besides clusters (kubestep.store.keys.ServiceTarget): the
# API and the CLI take them where a cluster's name goes (`get operations -c network`).
RESERVED_CLUSTER_NAMES = ("network", "orphans")


class ClusterMetadata(Metadata):
    @field_validator("name")
    @classmethod
    def _unreserved(cls, name: str, info: ValidationInfo) -> str:
        if name in RESERVED_CLUSTER_NAMES and not (info.context and info.context.get("stored")):
            raise ValueError(
                f"{name!r} is reserved (operations on the management service's {name} use it); choose another name"
            )
        return name


class AWSCluster(Model):
    api_version: Literal["kubestep.io/v1"] = Field(
        default=API_VERSION, alias="apiVersion", description="Always kubestep.io/v1."
    )
    kind: Literal["AWSCluster"] = Field(default="AWSCluster", description="Always AWSCluster.")
    metadata: ClusterMetadata = Field(
        description=f"The cluster's name and labels (not {' or '.join(RESERVED_CLUSTER_NAMES)}: reserved)."
    )
    spec: ClusterSpec = Field(description="The desired state of the cluster.")

    @property
    def name(self) -> str:
        return self.metadata.name


# ---------------------------------------------------------------- node pool


class Taint(Model):
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="The taint's key (1 to 253 characters)."
    )
    value: Annotated[str, StringConstraints(max_length=63)] = Field(
        default="", description="The taint's value (at most 63 characters; default empty)."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        description="NoSchedule, PreferNoSchedule or NoExecute."
    )


LabelKey = Annotated[
    str, StringConstraints(pattern=r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
]
LabelValue = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


# What a kubelet may set on its own Node (`--node-labels`, which the bootstrap passes the pool's
# labels to). In the kubernetes.io and k8s.io namespaces upstream allows only the namespaces
# kubelet.kubernetes.io and node.kubernetes.io (`kubeletLabelNamespaces`) and the well-known
# labels the kubelet sets itself (`kubeletLabels`: hostname, os, arch, zone, region, instance
# type), both in kubernetes/kubernetes pkg/kubelet/apis/well_known_labels.go; anything else there
# makes the kubelet refuse to start (`ValidateKubeletFlags`, cmd/kubelet/app/options/options.go),
# and the NodeRestriction admission plugin refuses the same. A pool never sets the well-known
# ones (its kubelet does), so only the two namespaces remain; `node-role.kubernetes.io/*` and
# `kubernetes.io/role` are for an administrator's kubectl, never the node itself.
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
KUBERNETES_LABEL_DOMAINS = ("kubernetes.io", "k8s.io")


def _kubelet_labels(labels: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
    if info.context and info.context.get("stored"):
        return labels  # written before this rule: readable, and a change of labels is checked
    refused = []
    for key in labels or {}:
        namespace = key.rpartition("/")[0]
        kubernetes = any(namespace == d or namespace.endswith(f".{d}") for d in KUBERNETES_LABEL_DOMAINS)
        if kubernetes and namespace not in KUBELET_LABEL_NAMESPACES:
            refused.append(shown(key))
    if refused:
        raise ValueError(
            f"{', '.join(sorted(refused))}: a node may label itself in the kubernetes.io and k8s.io namespaces "
            f"only under {' and '.join(f'{n}/' for n in KUBELET_LABEL_NAMESPACES)} (the kubelet refuses the rest); "
            "give nodes roles with kubectl once they joined"
        )
    return labels


class UpdateSettings(Model):
    max_surge: int = Field(
        default=1,
        alias="maxSurge",
        ge=0,
        le=100,
        description="How many extra nodes an update may add above the desired count (default 1).",
    )
    max_unavailable: int = Field(
        default=0,
        alias="maxUnavailable",
        ge=0,
        le=100,
        description="How many nodes an update may take away below the desired count (default 0).",
    )

    @model_validator(mode="after")
    def _progress(self) -> UpdateSettings:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError("maxSurge and maxUnavailable cannot both be 0 (an update could never progress)")
        return self


class NodePoolSpec(Model):
    cluster_name: Name = Field(alias="clusterName", description="The name of the cluster the node pool belongs to.")
    version: str = Field(
        description=(
            "Kubernetes version 1.MINOR.PATCH of the nodes (quote it in YAML): never newer than the control "
            "plane, at most 2 minors behind."
        )
    )
    subnet_id: SubnetId | None = Field(
        default=None,
        alias="subnetID",
        description="Existing VPC only: the subnet of the nodes (default the cluster's first).",
    )
    availability_zone: Zone | None = Field(
        default=None,
        alias="availabilityZone",
        description="Dedicated VPC only: the zone of the nodes (default the cluster's first).",
    )
    min_node_count: int = Field(
        alias="minNodeCount", ge=0, le=1000, description="Fewest nodes the cluster autoscaler keeps (0 to 1000)."
    )
    max_node_count: int = Field(
        alias="maxNodeCount",
        ge=1,
        le=1000,
        description="Most nodes the cluster autoscaler may add (1 to 1000, at least minNodeCount).",
    )
    instance_type: InstanceType = Field(
        default="m5.large", alias="instanceType", description="EC2 instance type of the nodes (default m5.large)."
    )
    max_pods_per_node: int = Field(
        default=110, alias="maxPodsPerNode", ge=8, le=250, description="Most pods per node (8 to 250, default 110)."
    )
    root_volume: Volume = Field(
        default_factory=_root_volume, alias="rootVolume", description="Each node's root volume (default 32 GiB gp3)."
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description=(
            "Kubernetes labels on every node of the pool (also tagged for the cluster autoscaler's scale from "
            "zero); in the kubernetes.io and k8s.io namespaces only node.kubernetes.io/ and kubelet.kubernetes.io/ "
            "keys, which a kubelet may set on itself."
        ),
    )
    taints: list[Taint] = Field(default_factory=list, description="Kubernetes taints on every node of the pool.")
    tags: Tags = Field(
        default_factory=dict,
        description=(
            "AWS tags added to the pool's resources (at most 40; reserved prefixes gke:, aws:, kubernetes.io/cluster/)."
        ),
    )
    key_name: KeyName | None = Field(
        default=None, alias="keyName", description="Name of an EC2 key pair for SSH access to the nodes (default none)."
    )
    iam_instance_profile: InstanceProfile | None = Field(
        default=None,
        alias="iamInstanceProfile",
        description="Name of an instance profile to use instead of the cluster's own node profile.",
    )
    image_id: ImageId | None = Field(
        default=None,
        alias="imageID",
        description=(
            "An AMI id (ami-...) for the nodes instead of the Ubuntu image kubestep picks (Canonical's "
            "published image for the region)."
        ),
    )
    security_group_ids: list[SecurityGroupId] = Field(
        default_factory=list,
        alias="securityGroupIDs",
        max_length=4,
        description="Up to 4 more security groups for the nodes (besides the ones kubestep creates).",
    )
    update_settings: UpdateSettings = Field(
        default_factory=UpdateSettings,
        alias="updateSettings",
        description="How rolling updates replace the pool's nodes.",
    )
    management: NodePoolManagement = Field(
        default_factory=NodePoolManagement, description="Automatic repair of the pool's nodes."
    )

    _version = field_validator("version")(classmethod(lambda cls, v, info: _version(v, info)))
    _tags = field_validator("tags")(classmethod(lambda cls, v: _check_tags(v)))
    _labels = field_validator("labels")(classmethod(lambda cls, v, info: _kubelet_labels(v, info)))

    @model_validator(mode="after")
    def _counts(self) -> NodePoolSpec:
        if self.min_node_count > self.max_node_count:
            raise ValueError(f"minNodeCount ({self.min_node_count}) must be <= maxNodeCount ({self.max_node_count})")
        if self.subnet_id is not None and self.availability_zone is not None:
            raise ValueError("set subnetID or availabilityZone, not both")
        return self


class AWSNodePool(Model):
    api_version: Literal["kubestep.io/v1"] = Field(
        default=API_VERSION, alias="apiVersion", description="Always kubestep.io/v1."
    )
    kind: Literal["AWSNodePool"] = Field(default="AWSNodePool", description="Always AWSNodePool.")
    metadata: Metadata = Field(description="The node pool's name (unique within its cluster) and labels.")
    spec: NodePoolSpec = Field(description="The desired state of the node pool.")

    @property
    def name(self) -> str:
        return self.metadata.name


# ---------------------------------------------------------------- requests


class CreateClusterRequest(Model):
    """`CreateCluster` execution input and `POST /v1/clusters` body."""

    cluster: AWSCluster = Field(description="The AWSCluster manifest.")
    node_pools: list[AWSNodePool] = Field(
        default_factory=list,
        alias="nodePools",
        max_length=20,
        description="AWSNodePool manifests created with the cluster (at most 20, unique names).",
    )
    rollback_on_failure: bool = Field(
        default=True,
        alias="rollbackOnFailure",
        description="Delete what the operation created when it fails (false keeps it for debugging).",
    )

    @model_validator(mode="after")
    def _pools(self) -> CreateClusterRequest:
        names = [p.name for p in self.node_pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node pool names must be unique (repeated: {', '.join(dupes)})")
        return self


class DeleteClusterRequest(Model):
    """`DeleteCluster` execution input."""

    cluster_name: Name = Field(alias="clusterName", description="The cluster to delete.")
    keep_etcd_volumes: bool = Field(
        default=False, alias="keepEtcdVolumes", description="Keep the replicas' etcd volumes (for a restore)."
    )
    delete_backups: bool = Field(
        default=False,
        alias="deleteBackups",
        description="Delete the cluster's etcd backups too (every version of their objects, and their records); "
        "by default they outlive it until S3 expires them.",
    )


class NodePoolChanges(Model):
    """What can change on an existing node pool. Bounds and update settings change in place;
    anything an instance is launched with rolls the pool (surge, drain, replace)."""

    version: str | None = Field(default=None, description="Kubernetes version (<= the control plane's).")
    min_node_count: int | None = Field(default=None, alias="minNodeCount", ge=0, le=1000, description="Minimum nodes.")
    max_node_count: int | None = Field(default=None, alias="maxNodeCount", ge=1, le=1000, description="Maximum nodes.")
    instance_type: InstanceType | None = Field(default=None, alias="instanceType", description="EC2 instance type.")
    max_pods_per_node: int | None = Field(
        default=None, alias="maxPodsPerNode", ge=8, le=250, description="The kubelet's maxPods."
    )
    root_volume: Volume | None = Field(default=None, alias="rootVolume", description="Root volume.")
    labels: dict[LabelKey, LabelValue] | None = Field(default=None, description="Node labels (replace all).")
    taints: list[Taint] | None = Field(default=None, description="Node taints (replace all).")
    tags: Tags | None = Field(default=None, description="AWS tags of the pool's resources (replace all).")
    image_id: ImageId | None = Field(default=None, alias="imageID", description="Machine image.")
    key_name: KeyName | None = Field(default=None, alias="keyName", description="EC2 key pair.")
    iam_instance_profile: InstanceProfile | None = Field(
        default=None, alias="iamInstanceProfile", description="Instance profile."
    )
    security_group_ids: list[SecurityGroupId] | None = Field(
        default=None, alias="securityGroupIDs", max_length=4, description="Extra security groups."
    )
    update_settings: UpdateSettings | None = Field(
        default=None, alias="updateSettings", description="maxSurge / maxUnavailable of rolls."
    )
    management: NodePoolManagement | None = Field(
        default=None, description="Automatic repair of the pool's nodes (changes in place)."
    )

    _version = field_validator("version")(classmethod(lambda cls, v, info: None if v is None else _version(v, info)))
    _tags = field_validator("tags")(classmethod(lambda cls, v: None if v is None else _check_tags(v)))
    _labels = field_validator("labels")(classmethod(lambda cls, v, info: _kubelet_labels(v, info)))


class CreateNodePoolRequest(Model):
    """`CreateNodePool` execution input and `POST /v1/clusters/{name}/nodepools` (the pool)."""

    cluster_name: Name = Field(alias="clusterName", description="The cluster the pool joins.")
    node_pool: AWSNodePool = Field(alias="nodePool", description="The AWSNodePool manifest.")
    rollback_on_failure: bool = Field(
        default=True, alias="rollbackOnFailure", description="Delete what the operation created when it fails."
    )


class UpdateNodePoolRequest(Model):
    """`UpdateNodePool` execution input and `PATCH /v1/clusters/{name}/nodepools/{pool}` (the changes)."""

    cluster_name: Name = Field(alias="clusterName", description="The pool's cluster.")
    node_pool: Name = Field(alias="nodePool", description="The pool to change.")
    changes: NodePoolChanges = Field(description="The fields to change.")


class DeleteNodePoolRequest(Model):
    """`DeleteNodePool` execution input."""

    cluster_name: Name = Field(alias="clusterName", description="The pool's cluster.")
    node_pool: Name = Field(alias="nodePool", description="The pool to delete.")


class ControlPlaneChanges(Model):
    """What can change on a running control plane; every change rolls the replicas one at a time."""

    version: str | None = Field(default=None, description="Kubernetes version: one minor up at most, never down.")
    instance_type: InstanceType | None = Field(default=None, alias="instanceType", description="EC2 instance type.")
    root_volume: Volume | None = Field(default=None, alias="rootVolume", description="Root volume.")
    security_group_ids: list[SecurityGroupId] | None = Field(
        default=None, alias="securityGroupIDs", max_length=4, description="Extra security groups."
    )
    iam_instance_profile: InstanceProfile | None = Field(
        default=None, alias="iamInstanceProfile", description="Instance profile."
    )
    image_id: ImageId | None = Field(default=None, alias="imageID", description="Machine image.")
    key_name: KeyName | None = Field(default=None, alias="keyName", description="EC2 key pair.")

    _version = field_validator("version")(classmethod(lambda cls, v, info: None if v is None else _version(v, info)))


class UpdateClusterRequest(Model):
    """`UpdateCluster` execution input (`POST /v1/clusters/{name}/upgrade`, `PATCH /v1/clusters/{name}`,
    EventBridge schedules): control-plane changes, then optionally the node pools' version."""

    cluster_name: Name = Field(alias="clusterName", description="The cluster to update.")
    control_plane: ControlPlaneChanges = Field(
        default_factory=ControlPlaneChanges, alias="controlPlane", description="Control-plane changes."
    )
    upgrade_policy: UpgradePolicy | None = Field(
        default=None, alias="upgradePolicy", description="A new upgrade policy (changes in place)."
    )
    backup: BackupPolicy | None = Field(
        default=None, description="A new backup interval and retention (changes in place)."
    )
    authentication: Authentication | None = Field(
        default=None,
        description="New cluster administrators (replace all; changes in place: the replicas pick the mapping up "
        "without being replaced).",
    )
    management: ClusterManagement | None = Field(
        default=None, description="Automatic repair of the control plane (changes in place)."
    )
    node_pools: Literal["all"] | list[Name] | None = Field(
        default=None,
        alias="nodePools",
        description='After the control plane: upgrade these node pools to its version ("all" or names).',
    )
    schedule_id: str | None = Field(
        default=None,
        alias="scheduleId",
        pattern=r"^[a-z0-9-]{1,64}$",
        description="Set by a one-off schedule: the run records its outcome on the schedule.",
    )


class NetworkRequest(Model):
    """`ProvisionNetwork` / `DeprovisionNetwork` execution input: `{}` (the network is the
    management service's configuration)."""


def dump(model: BaseModel) -> dict[str, Any]:
    """The manifest form: camelCase aliases, defaults filled in, nothing unset omitted."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
