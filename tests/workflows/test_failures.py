"""Bad input, stopped executions, failed bootstraps: nothing lost, nothing orphaned."""

from __future__ import annotations

import time

from kubestep import inventory

from .conftest import ha_request


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=300)


def all_asgs(runtime):
    return runtime.boto3_client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]


def test_invalid_manifest_fails_in_the_first_state_naming_each_field(runtime):
    bad = ha_request("Bad_Name")
    bad["cluster"]["spec"]["controlPlane"]["version"] = "1.2"
    bad["nodePools"][0]["spec"]["minNodeCount"] = 9
    before = len(all_asgs(runtime))
    result = run(runtime, "CreateCluster", bad, "create-invalid")
    assert result["status"] == "FAILED"
    assert result["error"] == "InvalidSpec"
    for field in ("cluster.metadata.name", "cluster.spec.controlPlane.version", "nodePools[0].spec"):
        assert field in result["cause"]
    history = runtime.boto3_client("stepfunctions").get_execution_history(executionArn=result["executionArn"])
    entered = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if e["type"].endswith("StateEntered")]
    assert entered == ["ValidateRequest"]
    assert len(all_asgs(runtime)) == before


def test_not_json_object_input_is_invalid_spec(runtime):
    result = run(runtime, "CreateCluster", ["not", "an", "object"], "create-not-object")
    assert (result["status"], result["error"]) == ("FAILED", "InvalidSpec")


def test_bootstrap_failure_on_replica_2_rolls_back_everything(runtime, store):
    runtime.simulator.fail_bootstrap("flaky", replica=2, phase="kubeadm-join")
    try:
        result = run(runtime, "CreateCluster", ha_request("flaky"), "create-flaky-1")
    finally:
        runtime.simulator.clear_failures()
    assert result["status"] == "FAILED"
    assert result["error"] == "BootstrapFailed"
    record = store.clusters.get("flaky")
    assert record.phase == "ERROR"
    warnings = [e for e in store.events.list("flaky") if e.type == "Warning"]
    assert any("replica 2" in e.message and "kubeadm-join" in e.message for e in warnings), [
        (e.reason, e.message) for e in warnings
    ]
    assert inventory.count(inventory.cluster_resources(record.uid, runtime.boto3_client)) == 0
    assert store.locks.get("flaky") is None
    # The ERROR record can be deleted, and the name used again.
    assert run(runtime, "DeleteCluster", {"clusterName": "flaky"}, "delete-flaky")["status"] == "SUCCEEDED"


def test_create_stopped_in_the_replica_map_resumes_and_takes_over_the_lock(runtime, store, in_flight):
    sfn = runtime.boto3_client("stepfunctions")
    # Without the execution-status janitor, the stopped run's lock stays: the re-run must take it over.
    runtime.events.stop()
    try:
        arn = runtime.start_execution("CreateCluster", ha_request("resume"), name="create-resume-1")
        deadline = time.monotonic() + 120
        while True:
            events = sfn.get_execution_history(executionArn=arn)["events"]
            if any(
                e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "EnsureReplicaGroup"
                for e in events
            ):
                break
            assert time.monotonic() < deadline, "never reached the replica Map"
            time.sleep(0.02)
        sfn.stop_execution(executionArn=arn)
        assert runtime.wait_execution(arn, timeout=60)["status"] == "ABORTED"
        in_flight.wait_ended(arn)  # the stopped run's tasks still running
        held = store.locks.get("resume")
        assert held and held.operation_id == "create-resume-1"
        result = run(runtime, "CreateCluster", ha_request("resume"), "create-resume-2")
    finally:
        runtime.events.start()
    assert result["status"] == "SUCCEEDED", result.get("cause")
    record = store.clusters.get("resume")
    reasons = [e.reason for e in store.events.list("resume")]
    assert "LockTakenOver" in reasons
    found = inventory.cluster_resources(record.uid, runtime.boto3_client)
    assert len([g for g in found["autoScalingGroups"] if g["role"] == "control-plane"]) == 3
    assert len([g for g in found["autoScalingGroups"] if g["role"] == "node"]) == 2
    assert len([v for v in found["volumes"] if v["role"] == "etcd"]) == 3
    assert len(found["launchTemplates"]) == 5 and len(found["securityGroups"]) == 3
    assert len(found["loadBalancers"]) == 1 and len(found["targetGroups"]) == 1
    assert run(runtime, "DeleteCluster", {"clusterName": "resume"}, "delete-resume")["status"] == "SUCCEEDED"
    assert inventory.count(inventory.cluster_resources(record.uid, runtime.boto3_client)) == 0


def test_aborted_execution_releases_its_lock_through_eventbridge(runtime, store, in_flight):
    sfn = runtime.boto3_client("stepfunctions")
    arn = runtime.start_execution("CreateCluster", ha_request("aborted"), name="create-aborted-1")
    deadline = time.monotonic() + 60
    while store.locks.get("aborted") is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sfn.stop_execution(executionArn=arn)
    runtime.wait_execution(arn, timeout=60)
    runtime.events.wait_idle(timeout=30)
    deadline = time.monotonic() + 30
    while store.locks.get("aborted") is not None:
        assert time.monotonic() < deadline, "the execution-status rule did not release the lock"
        time.sleep(0.05)
    operation = store.operations.get("create-aborted-1")
    assert operation.status == "ABORTED"
    in_flight.wait_ended(arn)
    assert run(runtime, "DeleteCluster", {"clusterName": "aborted"}, "delete-aborted")["status"] == "SUCCEEDED"


def test_delete_can_keep_the_etcd_volumes(runtime, store):
    assert run(runtime, "CreateCluster", ha_request("keeper"), "create-keeper")["status"] == "SUCCEEDED"
    uid = store.clusters.get("keeper").uid
    result = run(runtime, "DeleteCluster", {"clusterName": "keeper", "keepEtcdVolumes": True}, "delete-keeper")
    assert result["status"] == "SUCCEEDED", result.get("cause")
    left = inventory.cluster_resources(uid, runtime.boto3_client)
    kept = [v for v in left["volumes"] if v["role"] == "etcd"]
    assert len(kept) == 3 and all(v["state"] == "available" for v in kept)
    assert inventory.count(left) == len(kept), "only the etcd volumes stay"
    ec2 = runtime.boto3_client("ec2")
    for volume in kept:  # the test cleans up what it asked to keep
        ec2.delete_volume(VolumeId=volume["id"])


def test_cancelling_a_create_midway_compensates_and_frees_the_name(runtime, store):
    """Issue 7, acceptance 4: ABORTED, the lock released, what the create made deleted, and the
    same name created again at once."""
    from kubestep.api.client import ApiClient

    api = ApiClient(runtime.api_url, sign=False)
    operation = api.create_cluster(ha_request("cancelme"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the create has made something worth undoing
        record = store.clusters.get("cancelme")
        if record is not None and store.etcd.members("cancelme"):
            break
        time.sleep(0.1)
    uid = store.clusters.get("cancelme").uid
    cancelled = api.cancel_operation(operation["id"])
    assert cancelled["status"] in ("CANCELLING", "ROLLING_BACK"), cancelled
    done = api.wait_operation(operation["id"], timeout=300, poll=0.2)
    assert done["status"] == "ABORTED" and done["error"] == "OperationCancelled", done
    assert "cancelled through the API" in done["cause"]
    assert store.locks.get("cancelme") is None
    assert store.clusters.get("cancelme") is None
    left = inventory.cluster_resources(uid, runtime.boto3_client)
    assert inventory.count(left) == 0, {kind: found for kind, found in left.items() if found}
    reasons = [e.reason for e in store.events.list("cancelme")]
    assert "OperationCancelled" in reasons and reasons[-1] == "Cancelled"
    # The name is free at once.
    again = api.wait_operation(api.create_cluster(ha_request("cancelme"))["id"], timeout=300, poll=0.2)
    assert again["status"] == "SUCCEEDED", again
    assert api.wait_operation(api.delete_cluster("cancelme")["id"], timeout=300, poll=0.2)["status"] == "SUCCEEDED"
