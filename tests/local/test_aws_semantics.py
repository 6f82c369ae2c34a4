"""AWS answers moto 5.2.5 gets wrong where kubestep's idempotency depends on them
(moto_compat.match_aws_semantics): a call resent after a lost response meets AWS's answer."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kubestep_local.runtime import LocalRuntime


@pytest.fixture(scope="module")
def network(runtime: LocalRuntime) -> dict[str, Any]:
    ec2 = runtime.boto3_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    return {"vpc": vpc, "subnet": subnet}


def code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return raised.value.response["Error"]["Code"]


def test_load_balancer_target_group_and_listener_are_idempotent_by_name(runtime, network) -> None:
    elbv2 = runtime.boto3_client("elbv2")
    lb = {"Name": "same", "Subnets": [network["subnet"]], "Type": "network", "Scheme": "internal"}
    first = elbv2.create_load_balancer(**lb)["LoadBalancers"][0]
    assert elbv2.create_load_balancer(**lb)["LoadBalancers"][0]["LoadBalancerArn"] == first["LoadBalancerArn"]
    assert len([b for b in elbv2.describe_load_balancers()["LoadBalancers"] if b["LoadBalancerName"] == "same"]) == 1
    with pytest.raises(ClientError) as raised:
        elbv2.create_load_balancer(**{**lb, "Scheme": "internet-facing"})
    assert code(raised) == "DuplicateLoadBalancerName"
    tg = {"Name": "same-tg", "Protocol": "TCP", "Port": 6443, "VpcId": network["vpc"], "TargetType": "instance"}
    group = elbv2.create_target_group(**tg)["TargetGroups"][0]
    assert elbv2.create_target_group(**tg)["TargetGroups"][0]["TargetGroupArn"] == group["TargetGroupArn"]
    listener = {
        "LoadBalancerArn": first["LoadBalancerArn"],
        "Protocol": "TCP",
        "Port": 443,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    }
    made = elbv2.create_listener(**listener)["Listeners"][0]
    assert elbv2.create_listener(**listener)["Listeners"][0]["ListenerArn"] == made["ListenerArn"]
    assert len(elbv2.describe_listeners(LoadBalancerArn=first["LoadBalancerArn"])["Listeners"]) == 1
    with pytest.raises(ClientError) as raised:
        elbv2.create_listener(**{**listener, "Protocol": "UDP"})
    assert code(raised) == "DuplicateListener"


def test_create_volume_honours_its_client_token(runtime) -> None:
    ec2 = runtime.boto3_client("ec2")
    one = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, ClientToken="semantics-1")["VolumeId"]
    assert ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, ClientToken="semantics-1")["VolumeId"] == one
    assert ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, ClientToken="semantics-2")["VolumeId"] != one


def test_create_launch_template_version_honours_its_client_token(runtime) -> None:
    ec2 = runtime.boto3_client("ec2")
    template = ec2.create_launch_template(LaunchTemplateName="semantics-lt", LaunchTemplateData={})["LaunchTemplate"]
    made = [
        ec2.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"], LaunchTemplateData={"ImageId": "ami-1"}, ClientToken=t
        )["LaunchTemplateVersion"]["VersionNumber"]
        for t in ("semantics-v", "semantics-v", "semantics-w")
    ]
    assert made == [2, 2, 3]


def test_terminating_an_instance_no_group_holds_is_a_validation_error(runtime) -> None:
    # AWS's answer (e.g. to a resent terminate whose first call took effect), as reported in
    # yaybu/touchdown#51: "Instance Id not found - No managed instance found for instance ID".
    autoscaling = runtime.boto3_client("autoscaling")
    with pytest.raises(ClientError) as raised:
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId="i-0123456789abcdef0", ShouldDecrementDesiredCapacity=False
        )
    assert code(raised) == "ValidationError" and "No managed instance found" in str(raised.value)


def test_removing_a_role_a_profile_does_not_hold_is_no_such_entity(runtime) -> None:
    iam = runtime.boto3_client("iam")
    iam.create_role(RoleName="semantics-role", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="semantics-profile")
    with pytest.raises(ClientError) as raised:
        iam.remove_role_from_instance_profile(InstanceProfileName="semantics-profile", RoleName="semantics-role")
    assert code(raised) == "NoSuchEntity"


def test_a_secret_name_is_held_while_its_secret_is_scheduled_for_deletion(runtime) -> None:
    secrets = runtime.boto3_client("secretsmanager")
    secrets.create_secret(Name="semantics-held", SecretString="x")
    secrets.delete_secret(SecretId="semantics-held", RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as raised:
        secrets.create_secret(Name="semantics-held", SecretString="y")
    assert code(raised) == "InvalidRequestException" and "scheduled for deletion" in str(raised.value)


def test_concurrent_requests_never_fail_with_a_server_error(runtime) -> None:
    """moto's backends are not thread-safe (moto_compat.REQUEST_LOCK): DynamoDB transactions
    deep-copy tables other requests change."""
    dynamodb = runtime.boto3_client("dynamodb")
    dynamodb.create_table(
        TableName="semantics-concurrency",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    errors: list[Exception] = []

    def write(worker: int) -> None:
        try:
            for i in range(25):
                dynamodb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": "semantics-concurrency", "Item": {"pk": {"S": f"{worker}-{i}-{j}"}}}}
                        for j in range(3)
                    ]
                )
                dynamodb.put_item(TableName="semantics-concurrency", Item={"pk": {"S": f"plain-{worker}-{i}"}})
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert dynamodb.scan(TableName="semantics-concurrency", Select="COUNT")["Count"] == 6 * 25 * 4
