"""The management service's network: a dedicated VPC built step by step (VPC, internet
gateway, public and private subnets per zone, an EIP + NAT gateway per zone, route tables,
S3 and DynamoDB gateway endpoints), or an existing VPC validated and recorded.

Each `ensure_*` looks up by the id recorded in DynamoDB, then by tags, and only then creates
(with a ClientToken where EC2 takes one), recording the new id at once."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Any

from kubestep import naming, preflight
from kubestep.aws import client
from kubestep.aws.errors import (
    DEPENDENCY_VIOLATION,
    NOT_FOUND,
    Kind,
    error_code,
    error_message,
    is_already_exists,
    is_error,
    is_not_found,
)
from kubestep.errors import InvalidSpec
from kubestep.flow.context import StepContext
from kubestep.flow.steps import Poll, step
from kubestep.models import is_zone_id
from kubestep.store import NetworkRecord

# AWS: a NAT gateway is up to 10 minutes `pending` -> `available`, typically about three: the
# first look after two and a half, then every few seconds.
NAT = Poll(deadline=timedelta(minutes=15), interval=5, backoff=1.2, max_delay=30, first=150)
NAT_DELETED = Poll(deadline=timedelta(minutes=15), interval=15)
ADDRESSES_RELEASED = Poll(deadline=timedelta(minutes=10), interval=10)
VPC_DELETED = Poll(deadline=timedelta(minutes=15), interval=10)
NETWORK_ROLE_TAG = "gke:network-role"


class NetworkContext(StepContext):
    @cached_property
    def ec2(self) -> Any:
        return client("ec2", self.settings.region)

    @property
    def svc(self) -> str:
        return self.settings.service_name

    @property
    def network(self) -> NetworkRecord:
        return self.store.network.get() or NetworkRecord()

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
    ctx.store.network.update(
        status="PROVISIONING",
        mode=mode,
        service=ctx.svc,
        operation_id=ctx.operation_id,
        zones=ctx.network.zones,
    )
    return {"mode": mode}


@step(creates=True)
def ensure_vpc(ctx: NetworkContext) -> dict:
    """The dedicated VPC, with DNS support and hostnames on."""
    spec = _dedicated(ctx)
    vpc_id = ctx.network.vpc_id
    if vpc_id:
        try:
            ctx.ec2.describe_vpcs(VpcIds=[vpc_id])
        except Exception as exc:
            if not is_not_found(exc, Kind.VPC):
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
    ctx.store.network.update(vpc_id=vpc_id, cidr=spec.vpc_cidr_block)
    # Instances and the NLB resolve each other by DNS name.
    ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ctx.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    return {"vpcId": vpc_id}


@step(creates=True)
def ensure_internet_gateway(ctx: NetworkContext) -> dict:
    """The internet gateway, attached to the VPC."""
    network = ctx.network
    vpc_id = network.vpc_id
    igw_id = network.internet_gateway_id
    if not igw_id:
        found = ctx.find("describe_internet_gateways", "InternetGateways", "igw")
        igw_id = found["InternetGatewayId"] if found else None
    if not igw_id:
        igw_id = ctx.ec2.create_internet_gateway(
            TagSpecifications=naming.tag_specifications("internet-gateway", ctx.tags("igw", f"gke-{ctx.svc}"))
        )["InternetGateway"]["InternetGatewayId"]
        ctx.store.network.update(internet_gateway_id=igw_id)
    igw = ctx.ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    if not any(a["VpcId"] == vpc_id for a in igw.get("Attachments", [])):
        ctx.ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    ctx.store.network.update(internet_gateway_id=igw_id)
    return {"internetGatewayId": igw_id}


@step(creates=True)
def ensure_subnets(ctx: NetworkContext) -> dict:
    """A public and a private subnet in each zone."""
    spec = _dedicated(ctx)
    network = ctx.network
    vpc_id = network.vpc_id
    for i, az in enumerate(spec.availability_zones):
        zone = network.zones.get(az)
        for tier, cidr in (
            ("public", spec.public_subnet_cidr_blocks[i]),
            ("private", spec.private_subnet_cidr_blocks[i]),
        ):
            field = f"{tier}_subnet_id"
            if zone is not None and getattr(zone, field):
                continue
            role = f"{tier}-{az}"
            found = ctx.find("describe_subnets", "Subnets", role, [{"Name": "vpc-id", "Values": [vpc_id]}])
            if found:
                subnet = found
            else:
                # Kubernetes' AWS cloud provider picks subnets for Service load balancers by these tags.
                elb_role = (
                    {"kubernetes.io/role/elb": "1"} if tier == "public" else {"kubernetes.io/role/internal-elb": "1"}
                )
                subnet = ctx.ec2.create_subnet(
                    VpcId=vpc_id,
                    CidrBlock=cidr,
                    **({"AvailabilityZoneId": az} if is_zone_id(az) else {"AvailabilityZone": az}),
                    TagSpecifications=naming.tag_specifications(
                        "subnet", {**ctx.tags(role, f"gke-{ctx.svc}-{tier}-{az}"), **elb_role}
                    ),
                )["Subnet"]
            ctx.store.network.update_zone(az, **{field: subnet["SubnetId"], "zone_name": subnet["AvailabilityZone"]})
    return {"zones": len(spec.availability_zones)}


@step(creates=True)
def ensure_nat_gateway(ctx: NetworkContext, zone: str) -> dict:
    """One Elastic IP and NAT gateway per zone, so losing a zone does not cut the others off."""
    az = zone
    entry = ctx.network.zones[az]
    allocation_id = entry.allocation_id
    if not allocation_id:
        found = ctx.find("describe_addresses", "Addresses", f"eip-{az}")
        if found:
            allocation_id = found["AllocationId"]
        else:
            allocation_id = ctx.ec2.allocate_address(
                Domain="vpc",
                TagSpecifications=naming.tag_specifications(
                    "elastic-ip", ctx.tags(f"eip-{az}", f"gke-{ctx.svc}-nat-{az}")
                ),
            )["AllocationId"]
        ctx.store.network.update_zone(az, allocation_id=allocation_id)
    if not entry.nat_gateway_id:
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
                SubnetId=entry.public_subnet_id,
                AllocationId=allocation_id,
                ClientToken=ctx.token(f"nat-{az}"),
                TagSpecifications=naming.tag_specifications("natgateway", ctx.tags(f"nat-{az}", f"gke-{ctx.svc}-{az}")),
            )["NatGateway"]["NatGatewayId"]
        )
        ctx.store.network.update_zone(az, nat_gateway_id=nat_id)
    return {"zone": az}


@step(poll=NAT)
def check_nat_gateways(ctx: NetworkContext) -> dict:
    """Wait until every zone's NAT gateway is available (up to 10 minutes on AWS)."""
    zones = ctx.network.zones
    ids = [z.nat_gateway_id for z in zones.values() if z.nat_gateway_id]
    gateways = ctx.ec2.describe_nat_gateways(NatGatewayIds=ids)["NatGateways"]
    failed = [g for g in gateways if g["State"] == "failed"]
    if failed:
        # A failed NAT gateway never recovers: forget it so a re-run creates a new one.
        for gateway in failed:
            for az, zone in zones.items():
                if zone.nat_gateway_id == gateway["NatGatewayId"]:
                    ctx.store.network.update_zone(az, nat_gateway_id=None)
        raise RuntimeError(f"NAT gateway(s) failed: {[(g['NatGatewayId'], g.get('FailureMessage')) for g in failed]}")
    waiting = [g["NatGatewayId"] for g in gateways if g["State"] != "available"]
    if waiting:
        ctx.pending(f"NAT gateways {waiting} are not available yet")
    return {"natGateways": len(ids)}


def _ensure_route_table(ctx: NetworkContext, role: str, name: str, recorded: str | None) -> str:
    vpc_id = ctx.network.vpc_id
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


@step(creates=True)
def ensure_route_tables(ctx: NetworkContext) -> dict:
    """A public route table (to the internet gateway) and a private one per zone (to its NAT)."""
    network = ctx.network
    assert network.internet_gateway_id
    public_id = _ensure_route_table(ctx, "rt-public", f"gke-{ctx.svc}-public", network.public_route_table_id)
    ctx.store.network.update(public_route_table_id=public_id)
    _ensure_default_route(ctx, public_id, GatewayId=network.internet_gateway_id)
    for az, zone in network.zones.items():
        assert zone.public_subnet_id and zone.private_subnet_id and zone.nat_gateway_id
        _ensure_association(ctx, public_id, zone.public_subnet_id)
        private_id = _ensure_route_table(
            ctx, f"rt-private-{az}", f"gke-{ctx.svc}-private-{az}", zone.private_route_table_id
        )
        ctx.store.network.update_zone(az, private_route_table_id=private_id)
        _ensure_default_route(ctx, private_id, NatGatewayId=zone.nat_gateway_id)
        _ensure_association(ctx, private_id, zone.private_subnet_id)
    return {"routeTables": 1 + len(network.zones)}


@step(creates=True)
def ensure_vpc_endpoints(ctx: NetworkContext) -> dict:
    """Gateway endpoints are free and keep S3/DynamoDB traffic off the NAT gateways."""
    network = ctx.network
    region = ctx.settings.region
    tables = [network.public_route_table_id] + [z.private_route_table_id for z in network.zones.values()]
    endpoints = dict(network.endpoints)
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
                VpcId=network.vpc_id,
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
        ctx.store.network.update(endpoints=endpoints)
    return {"endpoints": sorted(endpoints)}


@step(creates=True)
def validate_existing_network(ctx: NetworkContext) -> dict:
    """The existing VPC and subnets exist and belong together, the VPC resolves DNS and every
    subnet reaches the internet; record them."""
    spec = ctx.settings.service.spec.existing_vpc
    if spec is None:
        raise InvalidSpec([("spec.existingVPC", "this step needs an existing VPC")])
    try:
        vpc = ctx.ec2.describe_vpcs(VpcIds=[spec.vpc_id])["Vpcs"][0]
        subnets = ctx.ec2.describe_subnets(SubnetIds=spec.subnet_ids)["Subnets"]
    except Exception as exc:
        if is_not_found(exc, Kind.VPC) or is_not_found(exc, Kind.SUBNET):
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
    # Every cluster instance runs in one of these subnets: each needs egress, the VPC its DNS.
    by_id = {s["SubnetId"]: s for s in subnets}
    named = [(f"spec.existingVPC.subnetIDs[{i}]", by_id[sid]) for i, sid in enumerate(spec.subnet_ids) if sid in by_id]
    problems = preflight.vpc_dns_problems(ctx.ec2, spec.vpc_id, "spec.existingVPC.vpcID")
    problems += preflight.egress_problems(ctx.ec2, spec.vpc_id, named)
    if problems:
        raise InvalidSpec(problems)
    zones: dict[str, Any] = {}
    for subnet in subnets:
        zones.setdefault(subnet["AvailabilityZone"], {"privateSubnetIds": []})["privateSubnetIds"].append(
            subnet["SubnetId"]
        )
    ctx.store.network.update(
        vpc_id=vpc["VpcId"],
        cidr=vpc["CidrBlock"],
        zones=zones,
        subnets={s["SubnetId"]: {"zone": s["AvailabilityZone"], "cidr": s["CidrBlock"]} for s in subnets},
    )
    return {"vpcId": vpc["VpcId"], "subnets": len(subnets)}


@step
def mark_network_ready(ctx: NetworkContext) -> dict:
    """The network is READY: clusters may be created."""
    ctx.store.network.update(status="READY", last_error=None)
    return {"status": "READY"}


# ---------------------------------------------------------------- deprovision


def begin_delete(ctx: NetworkContext) -> dict:
    clusters, _ = ctx.store.clusters.list(limit=1)
    if clusters:
        raise InvalidSpec([("network", f"clusters still use it (e.g. {clusters[0].name}); delete them first")])
    network = ctx.store.network.get()
    if network is None:
        return {"mode": "none"}
    ctx.store.network.update(status="DEPROVISIONING", operation_id=ctx.operation_id)
    return {"mode": network.mode or "dedicated"}


@step
def delete_vpc_endpoints(ctx: NetworkContext) -> dict:
    """Delete the gateway endpoints."""
    endpoints = ctx.network.endpoints
    vpc_id = ctx.network.vpc_id
    ids = list(endpoints.values())
    if vpc_id:
        found = ctx.ec2.describe_vpc_endpoints(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": f"tag:{naming.TAG_SERVICE}", "Values": [ctx.svc]}]
        )["VpcEndpoints"]
        ids += [e["VpcEndpointId"] for e in found if e["State"].lower() not in ("deleted", "deleting")]
    ids = sorted(set(ids))
    if ids:
        result = ctx.ec2.delete_vpc_endpoints(VpcEndpointIds=ids)
        problems = [u for u in result.get("Unsuccessful", []) if u["Error"]["Code"] not in NOT_FOUND[Kind.VPC_ENDPOINT]]
        if problems:
            raise RuntimeError(f"could not delete VPC endpoints: {problems}")
    ctx.store.network.update(endpoints={})
    return {"deleted": len(ids)}


@step(poll=NAT_DELETED)
def delete_nat_gateways(ctx: NetworkContext) -> dict:
    """Delete every zone's NAT gateway and wait until they are gone."""
    zones = ctx.network.zones
    found = ctx.ec2.describe_nat_gateways(
        Filter=[
            {"Name": f"tag:{naming.TAG_SERVICE}", "Values": [ctx.svc]},
            {"Name": "state", "Values": ["pending", "available", "deleting"]},
        ]
    )["NatGateways"]
    found = [g for g in found if naming.tags_dict(g.get("Tags")).get(naming.TAG_SERVICE) == ctx.svc]
    ids = {z.nat_gateway_id for z in zones.values() if z.nat_gateway_id} | {g["NatGatewayId"] for g in found}
    still = []
    for nat_id in sorted(ids):
        try:
            state = ctx.ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"]
        except Exception as exc:
            if is_not_found(exc, Kind.NAT_GATEWAY):
                continue
            raise
        if state in ("pending", "available"):
            ctx.ec2.delete_nat_gateway(NatGatewayId=nat_id)
            state = "deleting"
        if state != "deleted":
            still.append(nat_id)
    if still:
        ctx.pending(f"NAT gateways {still} are still deleting")
    return {"deleted": len(ids)}


@step(poll=ADDRESSES_RELEASED)
def release_addresses(ctx: NetworkContext) -> dict:
    """Release the NAT gateways' Elastic IPs once they are disassociated."""
    found = ctx.ec2.describe_addresses(Filters=[{"Name": f"tag:{naming.TAG_SERVICE}", "Values": [ctx.svc]}])[
        "Addresses"
    ]
    for address in found:
        if address.get("AssociationId"):
            ctx.pending(f"Elastic IP {address['AllocationId']} is still associated")
        try:
            ctx.ec2.release_address(AllocationId=address["AllocationId"])
        except Exception as exc:
            if not is_not_found(exc, Kind.ELASTIC_IP):
                raise
    return {"released": len(found)}


@step("DeleteVpc", poll=VPC_DELETED)
def delete_route_tables_subnets_gateway_vpc(ctx: NetworkContext) -> dict:
    """Route tables, subnets, the internet gateway, then the VPC."""
    network = ctx.network
    vpc_id = network.vpc_id
    if not vpc_id:
        return {"vpc": None}
    try:
        ctx.ec2.describe_vpcs(VpcIds=[vpc_id])
    except Exception as exc:
        if is_not_found(exc, Kind.VPC):
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
        gone = is_not_found(exc, Kind.ROUTE_TABLE) or is_not_found(exc, Kind.SUBNET)
        if is_error(exc, DEPENDENCY_VIOLATION) or gone:
            ctx.pending(f"VPC {vpc_id} still has dependencies ({error_code(exc)}: {error_message(exc)})")
        raise
    return {"vpc": vpc_id}


@step
def mark_network_deleted(ctx: NetworkContext) -> dict:
    """Forget the network record."""
    ctx.store.network.delete()
    return {"status": "DELETED"}


# ---------------------------------------------------------------- private hosted zone


def dns_domain(ctx: NetworkContext) -> str:
    return f"{ctx.svc}.kubestep.internal"


def _route53(ctx: NetworkContext) -> Any:
    return client("route53", ctx.settings.region)


def _find_zone(ctx: NetworkContext, domain: str) -> str | None:
    route53 = _route53(ctx)
    zones = route53.list_hosted_zones_by_name(DNSName=domain, MaxItems="10")["HostedZones"]
    for zone in zones:
        if zone["Name"].rstrip(".") == domain and zone.get("Config", {}).get("PrivateZone"):
            return zone["Id"].split("/")[-1]
    return None


@step(creates=True)
def ensure_dns_zone(ctx: NetworkContext) -> dict:
    """The service's private hosted zone (`<svc>.kubestep.internal`, in the service's VPC): each
    control-plane replica keeps its stable name there (`cp-<i>.<uid>.<domain>`)."""
    network = ctx.network
    domain = dns_domain(ctx)
    zone_id = network.hosted_zone_id or _find_zone(ctx, domain)
    if zone_id is None:
        route53 = _route53(ctx)
        try:
            zone_id = route53.create_hosted_zone(
                Name=domain,
                VPC={"VPCRegion": ctx.settings.region, "VPCId": network.vpc_id},
                # The same request after a lost response is recognised, not a second zone.
                CallerReference=f"kubestep-{ctx.svc}-{network.vpc_id}",
                HostedZoneConfig={"Comment": f"kubestep {ctx.svc}: control-plane replica names", "PrivateZone": True},
            )["HostedZone"]["Id"].split("/")[-1]
        except Exception as exc:
            if not is_already_exists(exc, Kind.HOSTED_ZONE):
                raise
            zone_id = _find_zone(ctx, domain)
            if zone_id is None:
                ctx.pending(f"hosted zone {domain} exists but is not visible yet")
        route53.change_tags_for_resource(
            ResourceType="hostedzone",
            ResourceId=zone_id,
            AddTags=[{"Key": k, "Value": v} for k, v in ctx.tags("dns", domain).items()],
        )
    ctx.store.network.update(hosted_zone_id=zone_id, dns_domain=domain)
    return {"hostedZoneId": zone_id}


@step(poll=VPC_DELETED)
def delete_dns_zone(ctx: NetworkContext) -> dict:
    """The service's private hosted zone (its replica records go with their clusters)."""
    network = ctx.network
    zone_id = network.hosted_zone_id or _find_zone(ctx, dns_domain(ctx))
    if zone_id is None:
        return {"deleted": None}
    route53 = _route53(ctx)
    try:
        records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        leftovers = [r for r in records if r["Type"] not in ("SOA", "NS")]
        if leftovers:
            route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in leftovers]},
            )
        route53.delete_hosted_zone(Id=zone_id)
    except Exception as exc:
        if not is_not_found(exc, Kind.HOSTED_ZONE):
            raise
    ctx.store.network.update(hosted_zone_id=None)
    return {"deleted": zone_id}
