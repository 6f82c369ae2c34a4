"""What a request names must exist before anything is created or changed: instance types
offered in the region, security groups in the service's VPC, key pairs, images, instance
profiles, KMS keys, subnets; none of them may be one kubestep or Kubernetes made for another
cluster incarnation (`kubestep.ownership`); and the instances it launches must fit the account's
vCPU quota. Creates, new node pools and updates of a cluster or a node pool run the same checks
on what they introduce. Without this, a security group id that does not exist looked like
eventual consistency and was retried for 20 minutes.

Each problem names the field and the rule, like the manifest's own validation."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubestep import limits, naming, ownership
from kubestep.aws import client
from kubestep.aws.errors import INVALID_INSTANCE_TYPE, UNAUTHORIZED, Kind, is_error, is_not_found
from kubestep.errors import shown
from kubestep.models import AWSCluster, AWSNodePool, ControlPlaneChanges, NodePoolChanges
from kubestep.settings import Settings

Problems = list[tuple[str, str]]
INSTANCE_PROFILE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:instance-profile/(?:.*/)?([\w+=,.@-]{1,128})$")


@dataclass(frozen=True)
class Launch:
    """Instances of one type that an operation launches at once."""

    instance_type: str
    count: int


REFERENCE_KINDS = ("type", "sg", "key", "profile", "kms", "subnet", "image")
Refs = dict[str, list[tuple[str, Any]]]


def _control_plane_refs(refs: Refs, base: str, cp: Any) -> None:
    """What a control plane (or a change of one) names; unset fields name nothing."""
    if cp.instance_type:
        refs["type"].append((f"{base}.instanceType", cp.instance_type))
    refs["sg"] += [(f"{base}.securityGroupIDs[{i}]", g) for i, g in enumerate(cp.security_group_ids or [])]
    if cp.key_name:
        refs["key"].append((f"{base}.keyName", cp.key_name))
    if cp.iam_instance_profile:
        refs["profile"].append((f"{base}.iamInstanceProfile", (cp.iam_instance_profile, naming.ROLE_CONTROL_PLANE)))
    if cp.image_id:
        refs["image"].append((f"{base}.imageID", cp.image_id))
    volumes = [(f"{base}.rootVolume", cp.root_volume)]
    etcd = getattr(cp, "etcd", None)
    if etcd is not None:
        volumes.append((f"{base}.etcd.mainVolume", etcd.main_volume))
    refs["kms"] += [(f"{field}.kmsKeyARN", v.kms_key_arn) for field, v in volumes if v is not None and v.kms_key_arn]
    encryption = getattr(cp, "database_encryption", None)
    if encryption is not None and encryption.kms_key_arn:
        refs["kms"].append((f"{base}.databaseEncryption.kmsKeyARN", encryption.kms_key_arn))


def _pool_refs(refs: Refs, base: str, spec: Any) -> None:
    """What a node pool's spec (or a change of one) names; unset fields name nothing."""
    if spec.instance_type:
        refs["type"].append((f"{base}.instanceType", spec.instance_type))
    refs["sg"] += [(f"{base}.securityGroupIDs[{i}]", g) for i, g in enumerate(spec.security_group_ids or [])]
    if spec.key_name:
        refs["key"].append((f"{base}.keyName", spec.key_name))
    if spec.iam_instance_profile:
        refs["profile"].append((f"{base}.iamInstanceProfile", (spec.iam_instance_profile, naming.ROLE_NODE)))
    if spec.image_id:
        refs["image"].append((f"{base}.imageID", spec.image_id))
    if spec.root_volume is not None and spec.root_volume.kms_key_arn:
        refs["kms"].append((f"{base}.rootVolume.kmsKeyARN", spec.root_volume.kms_key_arn))


def _field_refs(cluster: AWSCluster | None, pools: list[tuple[str, AWSNodePool]]) -> Refs:
    """Reference kind -> [(field, value)] for everything the request names."""
    refs: Refs = {k: [] for k in REFERENCE_KINDS}
    if cluster is not None:
        _control_plane_refs(refs, "cluster.spec.controlPlane", cluster.spec.control_plane)
        refs["subnet"] += [
            (f"cluster.spec.networking.serviceLoadBalancerSubnetIDs[{i}]", s)
            for i, s in enumerate(cluster.spec.networking.service_load_balancer_subnet_ids)
        ]
    for prefix, pool in pools:
        _pool_refs(refs, f"{prefix}.spec", pool.spec)
    return refs


def reference_problems(
    settings: Settings,
    vpc_id: str | None,
    cluster: AWSCluster | None,
    pools: list[tuple[str, AWSNodePool]],
    launches: Iterable[Launch] = (),
    uid: str | None = None,
) -> Problems:
    """Look up everything the request names (a few Describe calls); [] when all exist and none
    belongs to a cluster incarnation other than `uid` (None: a cluster being created, which owns
    nothing yet)."""
    return _check(settings, vpc_id, _field_refs(cluster, pools), launches, uid)


def change_reference_problems(
    settings: Settings,
    vpc_id: str | None,
    uid: str,
    *,
    control_plane: ControlPlaneChanges | None = None,
    pool: NodePoolChanges | None = None,
    prefix: str,
) -> Problems:
    """The same preflight for what an update of cluster `uid` introduces: every reference its
    changes name must exist and be the account's own or this cluster's."""
    refs: Refs = {k: [] for k in REFERENCE_KINDS}
    if control_plane is not None:
        _control_plane_refs(refs, prefix, control_plane)
    if pool is not None:
        _pool_refs(refs, prefix, pool)
    return _check(settings, vpc_id, refs, (), uid)


def _check(settings: Settings, vpc_id: str | None, refs: Refs, launches: Iterable[Launch], uid: str | None) -> Problems:
    region = settings.region
    ec2 = client("ec2", region)
    problems: Problems = []
    types = _instance_types(ec2, refs["type"], problems)
    for field, group in refs["sg"]:
        try:
            found = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
        except Exception as exc:
            if not is_not_found(exc, Kind.SECURITY_GROUP):
                raise
            found = []
        if not found:
            problems.append((field, f"security group {group} does not exist in {region}"))
        elif vpc_id and found[0]["VpcId"] != vpc_id:
            problems.append(
                (field, f"security group {group} is in {found[0]['VpcId']}, not the cluster's VPC {vpc_id}")
            )
        elif foreign := ownership.security_group_problem(found[0], uid):
            problems.append((field, foreign))
    for field, key in refs["key"]:
        try:
            ec2.describe_key_pairs(KeyNames=[key])
        except Exception as exc:
            if not is_not_found(exc, Kind.KEY_PAIR):
                raise
            problems.append((field, f"key pair {shown(key)} does not exist in {region}"))
    for field, image in refs["image"]:
        try:
            found = ec2.describe_images(ImageIds=[image])["Images"]
        except Exception as exc:
            if not is_not_found(exc, Kind.IMAGE):
                raise
            found = []
        if not found:
            problems.append((field, f"image {image} does not exist in {region} (or is not shared with this account)"))
    for field, subnet in refs["subnet"]:
        try:
            found = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"]
        except Exception as exc:
            if not is_not_found(exc, Kind.SUBNET):
                raise
            found = []
        if not found:
            problems.append((field, f"subnet {subnet} does not exist in {region}"))
        elif vpc_id and found[0]["VpcId"] != vpc_id:
            problems.append((field, f"subnet {subnet} is not in the cluster's VPC {vpc_id}"))
        elif foreign := ownership.subnet_problem(found[0], uid):
            problems.append((field, foreign))
        elif untaggable := _untaggable_subnet_problem(settings, found[0]):
            problems.append((field, untaggable))
    problems += _profile_problems(settings, refs["profile"], uid)
    problems += _kms_problems(settings, refs["kms"])
    if not problems and types:
        problems += quota_problems(settings, types, launches)
    return problems


def _untaggable_subnet_problem(settings: Settings, subnet: dict) -> str | None:
    """A subnet a cluster names for its Service load balancers gets the cluster's tag, and the
    management role may tag only the service's own subnets (infra/permissions.py,
    SubnetClusterTags: the existing VPC's listed subnets, else those carrying the service's tag):
    refuse here what IAM would refuse halfway through the create."""
    existing = settings.service.spec.existing_vpc
    if existing is not None:
        if subnet["SubnetId"] in existing.subnet_ids:
            return None
        allowed = ", ".join(existing.subnet_ids)
        return f"subnet {subnet['SubnetId']} is not one of the service's subnets ({allowed}): only those can be tagged"
    if naming.tags_dict(subnet.get("Tags")).get(naming.TAG_SERVICE) == settings.service_name:
        return None
    return (
        f"subnet {subnet['SubnetId']} was not made by management service {settings.service_name} "
        "(no gke:management-service tag): only the service's own subnets can be tagged"
    )


def _profile_problems(settings: Settings, refs: list[tuple[str, Any]], uid: str | None) -> Problems:
    problems: Problems = []
    if not refs:
        return problems
    iam = client("iam", settings.region)
    for field, (profile, role) in refs:
        match = INSTANCE_PROFILE_ARN.match(profile)
        name = match.group(1) if match else profile
        try:
            found = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        except Exception as exc:
            if not is_not_found(exc, Kind.IAM_ENTITY):
                raise
            problems.append((field, f"instance profile {shown(name)} does not exist"))
            continue
        foreign = ownership.profile_problem(name, naming.tags_dict(found.get("Tags")), uid, role)
        if foreign:
            problems.append((field, foreign))
    return problems


def _kms_problems(settings: Settings, refs: list[tuple[str, Any]]) -> Problems:
    problems: Problems = []
    if not refs:
        return problems
    kms = client("kms", settings.region)
    for field, key_arn in refs:
        try:
            state = kms.describe_key(KeyId=key_arn)["KeyMetadata"].get("KeyState")
        except Exception as exc:
            if is_not_found(exc, Kind.KMS_KEY):
                problems.append((field, f"KMS key {key_arn} does not exist"))
                continue
            if is_error(exc, *UNAUTHORIZED):
                # The key policy may not let the management service describe it; its use at
                # launch is what matters, and the key's own policy decides that.
                continue
            raise
        if state != "Enabled":
            problems.append((field, f"KMS key {key_arn} is {state}, not Enabled"))
    return problems


def _instance_types(ec2: Any, refs: list[tuple[str, str]], problems: Problems) -> dict[str, dict]:
    wanted = sorted({value for _, value in refs})
    if not wanted:
        return {}
    found: dict[str, dict] = {}
    try:
        for item in ec2.describe_instance_types(InstanceTypes=wanted)["InstanceTypes"]:
            found[item["InstanceType"]] = item
    except Exception as exc:
        if not is_error(exc, INVALID_INSTANCE_TYPE):
            raise
        for name in wanted:  # one by one, to name the missing ones
            try:
                found[name] = ec2.describe_instance_types(InstanceTypes=[name])["InstanceTypes"][0]
            except Exception as inner:
                if not is_error(inner, INVALID_INSTANCE_TYPE):
                    raise
    for field, name in refs:
        if name not in found:
            problems.append((field, f"instance type {name} does not exist in {ec2.meta.region_name}"))
        elif not set(found[name].get("ProcessorInfo", {}).get("SupportedArchitectures", [])) & {"x86_64", "arm64"}:
            problems.append((field, f"instance type {name} is neither x86_64 nor arm64"))
    return found


STANDARD_FAMILIES = ("a", "c", "d", "h", "i", "m", "r", "t", "z")


def quota_problems(settings: Settings, types: dict[str, dict], launches: Iterable[Launch]) -> Problems:
    """The vCPUs an operation launches against the account's Running On-Demand Standard quota
    (Service Quotas L-1216C47A). Where the quota cannot be read, this check says nothing."""
    standard = 0
    for launch in launches:
        info = types.get(launch.instance_type)
        if info and launch.instance_type[0] in STANDARD_FAMILIES:
            standard += launch.count * info["VCpuInfo"]["DefaultVCpus"]
    if not standard:
        return []
    service, code = limits.STANDARD_VCPU_QUOTA
    try:
        quota = client("service-quotas", settings.region).get_service_quota(ServiceCode=service, QuotaCode=code)
    except Exception:  # noqa: BLE001 - not readable (permissions, partition, emulator): no opinion
        return []
    value = quota.get("Quota", {}).get("Value")
    if value is not None and standard > value:
        return [
            (
                "nodePools",
                f"this operation launches {standard} vCPUs of standard instances but the account's quota is "
                f"{value:g} (Service Quotas {code}); request an increase or launch fewer",
            )
        ]
    return []


def launches_for(replicas: int, cluster: AWSCluster | None, pools: list[tuple[str, AWSNodePool]]) -> list[Launch]:
    out = [Launch(cluster.spec.control_plane.instance_type, replicas)] if cluster is not None else []
    out += [Launch(p.spec.instance_type, p.spec.min_node_count) for _, p in pools]
    return out


# ---------------------------------------------------------------- an existing VPC: egress and DNS
# kubestep builds a dedicated VPC's NAT gateways, routes and DNS settings itself; a VPC someone
# else made has to provide them, and a boot that cannot reach the internet fails minutes into a
# create (apt, registry.k8s.io, the AWS APIs) with nothing but a console log to say why.

DEFAULT_ROUTE = "0.0.0.0/0"
# The AWS APIs the instances call (bootstrap, kubelet, the cloud controller manager, the node
# termination handler, Session Manager): what a VPC without a default route would need endpoints
# for. Route 53, which each replica calls for its stable name, has no VPC endpoint.
INSTANCE_ENDPOINT_SERVICES = (
    "dynamodb",
    "ec2",
    "ec2messages",
    "elasticloadbalancing",
    "autoscaling",
    "kms",
    "secretsmanager",
    "sqs",
    "ssm",
    "ssmmessages",
    "sts",
)
VPC_DNS_ATTRIBUTES = (
    (
        "enableDnsSupport",
        "EnableDnsSupport",
        "enable-dns-support",
        "the instances resolve the AWS APIs, the package and image registries, the load balancer's name and the "
        "service's private hosted zone through the VPC's DNS resolver",
    ),
    (
        "enableDnsHostnames",
        "EnableDnsHostnames",
        "enable-dns-hostnames",
        "the service's private hosted zone (the replicas' stable names) and the instances' private DNS names, "
        "which the cloud controller manager uses, need it",
    ),
)


def vpc_dns_problems(ec2: Any, vpc_id: str, field: str) -> Problems:
    """Both DNS attributes of the VPC must be on."""
    problems: Problems = []
    for attribute, key, flag, why in VPC_DNS_ATTRIBUTES:
        value = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute).get(key, {}).get("Value")
        if value is not True:
            problems.append(
                (
                    field,
                    f"VPC {vpc_id} has {attribute} off: {why}; turn it on "
                    f"(aws ec2 modify-vpc-attribute --vpc-id {vpc_id} --{flag})",
                )
            )
    return problems


def egress_problems(ec2: Any, vpc_id: str, subnets: list[tuple[str, dict]]) -> Problems:
    """Each (field, subnet as DescribeSubnets returns it) the instances use must have a default
    route that reaches the internet: a NAT gateway, a transit gateway, a firewall or NAT
    appliance, a VPN or Cloud WAN attachment — or an internet gateway when the subnet gives
    instances public addresses. A subnet without one is named with what it would need instead."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    problems: Problems = []
    for field, subnet in subnets:
        subnet_id = subnet["SubnetId"]
        table = next(
            (t for t in tables if any(a.get("SubnetId") == subnet_id for a in t.get("Associations", []))), main
        )
        problem = _default_route_problem(table, subnet)
        if problem:
            missing = _missing_endpoints(ec2, vpc_id, table)
            problems.append(
                (
                    field,
                    f"{problem}: the instances download packages and images from the internet and call AWS APIs; "
                    f"add a default route to a NAT gateway (or a transit gateway or firewall that reaches the "
                    f"internet). Without egress they would also need VPC endpoints for "
                    f"{', '.join(missing) or 'nothing more'} and Route 53, which has none",
                )
            )
    return problems


def _default_route_problem(table: dict | None, subnet: dict) -> str | None:
    subnet_id = subnet["SubnetId"]
    if table is None:
        return f"subnet {subnet_id} has no route table"
    where = f"subnet {subnet_id} (route table {table['RouteTableId']})"
    route = next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == DEFAULT_ROUTE), None)
    if route is None:
        return f"{where} has no default route ({DEFAULT_ROUTE})"
    if route.get("State", "active") != "active":
        return f"{where}: its default route is {route.get('State')}"
    gateway = route.get("GatewayId") or ""
    if route.get("VpcPeeringConnectionId"):
        return f"{where}: its default route goes to a VPC peering connection, which carries no traffic onward"
    if gateway.startswith("igw-") and not subnet.get("MapPublicIpOnLaunch"):
        return (
            f"{where}: its default route goes to internet gateway {gateway}, but the subnet gives instances no "
            "public IP address, so they cannot use it"
        )
    targets = ("NatGatewayId", "TransitGatewayId", "NetworkInterfaceId", "InstanceId", "CoreNetworkArn")
    targets += ("LocalGatewayId", "CarrierGatewayId")
    if gateway or any(route.get(t) for t in targets):
        return None
    return f"{where}: its default route has no target"


def _missing_endpoints(ec2: Any, vpc_id: str, table: dict | None) -> list[str]:
    """The AWS services the instances call that the VPC has no usable endpoint for."""
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    found = set()
    for endpoint in endpoints:
        if endpoint.get("State", "available").lower() not in ("available", "pending"):
            continue
        service = endpoint["ServiceName"].rsplit(".", 1)[-1]
        if endpoint.get("VpcEndpointType") == "Gateway":
            if table is not None and table["RouteTableId"] in endpoint.get("RouteTableIds", []):
                found.add(service)
        elif endpoint.get("PrivateDnsEnabled"):
            found.add(service)
    return [s for s in INSTANCE_ENDPOINT_SERVICES if s not in found]


def subnet_tag_room_problems(ec2: Any, subnet_ids: list[str], field: str) -> Problems:
    """A cluster puts its own `kubernetes.io/cluster/<uid>` tag on each subnet its spec names for
    Service load balancers, and EC2 holds at most 50 tags per resource: refuse a create that would
    fail at its TagSubnets step because a subnet it names is full (the service's own subnets are
    never tagged per cluster, so they never fill)."""
    if not subnet_ids:
        return []
    found = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    return [
        (
            field,
            f"subnet {s['SubnetId']} already carries {len(s.get('Tags', []))} tags, EC2's limit is "
            f"{limits.MAX_TAGS_PER_RESOURCE} and each cluster naming it adds kubernetes.io/cluster/<uid> to it: "
            "delete a cluster that names it, name other subnets, or leave the field empty to use the service's "
            "subnets",
        )
        for s in sorted(found, key=lambda s: s["SubnetId"])
        if len(s.get("Tags", [])) >= limits.MAX_TAGS_PER_RESOURCE
    ]
