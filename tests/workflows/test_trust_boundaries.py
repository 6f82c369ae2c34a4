"""An execution proves who it is by its own name and the operation recorded for that name,
never by fields of its input (DESIGN §10, issue 7 defect 1); a delete finishes even when an
instance of the cluster belongs to no Auto Scaling group any more (defect 2)."""

from __future__ import annotations

import pytest

from kubestep import inventory, naming

from .conftest import ha_request


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=300)


def first_states(runtime, arn):
    history = runtime.boto3_client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


@pytest.mark.parametrize(
    ("workflow", "payload"),
    [
        ("CreateCluster", ha_request("impostor")),
        ("DeleteCluster", {"clusterName": "impostor"}),
        ("ProvisionNetwork", {}),
        ("DeprovisionNetwork", {}),
    ],
)
@pytest.mark.parametrize("field", ["uid", "operationId"])
def test_identity_fields_in_any_console_input_are_refused_in_the_first_state(runtime, store, workflow, payload, field):
    name = f"impostor-{workflow.lower()}-{field.lower()}"
    result = run(runtime, workflow, {**payload, field: "abcd1234"}, name)
    assert (result["status"], result["error"]) == ("FAILED", "InvalidSpec"), result.get("cause")
    assert field in result["cause"] and "set by kubestep" in result["cause"]
    assert len(first_states(runtime, result["executionArn"])) == 1
    assert store.operations.get(name) is None


@pytest.fixture(scope="module")
def victim(runtime, store):
    """The cluster the tests below try to act for, created under the operation id create-victim-1."""
    created = run(runtime, "CreateCluster", ha_request("victim"), "create-victim-1")
    assert created["status"] == "SUCCEEDED", created.get("cause")
    return store.clusters.get("victim")


def test_an_execution_named_after_another_operation_cannot_act_for_it(runtime, store, victim):
    before = store.operations.get("create-victim-1")
    # A DeleteCluster started from the console under the create's operation id.
    result = run(runtime, "DeleteCluster", {"clusterName": "victim"}, "create-victim-1")
    assert (result["status"], result["error"]) == ("FAILED", "InvalidSpec")
    assert "already the id of another operation" in result["cause"]
    # The other operation's record is untouched, the cluster still RUNNING with all its resources.
    assert store.operations.get("create-victim-1") == before
    assert store.clusters.get("victim").phase == "RUNNING"
    assert inventory.count(inventory.cluster_resources(victim.uid, runtime.boto3_client)) > 0
    assert store.locks.get("victim") is None


def test_a_console_create_mints_its_own_uid_and_selects_only_its_own_resources(runtime, store, victim):
    mine = run(runtime, "CreateCluster", ha_request("neighbour"), "create-neighbour-1")
    assert mine["status"] == "SUCCEEDED", mine.get("cause")
    neighbour = store.clusters.get("neighbour")
    assert neighbour.uid != victim.uid
    assert store.operations.get("create-neighbour-1").uid == neighbour.uid
    assert run(runtime, "DeleteCluster", {"clusterName": "neighbour"}, "delete-neighbour-1")["status"] == "SUCCEEDED"
    assert inventory.count(inventory.cluster_resources(victim.uid, runtime.boto3_client)) > 0
    assert store.clusters.get("victim").phase == "RUNNING"


def test_delete_finishes_with_instances_outside_any_group(runtime, store, victim):
    asg = runtime.boto3_client("autoscaling")
    pool = naming.node_pool(victim.uid, "general")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[pool])["AutoScalingGroups"][0]
    detached = group["Instances"][0]["InstanceId"]
    # Detached by hand: the instance keeps running with the cluster's tags, no group owns it.
    asg.detach_instances(InstanceIds=[detached], AutoScalingGroupName=pool, ShouldDecrementDesiredCapacity=True)
    result = run(runtime, "DeleteCluster", {"clusterName": "victim"}, "delete-victim-1")
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert inventory.count(inventory.cluster_resources(victim.uid, runtime.boto3_client)) == 0
    state = runtime.boto3_client("ec2").describe_instances(InstanceIds=[detached])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")
