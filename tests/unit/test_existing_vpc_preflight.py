"""An existing VPC must give the instances a way out and resolve DNS: checked when the network
is validated (ProvisionNetwork for an existing VPC), before any cluster can be created in it."""

from __future__ import annotations

import boto3
import pytest
import yaml

from kubestep import preflight
from kubestep.models import AWSManagementService
from kubestep_local import existing_vpc

from .asl_runner import ExecutionFailed, Interpreter
from .conftest import EXAMPLES, configure


@pytest.fixture
def vpc(aws) -> tuple[str, dict]:
    ec2 = boto3.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.60.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    return vpc_id, subnet


def own_table(ec2, vpc_id: str, subnet_id: str) -> str:
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
    return table


def problems(vpc_id: str, subnet: dict) -> list[tuple[str, str]]:
    ec2 = boto3.client("ec2")
    fresh = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]
    return preflight.egress_problems(ec2, vpc_id, [("spec.existingVPC.subnetIDs[0]", fresh)])


def test_a_subnet_without_a_default_route_is_named_with_what_it_would_need(vpc):
    vpc_id, subnet = vpc
    ec2 = boto3.client("ec2")
    table = own_table(ec2, vpc_id, subnet["SubnetId"])
    ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName="com.amazonaws.us-east-1.dynamodb", RouteTableIds=[table])
    [(field, rule)] = problems(vpc_id, subnet)
    assert field == "spec.existingVPC.subnetIDs[0]"
    assert f"subnet {subnet['SubnetId']} (route table {table}) has no default route (0.0.0.0/0)" in rule
    assert "NAT gateway" in rule and "secretsmanager" in rule and "sts" in rule
    assert "dynamodb" not in rule.split("endpoints for")[1]  # the gateway endpoint serves this subnet


def test_a_nat_gateway_or_a_transit_gateway_is_egress(vpc):
    vpc_id, subnet = vpc
    ec2 = boto3.client("ec2")
    table = own_table(ec2, vpc_id, subnet["SubnetId"])
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet["SubnetId"], AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    assert problems(vpc_id, subnet) == []
    other = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.60.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    existing_vpc.ensure_egress(ec2, vpc_id, other["SubnetId"])
    assert problems(vpc_id, other) == []


def test_an_internet_gateway_is_egress_only_for_instances_with_public_addresses(vpc):
    vpc_id, subnet = vpc
    ec2 = boto3.client("ec2")
    table = own_table(ec2, vpc_id, subnet["SubnetId"])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    [(_, rule)] = problems(vpc_id, subnet)
    assert f"internet gateway {igw}" in rule and "no public IP address" in rule
    ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    assert problems(vpc_id, subnet) == []


def test_a_peering_connection_carries_no_traffic_onward(vpc):
    vpc_id, subnet = vpc
    ec2 = boto3.client("ec2")
    table = own_table(ec2, vpc_id, subnet["SubnetId"])
    peer = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    peering = ec2.create_vpc_peering_connection(VpcId=vpc_id, PeerVpcId=peer)["VpcPeeringConnection"]
    ec2.create_route(
        RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", VpcPeeringConnectionId=peering["VpcPeeringConnectionId"]
    )
    [(_, rule)] = problems(vpc_id, subnet)
    assert "peering connection" in rule


def test_the_main_route_table_counts_for_a_subnet_without_its_own(vpc):
    vpc_id, subnet = vpc
    ec2 = boto3.client("ec2")
    [main] = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"]
    assert problems(vpc_id, subnet)  # nothing out yet
    gateway = ec2.create_transit_gateway()["TransitGateway"]["TransitGatewayId"]
    ec2.create_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=gateway)
    assert problems(vpc_id, subnet) == []


def test_both_dns_attributes_must_be_on(vpc):
    vpc_id, _ = vpc
    ec2 = boto3.client("ec2")
    assert preflight.vpc_dns_problems(ec2, vpc_id, "spec.existingVPC.vpcID") == []
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": False})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": False})
    found = preflight.vpc_dns_problems(ec2, vpc_id, "spec.existingVPC.vpcID")
    assert [f for f, _ in found] == ["spec.existingVPC.vpcID"] * 2
    assert "enableDnsSupport off" in found[0][1] and "--enable-dns-support" in found[0][1]
    assert "enableDnsHostnames off" in found[1][1] and "--enable-dns-hostnames" in found[1][1]


def test_provisioning_over_a_vpc_without_egress_fails_first_naming_what_to_fix(monkeypatch, store, vpc):
    vpc_id, subnet = vpc
    manifest = yaml.safe_load((EXAMPLES / "management-service-existing-vpc.yaml").read_text())
    manifest["spec"]["existingVPC"] = {"vpcID": vpc_id, "subnetIDs": [subnet["SubnetId"]]}
    settings = configure(monkeypatch, AWSManagementService.model_validate(manifest))
    with pytest.raises(ExecutionFailed) as info:
        Interpreter("ProvisionNetwork", settings, store).run({}, "provision-network")
    assert info.value.error == "InvalidSpec"
    assert "spec.existingVPC.subnetIDs[0]" in info.value.cause and "no default route" in info.value.cause
    assert (store.network.get() is None) or store.network.get().status != "READY"
    # With a way out, the same network validates and becomes READY.
    existing_vpc.ensure_egress(boto3.client("ec2"), vpc_id, subnet["SubnetId"])
    run = Interpreter("ProvisionNetwork", settings, store).run({}, "provision-network-2")
    assert run.entered[-1] == "Provisioned" and store.network.get().status == "READY"
