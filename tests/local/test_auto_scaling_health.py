"""Auto Scaling's replacement of an instance marked Unhealthy (kubestep_local/moto_compat/autoscaling_health.py),
as the Amazon EC2 Auto Scaling API Reference describes SetInstanceHealth: `Unhealthy` makes Auto
Scaling "terminate and replace the unhealthy instance"; by default the call respects the group's
HealthCheckGracePeriod (an instance still within it is left alone), `ShouldRespectGracePeriod:
false` does not. The group keeps its desired capacity, and a termination lifecycle hook holds the
instance in Terminating:Wait first."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from kubestep_local.runtime import LocalRuntime


def _wait(condition: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


@pytest.fixture
def group(runtime: LocalRuntime, request: pytest.FixtureRequest) -> str:
    name = f"health-{request.node.name[-20:].replace('_', '-')}"
    runtime.boto3_client("ec2").create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.medium"}
    )
    runtime.boto3_client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
        # An hour, at the runtime's time scale (36 s): the whole test runs within it.
        HealthCheckGracePeriod=3600,
    )
    return name


def _instances(runtime: LocalRuntime, group: str) -> dict[str, tuple[str, str]]:
    (found,) = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ]
    return {i["InstanceId"]: (i["LifecycleState"], i["HealthStatus"]) for i in found["Instances"]}


def test_within_the_grace_period_a_call_that_respects_it_changes_nothing(runtime, group):
    (instance,) = _wait(lambda: _instances(runtime, group), "an instance")
    autoscaling = runtime.boto3_client("autoscaling")
    autoscaling.set_instance_health(InstanceId=instance, HealthStatus="Unhealthy")
    autoscaling.set_instance_health(InstanceId=instance, HealthStatus="Unhealthy", ShouldRespectGracePeriod=True)
    assert _instances(runtime, group) == {instance: ("InService", "Healthy")}


def test_an_instance_marked_unhealthy_is_drained_through_its_hook_and_replaced(runtime, group):
    (instance,) = _wait(lambda: _instances(runtime, group), "an instance")
    autoscaling = runtime.boto3_client("autoscaling")
    autoscaling.put_lifecycle_hook(
        LifecycleHookName="drain",
        AutoScalingGroupName=group,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=900,
        DefaultResult="CONTINUE",
    )
    autoscaling.set_instance_health(InstanceId=instance, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
    assert _instances(runtime, group)[instance][0] == "Terminating:Wait"
    successor = _wait(lambda: [i for i in _instances(runtime, group) if i != instance], "a successor")
    autoscaling.complete_lifecycle_action(
        LifecycleHookName="drain", AutoScalingGroupName=group, InstanceId=instance, LifecycleActionResult="CONTINUE"
    )
    _wait(lambda: instance not in _instances(runtime, group), "the unhealthy instance to leave")
    assert list(_instances(runtime, group)) == successor
    (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    assert described["DesiredCapacity"] == 1


def test_an_instance_no_group_holds_is_a_validation_error(runtime):
    with pytest.raises(ClientError) as raised:
        runtime.boto3_client("autoscaling").set_instance_health(
            InstanceId="i-0123456789abcdef0", HealthStatus="Unhealthy", ShouldRespectGracePeriod=False
        )
    assert raised.value.response["Error"]["Code"] == "ValidationError"
