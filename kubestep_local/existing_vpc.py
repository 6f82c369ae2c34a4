"""`kubestep local up --existing-vpc`: a stand-in for "a VPC you already have" (the
existing-VPC management service) — a VPC with one private subnet whose default route leads to a
transit gateway (egress), DNS support and hostnames on, made in the emulator before
anything of kubestep's, tagged as a customer's VPC would be and nothing of kubestep's — and the
AWSManagementService manifest that names it.

Its ids come from a fixed seed, so the manifest (and the synthesized template, cached by it) is
the same on every fresh start; a restored emulator already has it and it is found by its tag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubestep import files
from kubestep_local import moto_compat

SERVICE_NAME = "shared"
NAME_TAG = "existing-vpc (kubestep local stand-in)"
VPC_CIDR = "10.20.0.0/16"
SUBNET_CIDR = "10.20.0.0/20"
# A VPC someone else made carries their tags; kubestep must leave them as they are.
OWNER_TAGS = {"owner": "network-team", "cost-center": "1234"}
SEED = 20261130


def ensure_stand_in(ec2: Any, region: str) -> tuple[str, str]:
    """(vpc id, subnet id) of the stand-in VPC, made once."""
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME_TAG]}])["Vpcs"]
    if found:
        vpc_id = found[0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        ensure_egress(ec2, vpc_id, subnets[0]["SubnetId"])
        return vpc_id, subnets[0]["SubnetId"]
    tags = [{"Key": "Name", "Value": NAME_TAG}, *({"Key": k, "Value": v} for k, v in OWNER_TAGS.items())]
    with moto_compat.deterministic_ids(SEED):
        vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"][
            "VpcId"
        ]
        subnet_id = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=SUBNET_CIDR,
            AvailabilityZone=f"{region}a",
            TagSpecifications=[
                {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": f"{NAME_TAG} private"}, *tags[1:]]}
            ],
        )["Subnet"]["SubnetId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    ensure_egress(ec2, vpc_id, subnet_id)
    return vpc_id, subnet_id


def ensure_egress(ec2: Any, vpc_id: str, subnet_id: str) -> None:
    """The private subnet's way out, as many organisations build it: a default route to a transit
    gateway that leads to a shared egress VPC (not modelled beyond the gateway), through a route
    table of the subnet's own. Made once; found again by its tag."""
    egress_tag = f"{NAME_TAG} egress"
    tags = [{"Key": "Name", "Value": egress_tag}, *({"Key": k, "Value": v} for k, v in OWNER_TAGS.items())]
    gateways = ec2.describe_transit_gateways(Filters=[{"Name": "tag:Name", "Values": [egress_tag]}])["TransitGateways"]
    if gateways:
        gateway_id = gateways[0]["TransitGatewayId"]
    else:
        gateway_id = ec2.create_transit_gateway(
            Description="shared egress (kubestep local stand-in)",
            TagSpecifications=[{"ResourceType": "transit-gateway", "Tags": tags}],
        )["TransitGateway"]["TransitGatewayId"]
    attachments = ec2.describe_transit_gateway_vpc_attachments(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "transit-gateway-id", "Values": [gateway_id]}]
    )["TransitGatewayVpcAttachments"]
    if not [a for a in attachments if a.get("State") not in ("deleted", "deleting")]:
        ec2.create_transit_gateway_vpc_attachment(TransitGatewayId=gateway_id, VpcId=vpc_id, SubnetIds=[subnet_id])
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    if tables["RouteTables"]:
        return
    table_id = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=[{"ResourceType": "route-table", "Tags": tags}])[
        "RouteTable"
    ]["RouteTableId"]
    ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=gateway_id)
    ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)


def write_manifest(directory: Path, region: str, vpc_id: str, subnet_id: str) -> Path:
    """The existing-VPC management service over the stand-in (examples/management-service-existing-vpc.yaml)."""
    manifest = {
        "apiVersion": "kubestep.io/v1",
        "kind": "AWSManagementService",
        "metadata": {"name": SERVICE_NAME},
        "spec": {"region": region, "existingVPC": {"vpcID": vpc_id, "subnetIDs": [subnet_id]}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "management-service-existing-vpc.yaml"
    text = yaml.safe_dump(manifest, sort_keys=False)
    if files.read_text_if_regular(path, "existing-VPC manifest") != text:
        files.replace_file(path, text, what="existing-VPC manifest", mode=0o644)
    return path
