"""Turning raw input into validated models, with errors that name the field and the rule.

Single-object rules live on the models; the rules here need two objects at once (a cluster
and its management service, a node pool and its cluster)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kubestep import limits, versions
from kubestep.errors import InvalidSpec, shown
from kubestep.models import (
    NAME_PATTERN,
    ZONE_ID_PATTERN,
    ZONE_NAME_PATTERN,
    AWSCluster,
    AWSManagementService,
    AWSNodePool,
    CreateClusterRequest,
    DeleteClusterRequest,
    NetworkRequest,
)

M = TypeVar("M", bound=BaseModel)

# Each string pattern of the models and the API, in words: an error says the rule, not the regex
# (a test keeps every pattern of the JSON schemas and the OpenAPI document in this table).
_HEX_ID = "and 8 to 17 hexadecimal digits"
PATTERN_RULES: dict[str, str] = {
    NAME_PATTERN: "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit "
    "(e.g. prod-eu)",
    r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$": "an AWS region name, e.g. us-east-1",
    f"{ZONE_NAME_PATTERN}|{ZONE_ID_PATTERN}": "an availability zone name (e.g. us-east-1a) or zone ID (e.g. use1-az1)",
    r"^vpc-[0-9a-f]{8,17}$": f"a VPC id: vpc- {_HEX_ID}",
    r"^subnet-[0-9a-f]{8,17}$": f"a subnet id: subnet- {_HEX_ID}",
    r"^sg-[0-9a-f]{8,17}$": f"a security group id: sg- {_HEX_ID}",
    r"^ami-[0-9a-f]{8,17}$": f"an AMI id: ami- {_HEX_ID}",
    r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$": "a KMS key or alias ARN "
    "(arn:aws:kms:REGION:ACCOUNT:key/ID or arn:aws:kms:REGION:ACCOUNT:alias/NAME)",
    r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:.+$": "an IAM or STS ARN (arn:aws:iam::ACCOUNT:role/NAME, "
    "arn:aws:sts::ACCOUNT:assumed-role/...)",
    r"^([A-Za-z0-9_+=,.@-]{1,128}|arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/([A-Za-z0-9_+=,.@-]+/)*"
    r"[A-Za-z0-9_+=,.@-]{1,128})$": "an instance profile name (letters, digits and _+=,.@-, at most 128) or its ARN "
    "(arn:aws:iam::ACCOUNT:instance-profile/NAME)",
    r"^(rate\(\d+ (minute|minutes|hour|hours)\)|cron\(.+\))$": "an EventBridge schedule: rate(N minutes), "
    "rate(N hours) or cron(...)",
    r"^\d{1,5}-\d{1,5}$": "a port range FROM-TO, e.g. 30000-32767",
    r"^([01]\d|2[0-3]):[0-5]\d$": "a time of day HH:MM on a 24-hour clock, e.g. 03:00",
    r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$": "a Kubernetes label key: an optional "
    "DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$": "empty, or up to 63 letters, digits, '-', '_' or '.', "
    "starting and ending with a letter or digit",
    r"^[a-z0-9-]{1,64}$": "lower-case letters, digits and '-', at most 64",
    r"^[A-Za-z0-9_-]{1,80}$": "letters, digits, '-' and '_', at most 80",
}


def pattern_rule(pattern: str) -> str:
    """The rule a string pattern enforces, in words."""
    return PATTERN_RULES.get(pattern, f"must match the pattern {pattern}")


ODD_REPLICA_COUNTS = (1, 3, 5)
ADMINS_FIELD = "cluster.spec.authentication.awsIAM.adminIdentityARNs"
# Nothing in an execution's input proves who started it, so a create started from the console
# has no creator to default to; the API fills in its caller before this rule runs.
NO_ADMINS = (
    "name at least one IAM user or role ARN: the cluster's administrators are the only identities that can use "
    "kubectl on it (a create through the API or `kubestep apply` defaults to its caller; one started from the "
    "Step Functions console cannot know who started it)"
)


def field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(input)"


def problems_of(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    return problems_from_errors(error.errors(include_url=False), prefix)


def problems_from_errors(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> list[tuple[str, str]]:
    """(field, rule) pairs from pydantic's error dicts (also what Powertools' validation raises)."""
    problems = []
    for item in errors:
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            msg = "is required"
        elif item["type"] == "extra_forbidden":
            msg = "is not a known field"
        elif item["type"] == "literal_error":
            msg = msg.replace("Input should be", "must be")
        elif item["type"] == "string_pattern_mismatch":
            msg = f"{shown(item['input'])} is not valid: {pattern_rule(item['ctx']['pattern'])}"
        path = field_path(tuple(item["loc"]))
        problems.append((f"{prefix}{path}" if prefix and path != "(input)" else prefix.rstrip(".") or path, msg))
    return problems


def parse(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate `data` as `model` or raise InvalidSpec naming every bad field."""
    if not isinstance(data, dict):
        raise InvalidSpec([(prefix.rstrip(".") or "(input)", f"must be a JSON object, got {type(data).__name__}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidSpec(problems_of(exc, prefix)) from None


def cluster_placement_problems(service: AWSManagementService, cluster: AWSCluster) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    cp = cluster.spec.control_plane
    spec = service.spec
    if cluster.spec.region and cluster.spec.region != spec.region:
        problems.append(("cluster.spec.region", f"must be the management service's region {spec.region}"))
    vpc_id = cluster.spec.networking.vpc_id
    if spec.dedicated_vpc:
        if cp.subnet_ids is not None:
            problems.append(
                (
                    "cluster.spec.controlPlane.subnetIDs",
                    "the management service has a dedicated VPC: name availabilityZones (or nothing for all zones)",
                )
            )
        zones = cp.availability_zones or spec.dedicated_vpc.availability_zones
        unknown = [z for z in zones if z not in spec.dedicated_vpc.availability_zones]
        if unknown:
            problems.append(
                (
                    "cluster.spec.controlPlane.availabilityZones",
                    f"{unknown} are not zones of the management service ({spec.dedicated_vpc.availability_zones})",
                )
            )
        elif len(zones) not in ODD_REPLICA_COUNTS:
            problems.append(
                (
                    "cluster.spec.controlPlane.availabilityZones",
                    f"one replica per zone: etcd needs 1, 3 or 5 members for a quorum (got {len(zones)} zones)",
                )
            )
        if vpc_id is not None:
            problems.append(("cluster.spec.networking.vpcID", "leave it empty: the cluster uses the service's VPC"))
        vpc_cidr = spec.dedicated_vpc.vpc_cidr_block
        for field, blocks in (
            ("podAddressCIDRBlocks", cluster.spec.networking.pod_address_cidr_blocks),
            ("serviceAddressCIDRBlocks", cluster.spec.networking.service_address_cidr_blocks),
        ):
            for block in blocks:
                if ipaddress.ip_network(block).overlaps(ipaddress.ip_network(vpc_cidr)):
                    problems.append((f"cluster.spec.networking.{field}", f"{block} overlaps the VPC {vpc_cidr}"))
    else:
        assert spec.existing_vpc is not None
        if cp.availability_zones is not None:
            problems.append(
                (
                    "cluster.spec.controlPlane.availabilityZones",
                    "the management service uses an existing VPC: name subnetIDs",
                )
            )
        subnets = cp.subnet_ids or spec.existing_vpc.subnet_ids[:1]
        unknown = [s for s in subnets if s not in spec.existing_vpc.subnet_ids]
        if unknown:
            problems.append(
                (
                    "cluster.spec.controlPlane.subnetIDs",
                    f"{unknown} are not subnets of the management service ({spec.existing_vpc.subnet_ids})",
                )
            )
        elif len(subnets) not in (1, 3, 5):
            problems.append(
                (
                    "cluster.spec.controlPlane.subnetIDs",
                    "give 1 subnet (three replicas share it) or 3 or 5 (one replica each)",
                )
            )
        if vpc_id is not None and vpc_id != spec.existing_vpc.vpc_id:
            problems.append(("cluster.spec.networking.vpcID", f"must be the service's VPC {spec.existing_vpc.vpc_id}"))
    return problems


def node_pool_problems(
    service: AWSManagementService, cluster: AWSCluster, pool: AWSNodePool, prefix: str, new_version: bool = True
) -> list[tuple[str, str]]:
    """What is wrong with `pool` in `cluster`; `new_version`: the pool's version is being installed
    (a new pool, or a pool moving to it), so it may not be past its end of life."""
    problems: list[tuple[str, str]] = []
    if pool.spec.cluster_name != cluster.name:
        problems.append((f"{prefix}.spec.clusterName", f"must be {cluster.name!r}, the cluster it belongs to"))
    skew = versions.node_pool_skew_problem(cluster.spec.control_plane.version, pool.spec.version)
    if skew:
        problems.append((f"{prefix}.spec.version", skew))
    elif new_version and (ended := versions.end_of_life_problem(pool.spec.version)):
        problems.append((f"{prefix}.spec.version", ended))
    if service.spec.dedicated_vpc:
        if pool.spec.subnet_id is not None:
            problems.append((f"{prefix}.spec.subnetID", "the service has a dedicated VPC: name availabilityZone"))
        zones = cluster.spec.control_plane.availability_zones or service.spec.dedicated_vpc.availability_zones
        if pool.spec.availability_zone is not None and pool.spec.availability_zone not in zones:
            problems.append((f"{prefix}.spec.availabilityZone", f"must be one of the cluster's zones {zones}"))
    else:
        assert service.spec.existing_vpc is not None
        if pool.spec.availability_zone is not None:
            problems.append((f"{prefix}.spec.availabilityZone", "the service uses an existing VPC: name subnetID"))
        if pool.spec.subnet_id is not None and pool.spec.subnet_id not in service.spec.existing_vpc.subnet_ids:
            problems.append((f"{prefix}.spec.subnetID", "must be one of the management service's subnets"))
    return problems


IDENTITY_FIELDS = ("operationId", "uid")


def refuse_identity_fields(data: Any) -> None:
    """`operationId` and `uid` are kubestep's to set: typed into an execution input they would
    let one operation impersonate another (DESIGN §10)."""
    if isinstance(data, dict):
        problems = [
            (
                key,
                "is set by kubestep, not the input (the operation id is the execution name; a cluster's uid "
                "is minted when it is created): remove it",
            )
            for key in IDENTITY_FIELDS
            if key in data
        ]
        if problems:
            raise InvalidSpec(problems)


def parse_network_request(data: Any) -> NetworkRequest:
    refuse_identity_fields(data)
    return parse(NetworkRequest, {} if data is None else data)


def parse_delete_request(data: Any) -> DeleteClusterRequest:
    refuse_identity_fields(data)
    return parse(DeleteClusterRequest, data)


def replica_count(service: AWSManagementService, cluster: AWSCluster) -> int:
    """How many control-plane replicas the cluster gets (see resources/placement.py)."""
    cp = cluster.spec.control_plane
    if service.spec.dedicated_vpc:
        return len(cp.availability_zones or service.spec.dedicated_vpc.availability_zones)
    subnets = cp.subnet_ids or (service.spec.existing_vpc.subnet_ids[:1] if service.spec.existing_vpc else [])
    return 3 if len(subnets) == 1 else len(subnets)


def capacity_problems(
    service: AWSManagementService,
    cluster: AWSCluster,
    pools: list[tuple[str, AWSNodePool]],
    *,
    existing_pools: list[AWSNodePool] = (),  # type: ignore[assignment]
    launching_pools: list[tuple[str, AWSNodePool]] | None = None,
) -> list[tuple[str, str]]:
    """What the cluster's address ranges can hold, and what one operation may launch.

    `pools` are (field prefix, pool) of this request; `existing_pools` those the cluster already
    has (a node-pool create counts them against the pod range too)."""
    problems: list[tuple[str, str]] = []
    networking = cluster.spec.networking
    pod_field = "cluster.spec.networking.podAddressCIDRBlocks"
    pod = ipaddress.ip_network(networking.pod_address_cidr_blocks[0])
    if pod.prefixlen > limits.NODE_CIDR_PREFIX:
        problems.append(
            (
                pod_field,
                f"{pod} is too small: every node takes a /{limits.NODE_CIDR_PREFIX} of the pod range "
                "(kube-controller-manager --node-cidr-mask-size); use a /24 or larger, e.g. 192.168.0.0/16",
            )
        )
    service_range = ipaddress.ip_network(networking.service_address_cidr_blocks[0])
    if not limits.LARGEST_SERVICE_PREFIX <= service_range.prefixlen <= limits.SMALLEST_SERVICE_PREFIX:
        problems.append(
            (
                "cluster.spec.networking.serviceAddressCIDRBlocks",
                f"{service_range} must be between /{limits.LARGEST_SERVICE_PREFIX} (the API server's largest) and "
                f"/{limits.SMALLEST_SERVICE_PREFIX} (the cluster DNS service is its 10th address)",
            )
        )
    replicas = replica_count(service, cluster)
    if pod.prefixlen <= limits.NODE_CIDR_PREFIX:
        node_slots = 2 ** (limits.NODE_CIDR_PREFIX - pod.prefixlen)
        wanted = replicas + sum(p.spec.max_node_count for p in existing_pools)
        wanted += sum(p.spec.max_node_count for _, p in pools)
        if wanted > node_slots:
            problems.append(
                (
                    pod_field,
                    f"{pod} holds {node_slots} nodes (a /{limits.NODE_CIDR_PREFIX} each) but the control plane and "
                    f"the node pools' maxNodeCount add up to {wanted}: use a larger pod range or smaller pools",
                )
            )
    launching = pools if launching_pools is None else launching_pools
    launched = sum(p.spec.min_node_count for _, p in launching) + (replicas if launching_pools is None else 0)
    if launched > limits.MAX_INSTANCES_PER_OPERATION:
        field = launching[-1][0] + ".spec.minNodeCount" if launching else "nodePools"
        problems.append(
            (
                field,
                f"one operation launches at most {limits.MAX_INSTANCES_PER_OPERATION} instances (control plane and "
                f"every pool's minNodeCount: {launched}); start pools smaller and let maxNodeCount grow them",
            )
        )
    if len(existing_pools) + len(pools) > limits.MAX_NODE_POOLS_PER_CLUSTER:
        problems.append(("nodePools", f"a cluster has at most {limits.MAX_NODE_POOLS_PER_CLUSTER} node pools"))
    return problems


def tag_budget_problems(
    service: AWSManagementService, cluster: AWSCluster, pools: list[tuple[str, AWSNodePool]]
) -> list[tuple[str, str]]:
    """Every resource's tags fit AWS's 50 per resource: kubestep's own, the service's, the
    control plane's, the pool's and the cluster autoscaler's (one per label and taint)."""
    budget = limits.MAX_TAGS_PER_RESOURCE - limits.AWS_INSTANCE_TAGS - limits.KUBESTEP_TAGS
    problems: list[tuple[str, str]] = []
    shared = set(service.spec.tags) | set(cluster.spec.control_plane.tags)
    if len(shared) > budget:
        problems.append(
            (
                "cluster.spec.controlPlane.tags",
                f"the service's and the control plane's tags ({len(shared)}) leave no room: at most {budget} "
                f"(AWS allows {limits.MAX_TAGS_PER_RESOURCE} per resource; kubestep adds {limits.KUBESTEP_TAGS})",
            )
        )
    for prefix, pool in pools:
        own = shared | set(pool.spec.tags)
        autoscaler = limits.AUTOSCALER_TAGS + len(pool.spec.labels) + len({t.key for t in pool.spec.taints})
        total = len(own) + autoscaler
        if total > budget:
            problems.append(
                (
                    f"{prefix}.spec",
                    f"its Auto Scaling group would need {total + limits.KUBESTEP_TAGS} tags: {len(own)} tags, "
                    f"{len(pool.spec.labels)} labels and {len(pool.spec.taints)} taints (the cluster autoscaler "
                    f"needs a tag for each) and kubestep's {limits.KUBESTEP_TAGS}; AWS allows "
                    f"{limits.MAX_TAGS_PER_RESOURCE} per resource",
                )
            )
    return problems


def admins_problems(request: CreateClusterRequest) -> list[tuple[str, str]]:
    """A create must name its administrators by the time the workflow runs (the API fills in
    its caller; the console cannot)."""
    if request.cluster.spec.authentication.aws_iam.admin_identity_arns:
        return []
    return [(ADMINS_FIELD, NO_ADMINS)]


def parse_create_request(service: AWSManagementService, data: Any) -> CreateClusterRequest:
    refuse_identity_fields(data)
    request = parse(CreateClusterRequest, data)
    problems = cluster_placement_problems(service, request.cluster)
    ended = versions.end_of_life_problem(request.cluster.spec.control_plane.version)
    if ended:
        problems.append(("cluster.spec.controlPlane.version", ended))
    pools = [(f"nodePools[{i}]", pool) for i, pool in enumerate(request.node_pools)]
    for prefix, pool in pools:
        problems += node_pool_problems(service, request.cluster, pool, prefix)
    problems += capacity_problems(service, request.cluster, pools)
    problems += tag_budget_problems(service, request.cluster, pools)
    if problems:
        raise InvalidSpec(problems)
    return request
