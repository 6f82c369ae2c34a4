"""Turning raw input into validated models, with errors that name the field and the rule.

Single-object rules live on the models; the rules here need two objects at once (a cluster
and its management service, a node pool and its cluster)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kubestep import versions
from kubestep.errors import InvalidSpec
from kubestep.models import (
    AWSCluster,
    AWSManagementService,
    AWSNodePool,
    CreateClusterRequest,
    DeleteClusterRequest,
    NetworkRequest,
)

M = TypeVar("M", bound=BaseModel)

ODD_REPLICA_COUNTS = (1, 3, 5)


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
            msg = f"{item['input']!r} does not match {item['ctx']['pattern']}"
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
    service: AWSManagementService, cluster: AWSCluster, pool: AWSNodePool, prefix: str
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if pool.spec.cluster_name != cluster.name:
        problems.append((f"{prefix}.spec.clusterName", f"must be {cluster.name!r}, the cluster it belongs to"))
    skew = versions.node_pool_skew_problem(cluster.spec.control_plane.version, pool.spec.version)
    if skew:
        problems.append((f"{prefix}.spec.version", skew))
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


def parse_create_request(service: AWSManagementService, data: Any) -> CreateClusterRequest:
    refuse_identity_fields(data)
    request = parse(CreateClusterRequest, data)
    problems = cluster_placement_problems(service, request.cluster)
    for i, pool in enumerate(request.node_pools):
        problems += node_pool_problems(service, request.cluster, pool, f"nodePools[{i}]")
    if problems:
        raise InvalidSpec(problems)
    return request
