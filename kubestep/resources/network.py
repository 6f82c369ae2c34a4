"""The management service's network: a dedicated VPC built step by step (VPC, internet
gateway, public and private subnets per zone, an EIP + NAT gateway per zone, route tables,
S3 and DynamoDB gateway endpoints), or an existing VPC validated and recorded.

Each `ensure_*` looks up by the id recorded in DynamoDB, then by tags, and only then creates
(with a ClientToken where EC2 takes one), recording the new id at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kubestep import naming
from kubestep.aws import client, is_error
from kubestep.errors import InvalidSpec, ResourcePending
from kubestep.polling import pending
from kubestep.registry import Registry
from kubestep.settings import Settings

NAT_DEADLINE = timedelta(minutes=15)  # AWS: up to 10 minutes pending -> available
NETWORK_ROLE_TAG = "gke:network-role"


class NetworkContext:
    def __init__(self, settings: Settings, registry: Registry, operation_id: str):
        self.settings = settings
        self.registry = registry
        self.operation_id = operation_id
        self.ec2 = client("ec2", settings.region)
        self.svc = settings.service_name

    @property
    def network(self) -> dict:
        return self.registry.get_network() or {}

    def tags(self, role: str, name: str) -> dict[str, str]:
        return {
            "Name": name,
            naming.TAG_SERVICE: self.svc,
            NETWORK_ROLE_TAG: role,
            **self.settings.service.spec.tags,
        }

    def find(self, describe: str, key: str, role: str, extra_filters: list[dict] | None = None) -> dict | None:
        filters = [
            {"Name": f"tag:{naming.TAG_SERVICE}", "Values": [self.svc]},
            {"Name": f"tag:{NETWORK_ROLE_TAG}", "Values": [role]},
            *(extra_filters or []),
        ]
        # DescribeNatGateways names its filter parameter `Filter`.
        param = "Filter" if describe == "describe_nat_gateways" else "Filters"
        items = getattr(self.ec2, describe)(**{param: filters})[key]
        # Check the tags here too: not every describe call honours tag filters everywhere
        # (moto ignores them for NAT gateways), and a wrong match would be shared by two zones.
        wanted = {naming.TAG_SERVICE: self.svc, NETWORK_ROLE_TAG: role}
        items = [i for i in items if wanted.items() <= naming.tags_dict(i.get("Tags")).items()]
        return items[0] if items else None

    def token(self, logical: str) -> str:
        return naming.client_token(f"{self.svc}-network", logical)


def _dedicated(ctx: NetworkContext):
    spec = ctx.settings.service.spec.dedicated_vpc
    if spec is None:
        raise InvalidSpec([("spec.dedicatedVPC", "this step needs a dedicated VPC")])
    return spec


def begin(ctx: NetworkContext) -> dict:
    spec = ctx.settings.service.spec
    mode = "dedicated" if spec.dedicated_vpc else "existing"
    ctx.registry.update_network(
        status="PROVISIONING",
        mode=mode,
        service=ctx.svc,
        operationId=ctx.operation_id,
        zones=ctx.network.get("zones") or {},
    )
    return {"mode": mode}


def ensure_vpc(ctx: NetworkContext) -> dict:
    spec = _dedicated(ctx)
    vpc_id = ctx.network.get("vpcId")
    if vpc_id:
        try:
            ctx.ec2.describe_vpcs(VpcIds=[vpc_id])
        except Exception as exc:
            if not is_error(exc, "InvalidVpcID.NotFound"):
                raise
            vpc_id = None
    if not vpc_id:
        found = ctx.find("describe_vpcs", "Vpcs", "vpc")
        vpc_id = found["VpcId"] if found else None
    if not vpc_id:
        vpc_id = ctx.ec2.create_vpc(
            CidrBlock=spec.vpc_cidr_block,
            TagSpecifications=naming.tag_specifications("vpc", ctx.tags("vpc", f"gke-{ctx.svc}")),
        )["Vpc"]["VpcId"]
    ctx.registry.update_network(vpcId=vpc_id, cidr=spec.vpc_cidr_block)
    # Instances and the NLB resolve each other by DNS name.
    ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    return {"vpcId": vpc_id}


def ensure_internet_gateway(ctx: NetworkContext) -> dict:
    network = ctx.network
    vpc_id = network["vpcId"]
    igw_id = network.get("internetGatewayId")
    if not igw_id:
        found = ctx.find("describe_internet_gateways", "InternetGateways", "igw")
        igw_id = found["InternetGatewayId"] if found else None
    if not igw_id:
        igw_id = ctx.ec2.create_internet_gateway(
            TagSpecifications=naming.tag_specifications("internet-gateway", ctx.tags("igw", f"gke-{ctx.svc}"))
        )["InternetGateway"]["InternetGatewayId"]
        ctx.registry.update_network(internetGatewayId=igw_id)
    igw = ctx.ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    if not any(a["VpcId"] == vpc_id for a in igw.get("Attachments", [])):
        ctx.ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    ctx.registry.update_network(internetGatewayId=igw_id)
    return {"internetGatewayId": igw_id}


def ensure_subnets(ctx: NetworkContext) -> dict:
    spec = _dedicated(ctx)
    network = ctx.network
    vpc_id = network["vpcId"]
    zones = network.get("zones") or {}
    for i, az in enumerate(spec.availability_zones):
        entry = dict(zones.get(az) or {})
        for tier, cidr in (
            ("public", spec.public_subnet_cidr_blocks[i]),
            ("private", spec.private_subnet_cidr_blocks[i]),
        ):
            key = f"{tier}SubnetId"
            if entry.get(key):
                continue
            role = f"{tier}-{az}"
            found = ctx.find("describe_subnets", "Subnets", role, [{"Name": "vpc-id", "Values": [vpc_id]}])
            if found:
                subnet_id = found["SubnetId"]
            else:
                # Kubernetes' AWS cloud provider picks subnets for Service load balancers by these tags.
                elb_role = (
                    {"kubernetes.io/role/elb": "1"} if tier == "public" else {"kubernetes.io/role/internal-elb": "1"}
                )
                subnet_id = ctx.ec2.create_subnet(
                    VpcId=vpc_id,
                    CidrBlock=cidr,
                    AvailabilityZone=az,
                    TagSpecifications=naming.tag_specifications(
                        "subnet", {**ctx.tags(role, f"gke-{ctx.svc}-{tier}-{az}"), **elb_role}
                    ),
                )["Subnet"]["SubnetId"]
            entry[key] = subnet_id
            ctx.registry.update_network(**{f"zones.{az}": entry})
        ctx.registry.update_network(**{f"zones.{az}": entry})
    return {"zones": len(spec.availability_zones)}


def ensure_nat_gateway(ctx: NetworkContext, az: str) -> dict:
    """One NAT gateway per zone, so losing a zone does not cut the others off."""
    entry = dict(ctx.network["zones"][az])
    if not entry.get("allocationId"):
        found = ctx.find("describe_addresses", "Addresses", f"eip-{az}")
        if found:
            entry["allocationId"] = found["AllocationId"]
        else:
            entry["allocationId"] = ctx.ec2.allocate_address(
                Domain="vpc",
                TagSpecifications=naming.tag_specifications(
                    "elastic-ip", ctx.tags(f"eip-{az}", f"gke-{ctx.svc}-nat-{az}")
                ),
            )["AllocationId"]
        ctx.registry.update_network(**{f"zones.{az}.allocationId": entry["allocationId"]})
    if not entry.get("natGatewayId"):
        found = ctx.find(
            "describe_nat_gateways",
            "NatGateways",
            f"nat-{az}",
            [{"Name": "state", "Values": ["pending", "available"]}],
        )
        nat_id = (
            found["NatGatewayId"]
            if found
            else ctx.ec2.create_nat_gateway(
                SubnetId=entry["publicSubnetId"],
                AllocationId=entry["allocationId"],
                ClientToken=ctx.token(f"nat-{az}"),
                TagSpecifications=naming.tag_specifications("natgateway", ctx.tags(f"nat-{az}", f"gke-{ctx.svc}-{az}")),
            )["NatGateway"]["NatGatewayId"]
        )
        ctx.registry.update_network(**{f"zones.{az}.natGatewayId": nat_id})
    return {"zone": az}


def check_nat_gateways(ctx: NetworkContext) -> dict:
    zones = ctx.network["zones"]
    ids = [z["natGatewayId"] for z in zones.values()]
    gateways = ctx.ec2.describe_nat_gateways(NatGatewayIds=ids)["NatGateways"]
    failed = [g for g in gateways if g["State"] == "failed"]
    if failed:
        # A failed NAT gateway never recovers: forget it so a re-run creates a new one.
        for gateway in failed:
            for az, zone in zones.items():
                if zone.get("natGatewayId") == gateway["NatGatewayId"]:
                    ctx.registry.update_network(**{f"zones.{az}.natGatewayId": None})
        raise RuntimeError(f"NAT gateway(s) failed: {[(g['NatGatewayId'], g.get('FailureMessage')) for g in failed]}")
    waiting = [g["NatGatewayId"] for g in gateways if g["State"] != "available"]
    if waiting:
        pending(
            ctx.registry,
            ctx.operation_id,
            "nat-gateways",
            NAT_DEADLINE,
            f"NAT gateways {waiting} are not available yet",
            ctx.settings.time_scale,
        )
    return {"natGateways": len(ids)}


def _ensure_route_table(ctx: NetworkContext, role: str, name: str, recorded: str | None) -> str:
    vpc_id = ctx.network["vpcId"]
    if recorded:
        return recorded
    found = ctx.find("describe_route_tables", "RouteTables", role, [{"Name": "vpc-id", "Values": [vpc_id]}])
    if found:
        return found["RouteTableId"]
    return ctx.ec2.create_route_table(
        VpcId=vpc_id, TagSpecifications=naming.tag_specifications("route-table", ctx.tags(role, name))
    )["RouteTable"]["RouteTableId"]


def _ensure_default_route(ctx: NetworkContext, table_id: str, **target: str) -> None:
    table = ctx.ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    for route in table.get("Routes", []):
        if route.get("DestinationCidrBlock") == "0.0.0.0/0":
            if all(route.get(k) == v for k, v in target.items()):
                return
            ctx.ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", **target)
            return
    ctx.ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", **target)


def _ensure_association(ctx: NetworkContext, table_id: str, subnet_id: str) -> None:
    tables = ctx.ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])[
        "RouteTables"
    ]
    for table in tables:
        if table["RouteTableId"] == table_id:
            return
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") == subnet_id:
                ctx.ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
    ctx.ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)


def ensure_route_tables(ctx: NetworkContext) -> dict:
    network = ctx.network
    public_id = _ensure_route_table(ctx, "rt-public", f"gke-{ctx.svc}-public", network.get("publicRouteTableId"))
    ctx.registry.update_network(publicRouteTableId=public_id)
    _ensure_default_route(ctx, public_id, GatewayId=network["internetGatewayId"])
    for az, zone in network["zones"].items():
        _ensure_association(ctx, public_id, zone["publicSubnetId"])
        private_id = _ensure_route_table(
            ctx, f"rt-private-{az}", f"gke-{ctx.svc}-private-{az}", zone.get("privateRouteTableId")
        )
        ctx.registry.update_network(**{f"zones.{az}.privateRouteTableId": private_id})
        _ensure_default_route(ctx, private_id, NatGatewayId=zone["natGatewayId"])
        _ensure_association(ctx, private_id, zone["privateSubnetId"])
    return {"routeTables": 1 + len(network["zones"])}


def ensure_vpc_endpoints(ctx: NetworkContext) -> dict:
    """Gateway endpoints are free and keep S3/DynamoDB traffic off the NAT gateways."""
    network = ctx.network
    region = ctx.settings.region
    tables = [network["publicRouteTableId"]] + [z["privateRouteTableId"] for z in network["zones"].values()]
    endpoints = dict(network.get("endpoints") or {})
    for service in ("s3", "dynamodb"):
        if endpoints.get(service):
            continue
        found = ctx.find(
            "describe_vpc_endpoints",
            "VpcEndpoints",
            f"endpoint-{service}",
            [{"Name": "vpc-endpoint-state", "Values": ["pending", "available"]}],
        )
        endpoint_id = (
            found["VpcEndpointId"]
            if found
            else ctx.ec2.create_vpc_endpoint(
                VpcId=network["vpcId"],
                ServiceName=f"com.amazonaws.{region}.{service}",
                VpcEndpointType="Gateway",
                RouteTableIds=tables,
                ClientToken=ctx.token(f"endpoint-{service}"),
                TagSpecifications=naming.tag_specifications(
                    "vpc-endpoint", ctx.tags(f"endpoint-{service}", f"gke-{ctx.svc}-{service}")
                ),
            )["VpcEndpoint"]["VpcEndpointId"]
        )
        endpoints[service] = endpoint_id
        ctx.registry.update_network(endpoints=endpoints)
    return {"endpoints": sorted(endpoints)}


def validate_existing(ctx: NetworkContext) -> dict:
    spec = ctx.settings.service.spec.existing_vpc
    if spec is None:
        raise InvalidSpec([("spec.existingVPC", "this step needs an existing VPC")])
    try:
        vpc = ctx.ec2.describe_vpcs(VpcIds=[spec.vpc_id])["Vpcs"][0]
        subnets = ctx.ec2.describe_subnets(SubnetIds=spec.subnet_ids)["Subnets"]
    except Exception as exc:
        if is_error(exc, "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound"):
            raise InvalidSpec([("spec.existingVPC", str(exc))]) from None
        raise
    problems = [
        (
            f"spec.existingVPC.subnetIDs[{spec.subnet_ids.index(s['SubnetId'])}]",
            f"{s['SubnetId']} is in {s['VpcId']}, not {spec.vpc_id}",
        )
        for s in subnets
        if s["VpcId"] != spec.vpc_id
    ]
    if problems:
        raise InvalidSpec(problems)
    zones: dict[str, Any] = {}
    for subnet in subnets:
        zones.setdefault(subnet["AvailabilityZone"], {"privateSubnetIds": []})["privateSubnetIds"].append(
            subnet["SubnetId"]
        )
    ctx.registry.update_network(
        vpcId=vpc["VpcId"],
        cidr=vpc["CidrBlock"],
        zones=zones,
        subnets={s["SubnetId"]: {"zone": s["AvailabilityZone"], "cidr": s["CidrBlock"]} for s in subnets},
    )
    return {"vpcId": vpc["VpcId"], "subnets": len(subnets)}


def mark_ready(ctx: NetworkContext) -> dict:
    ctx.registry.update_network(status="READY")
    return {"status": "READY"}


# ---------------------------------------------------------------- deprovision


def begin_delete(ctx: NetworkContext) -> dict:
    clusters, _ = ctx.registry.list_clusters(limit=1)
    if clusters:
        raise InvalidSpec([("network", f"clusters still use it (e.g. {clusters[0]['name']}); delete them first")])
    network = ctx.network
    if not network:
        return {"mode": "none"}
    ctx.registry.update_network(status="DEPROVISIONING", operationId=ctx.operation_id)
    return {"mode": network.get("mode", "dedicated")}


def delete_vpc_endpoints(ctx: NetworkContext) -> dict:
    endpoints = ctx.network.get("endpoints") or {}
    vpc_id = ctx.network.get("vpcId")
    ids = list(endpoints.values())
    if vpc_id:
        found = ctx.ec2.describe_vpc_endpoints(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": f"tag:{naming.TAG_SERVICE}", "Values": [ctx.svc]}]
        )["VpcEndpoints"]
        ids += [e["VpcEndpointId"] for e in found if e["State"].lower() not in ("deleted", "deleting")]
    ids = sorted(set(ids))
    if ids:
        result = ctx.ec2.delete_vpc_endpoints(VpcEndpointIds=ids)
        problems = [u for u in result.get("Unsuccessful", []) if "NotFound" not in u["Error"]["Code"]]
        if problems:
            raise RuntimeError(f"could not delete VPC endpoints: {problems}")
    ctx.registry.update_network(endpoints={})
    return {"deleted": len(ids)}


def delete_nat_gateways(ctx: NetworkContext) -> dict:
    zones = ctx.network.get("zones") or {}
    found = ctx.ec2.describe_nat_gateways(
        Filter=[
            {"Name": f"tag:{naming.TAG_SERVICE}", "Values": [ctx.svc]},
            {"Name": "state", "Values": ["pending", "available", "deleting"]},
        ]
    )["NatGateways"]
    found = [g for g in found if naming.tags_dict(g.get("Tags")).get(naming.TAG_SERVICE) == ctx.svc]
    ids = {z["natGatewayId"] for z in zones.values() if z.get("natGatewayId")} | {g["NatGatewayId"] for g in found}
    still = []
    for nat_id in sorted(ids):
        try:
            state = ctx.ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"]
        except Exception as exc:
            if is_error(exc, "NatGatewayNotFound"):
                continue
            raise
        if state in ("pending", "available"):
            ctx.ec2.delete_nat_gateway(NatGatewayId=nat_id)
            state = "deleting"
        if state != "deleted":
            still.append(nat_id)
    if still:
        pending(
            ctx.registry,
            ctx.operation_id,
            "nat-gateways-deleted",
            NAT_DEADLINE,
            f"NAT gateways {still} are still deleting",
            ctx.settings.time_scale,
        )
    return {"deleted": len(ids)}


def release_addresses(ctx: NetworkContext) -> dict:
    found = ctx.ec2.describe_addresses(Filters=[{"Name": f"tag:{naming.TAG_SERVICE}", "Values": [ctx.svc]}])[
        "Addresses"
    ]
    for address in found:
        if address.get("AssociationId"):
            raise ResourcePending(f"EIP {address['AllocationId']} is still associated")
        try:
            ctx.ec2.release_address(AllocationId=address["AllocationId"])
        except Exception as exc:
            if not is_error(exc, "InvalidAllocationID.NotFound"):
                raise
    return {"released": len(found)}


def delete_route_tables_subnets_gateway_vpc(ctx: NetworkContext) -> dict:
    network = ctx.network
    vpc_id = network.get("vpcId")
    if not vpc_id:
        return {"vpc": None}
    try:
        ctx.ec2.describe_vpcs(VpcIds=[vpc_id])
    except Exception as exc:
        if is_error(exc, "InvalidVpcID.NotFound"):
            return {"vpc": None}
        raise
    ours = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": f"tag:{naming.TAG_SERVICE}", "Values": [ctx.svc]}]
    try:
        for table in ctx.ec2.describe_route_tables(Filters=ours)["RouteTables"]:
            for assoc in table.get("Associations", []):
                if not assoc.get("Main"):
                    ctx.ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
            ctx.ec2.delete_route_table(RouteTableId=table["RouteTableId"])
        for subnet in ctx.ec2.describe_subnets(Filters=ours)["Subnets"]:
            ctx.ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        for igw in ctx.ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])[
            "InternetGateways"
        ]:
            ctx.ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
            ctx.ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
        ctx.ec2.delete_vpc(VpcId=vpc_id)
    except Exception as exc:
        if is_error(exc, "DependencyViolation", "InvalidRouteTableID.NotFound", "InvalidSubnetID.NotFound"):
            raise ResourcePending(f"VPC {vpc_id} still has dependencies: {exc}") from None
        raise
    return {"vpc": vpc_id}


def mark_deleted(ctx: NetworkContext) -> dict:
    ctx.registry.delete_network()
    return {"status": "DELETED"}
