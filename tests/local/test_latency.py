"""The latency model (kubestep_local/latency.py, moto_compat.model_latency): resources stay in
AWS's intermediate states for the profile's durations, compressed by the time scale."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kubestep_local.runtime import LocalRuntime


@pytest.fixture
def realistic(runtime: LocalRuntime) -> Iterator[LocalRuntime]:
    """The realistic profile at time scale 0.02 (the workflow tests' scale)."""
    scale = runtime.time_scale.scale
    runtime.time_scale.scale = 0.02
    runtime.set_latency("realistic")
    runtime.latency.reset_report()
    try:
        yield runtime
    finally:
        runtime.set_latency("instant")
        runtime.time_scale.scale = scale


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def network(runtime: LocalRuntime) -> dict[str, str]:
    ec2 = runtime.boto3_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    return {"vpc": vpc, "subnet": subnet}


def test_nat_gateway_volume_and_load_balancer_pass_through_their_intermediate_states(realistic, network) -> None:
    ec2, elbv2 = realistic.boto3_client("ec2"), realistic.boto3_client("elbv2")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]

    def volume_state() -> str:
        return ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"]

    assert volume_state() == "creating"
    until(lambda: volume_state() == "available")  # 10 s of AWS time: 0.2 s here
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=network["subnet"], AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    lb = elbv2.create_load_balancer(Name="latency-lb", Subnets=[network["subnet"]], Type="network", Scheme="internal")
    arn = lb["LoadBalancers"][0]["LoadBalancerArn"]

    def nat_state() -> str:
        return ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"]

    def lb_state() -> str:
        return elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]

    assert (nat_state(), lb_state()) == ("pending", "provisioning")  # 180 s and 150 s: 3.6 s and 3 s
    until(lambda: lb_state() == "active")
    until(lambda: nat_state() == "available")
    ec2.delete_nat_gateway(NatGatewayId=nat)
    assert nat_state() == "deleting"
    until(lambda: nat_state() == "deleted")
    report = realistic.latency.report()
    assert report["nat-gateway-pending"] == {"count": 1, "modelledSeconds": 180.0, "eachSeconds": 180.0}
    assert report["volume-creating"]["count"] == 1 and report["load-balancer-provisioning"]["count"] == 1


def test_an_nlbs_interfaces_linger_after_it_is_deleted_and_block_its_security_group(realistic, network) -> None:
    ec2, elbv2 = realistic.boto3_client("ec2"), realistic.boto3_client("elbv2")
    group = ec2.create_security_group(GroupName="latency-lb", Description="x", VpcId=network["vpc"])["GroupId"]
    lb = elbv2.create_load_balancer(
        Name="latency-eni", Subnets=[network["subnet"]], SecurityGroups=[group], Type="network", Scheme="internal"
    )["LoadBalancers"][0]
    described = [{"Name": "description", "Values": ["ELB net/latency-eni/*"]}]
    assert len(ec2.describe_network_interfaces(Filters=described)["NetworkInterfaces"]) == 1
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    with pytest.raises(ClientError) as raised:
        ec2.delete_security_group(GroupId=group)
    assert raised.value.response["Error"]["Code"] == "DependencyViolation"
    until(lambda: not ec2.describe_network_interfaces(Filters=described)["NetworkInterfaces"])
    ec2.delete_security_group(GroupId=group)


@pytest.fixture
def slower(realistic: LocalRuntime) -> Iterator[LocalRuntime]:
    """Time scale 0.05 while several states are checked one after another (30 s pending: 1.5 s)."""
    realistic.time_scale.scale = 0.05
    yield realistic


def test_instances_targets_and_groups_take_their_time(slower, network) -> None:
    realistic = slower
    ec2, asg, elbv2 = (realistic.boto3_client(s) for s in ("ec2", "autoscaling", "elbv2"))
    template = ec2.create_launch_template(
        LaunchTemplateName="latency-lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    tg = elbv2.create_target_group(
        Name="latency-tg",
        Protocol="TCP",
        Port=6443,
        VpcId=network["vpc"],
        HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="latency-asg",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        VPCZoneIdentifier=network["subnet"],
        TargetGroupARNs=[tg],
    )

    def group() -> dict:
        return asg.describe_auto_scaling_groups(AutoScalingGroupNames=["latency-asg"])["AutoScalingGroups"][0]

    (member,) = group()["Instances"]
    instance = member["InstanceId"]

    def health() -> str:
        return elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]["TargetHealth"]["State"]

    def state() -> str:
        return ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]

    assert (member["LifecycleState"], state(), health()) == ("Pending", "pending", "initial")
    until(lambda: group()["Instances"][0]["LifecycleState"] == "InService")
    assert state() == "running"
    until(lambda: health() == "unhealthy")  # it does not answer its health check yet
    realistic.latency.mark_serving(instance)  # what its bootstrap report tells the model
    assert health() == "unhealthy"  # two healthy checks, 10 s apart, come first
    until(lambda: health() == "healthy")
    asg.delete_auto_scaling_group(AutoScalingGroupName="latency-asg", ForceDelete=True)
    # ForceDelete terminates the group's instances at once; the group goes once they are gone
    # (the profile: shutting down 30 s, the group deleting 45 s).
    assert group()["Status"] == "Delete in progress"
    assert state() in ("shutting-down", "terminated")  # not running on until the group is gone
    until(lambda: state() == "terminated")
    until(lambda: not asg.describe_auto_scaling_groups(AutoScalingGroupNames=["latency-asg"])["AutoScalingGroups"])


def test_back_to_instant_settles_what_is_pending(runtime: LocalRuntime, network) -> None:
    runtime.set_latency("slow")
    ec2 = runtime.boto3_client("ec2")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    assert ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "creating"
    runtime.set_latency("instant")
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=network["subnet"], AllocationId=allocation)["NatGateway"]
    assert nat["State"] == "available"
    with pytest.raises(ValueError, match="latency profile: must be one of instant, realistic, slow"):
        runtime.set_latency("glacial")
