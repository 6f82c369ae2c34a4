"""The bench's classification of AWS calls (kubestep_local/bench.py): reads and writes, and a
Describe/List that names nothing (against EC2's token buckets it reads the whole account)."""

from __future__ import annotations

from kubestep_local.bench import PRICE_PER_TRANSITION, _cost, is_read, is_unfiltered, reference_body_named
from kubestep_local.recorder import CallRecord


def call(action: str, **params) -> CallRecord:
    return CallRecord("ClusterTasks", "op", "arn", action, operation=action.partition(":")[2], params=params)


def test_reads_writes_and_unfiltered_describes() -> None:
    assert is_read(call("ec2:DescribeInstances")) and is_read(call("dynamodb:Query"))
    assert not is_read(call("ec2:RunInstances")) and not is_read(call("dynamodb:PutItem"))
    assert is_unfiltered(call("ec2:DescribeInstances"))
    assert is_unfiltered(call("elasticloadbalancing:DescribeLoadBalancers", MaxResults=10))
    assert not is_unfiltered(call("ec2:DescribeInstances", InstanceIds=["i-1"]))
    assert not is_unfiltered(call("ec2:DescribeNetworkInterfaces", Filters=[{"Name": "x", "Values": ["y"]}]))
    assert not is_unfiltered(call("autoscaling:DescribeAutoScalingGroups", AutoScalingGroupNames=["g"]))
    assert not is_unfiltered(call("elasticloadbalancing:DescribeTags", ResourceArns=["arn"]))
    assert not is_unfiltered(call("sqs:ListQueues", QueueNamePrefix="gke-"))
    assert not is_unfiltered(call("ec2:DescribeInstanceTypes", InstanceTypes=["t3.medium"]))
    assert not is_unfiltered(call("events:ListTargetsByRule", Rule="gke-x-termination"))
    # An empty filter list narrows nothing; a Get names its resource by definition.
    assert is_unfiltered(call("ec2:DescribeVolumes", Filters=[]))
    assert not is_unfiltered(call("secretsmanager:GetSecretValue"))


def test_cost_counts_transitions_invocations_and_request_units() -> None:
    cost = _cost(1000, 0, 0.0, [call("dynamodb:PutItem"), call("dynamodb:GetItem")])
    assert cost["stepFunctions"] == round(1000 * PRICE_PER_TRANSITION, 6) == 0.025
    assert cost["total"] == round(sum(v for k, v in cost.items() if k != "total"), 6)
    assert _cost(0, 1_000_000, 0.0, [])["lambda"] == 0.2


def test_a_named_copy_renames_the_cluster_and_its_pools_owner() -> None:
    body = {"cluster": {"metadata": {"name": "prod"}}, "nodePools": [{"spec": {"clusterName": "prod"}}]}
    named = reference_body_named(body, "bench-1")
    assert named["cluster"]["metadata"]["name"] == "bench-1"
    assert named["nodePools"][0]["spec"]["clusterName"] == "bench-1"
    assert body["cluster"]["metadata"]["name"] == "prod"  # the original is untouched
