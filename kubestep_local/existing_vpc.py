"""`kubestep local up --existing-vpc`: a stand-in for "a VPC you already have" (the
existing-VPC management service) — a VPC with one private subnet, made in the emulator before
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
    return vpc_id, subnet_id


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
