"""A create whose cluster tag would not fit on a subnet is refused before it starts: every cluster
puts `kubernetes.io/cluster/<uid>` on the subnets its Service load balancers use, and EC2 holds
at most 50 tags per resource (Amazon EC2 User Guide, "Tag restrictions"), so the 47th cluster of
one network would otherwise fail late, at its TagSubnets step, after its control plane exists."""

from __future__ import annotations

import boto3
import pytest

from kubestep.store import Store
from tests.api.conftest import example_body, executions
from tests.api.helpers import call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def _network_subnet(api: Store, tags: int) -> str:
    ec2 = boto3.client("ec2", "us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    if tags:
        ec2.create_tags(
            Resources=[subnet],
            Tags=[{"Key": f"kubernetes.io/cluster/c{i:04d}", "Value": "shared"} for i in range(tags)],
        )
    api.network.update(vpc_id=vpc)
    api.network.update_zone("us-east-1a", private_subnet_id=subnet)
    return subnet


def test_a_create_is_refused_when_a_service_subnet_has_no_room_for_its_tag(api: Store) -> None:
    subnet = _network_subnet(api, tags=50)
    answer = call("POST", "/v1/clusters", body=example_body())
    assert answer.status == 400, answer.text
    assert "network" in answer.text and subnet in answer.text and "50" in answer.text
    assert "serviceLoadBalancerSubnetIDs" in answer.text  # says the way out
    assert executions("CreateCluster") == [] and api.clusters.get("prod") is None


def test_a_create_starts_while_the_subnet_has_room_for_one_more_tag(api: Store) -> None:
    _network_subnet(api, tags=49)
    answer = call("POST", "/v1/clusters", body=example_body())
    assert answer.status == 202, answer.text
