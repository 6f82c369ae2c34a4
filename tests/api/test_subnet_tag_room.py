"""Which subnets a create tags, and when a full one refuses it before it starts.

A cluster tags `kubernetes.io/cluster/<uid>` only on the subnets its spec names for Service load
balancers: the AWS cloud controller manager finds a subnet carrying no `kubernetes.io/cluster/`
tag for every cluster (kubernetes/cloud-provider-aws, pkg/providers/v1/aws.go `findSubnets`,
tags.go `hasNoClusterPrefixTag`), so the service's shared subnets stay untagged and never fill.
EC2 holds at most 50 tags per resource (Amazon EC2 User Guide, "Tag restrictions"): a create
naming a full subnet would fail late, at its TagSubnets step, after its control plane exists."""

from __future__ import annotations

import boto3
import pytest

from kubestep import naming
from kubestep.settings import settings
from kubestep.store import Store
from tests.api.conftest import example_body, executions
from tests.api.helpers import call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def _network_subnet(api: Store, tags: int) -> str:
    ec2 = boto3.client("ec2", "us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    _tag(subnet, tags)
    api.network.update(vpc_id=vpc)
    api.network.update_zone("us-east-1a", private_subnet_id=subnet)
    return subnet


def _other_subnet(api: Store, tags: int, *, the_services: bool = True) -> str:
    """A subnet of the network's VPC that no zone of the network uses; with `the_services`, made by
    the service (its gke:management-service tag, counted in `tags`)."""
    ec2 = boto3.client("ec2", "us-east-1")
    vpc = api.network.get().vpc_id
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.9.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    if the_services:
        ec2.create_tags(Resources=[subnet], Tags=[{"Key": naming.TAG_SERVICE, "Value": settings().service_name}])
        tags -= 1
    _tag(subnet, tags)
    return subnet


def _tag(subnet: str, count: int) -> None:
    if count:
        boto3.client("ec2", "us-east-1").create_tags(
            Resources=[subnet],
            Tags=[{"Key": f"kubernetes.io/cluster/c{i:04d}", "Value": "shared"} for i in range(count)],
        )


def _naming(subnet: str) -> dict:
    body = example_body()
    body["cluster"]["spec"].setdefault("networking", {})["serviceLoadBalancerSubnetIDs"] = [subnet]
    return body


def test_a_full_service_subnet_does_not_refuse_a_create_that_names_no_subnets(api: Store) -> None:
    # Clusters on the service's subnets add no tag to them: the 47th cluster of a network starts.
    _network_subnet(api, tags=50)
    answer = call("POST", "/v1/clusters", body=example_body())
    assert answer.status == 202, answer.text


def test_a_create_naming_a_full_subnet_is_refused_naming_the_field_and_the_subnet(api: Store) -> None:
    _network_subnet(api, tags=0)
    full = _other_subnet(api, tags=50)
    answer = call("POST", "/v1/clusters", body=_naming(full))
    assert answer.status == 400, answer.text
    assert "serviceLoadBalancerSubnetIDs" in answer.text and full in answer.text and "50" in answer.text
    assert executions("CreateCluster") == [] and api.clusters.get("prod") is None


def test_a_create_naming_a_subnet_with_room_for_one_more_tag_starts(api: Store) -> None:
    _network_subnet(api, tags=0)
    answer = call("POST", "/v1/clusters", body=_naming(_other_subnet(api, tags=49)))
    assert answer.status == 202, answer.text


def test_a_create_naming_a_subnet_the_service_did_not_make_is_refused(api: Store) -> None:
    # The management role may tag only the service's own subnets (infra/permissions.py,
    # SubnetClusterTags): on AWS the create would fail at TagSubnets after its control plane exists.
    _network_subnet(api, tags=0)
    foreign = _other_subnet(api, tags=0, the_services=False)
    answer = call("POST", "/v1/clusters", body=_naming(foreign))
    assert answer.status == 400, answer.text
    assert "serviceLoadBalancerSubnetIDs[0]" in answer.text and foreign in answer.text
    assert "only the service's own subnets" in answer.text
    assert executions("CreateCluster") == [] and api.clusters.get("prod") is None
