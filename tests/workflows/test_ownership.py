"""Ownership and recovery in the emulator, through the API, the real ASL and handlers and the
local Scheduler and EventBridge stand-ins:

- a one-off upgrade belongs to its cluster incarnation: deleting the cluster cancels it, and a
  new cluster of the same name is never upgraded by it;
- RUNNING comes only from a gate over what runs: after a failed gate, an "update" to the spec it
  already has replaces the failed instance and gates it; drift compares the spec with what runs;
- an upgrade over a replica group deleted by hand stops before changing anything and says
  `kubestep repair cluster`; a cancelled update leaves the cluster DEGRADED with that command,
  never ERROR with "delete it";
- an operation's cause is the error's type and message, never a stack trace;
- every AWS call these operations made is granted by the synthesized policies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kubestep import versions
from kubestep.api.client import ApiClient, ApiError

from .fault_matrix import small_cluster

CLUSTERS = ("own-sched", "own-gate", "own-drift", "own-lock", "own-iam")
STACK_TRACE_MARKS = ("Traceback", "stackTrace", 'File "', "line ")
# Most of this module's wall time is modelled waiting (boots, health gates, a schedule's time); its
# steps' deadlines count modelled waits, not the clock (kubestep.flow.context): at 0.01 it takes
# about 30% less for the same work.
RUNTIME_TIME_SCALE = 0.01


@pytest.fixture(scope="module")
def api(runtime) -> Iterator[ApiClient]:
    client = ApiClient(runtime.api_url, sign=False)
    yield client
    # The network is deprovisioned last (test_zz_network_and_iam): leave no cluster behind.
    for name in CLUSTERS:
        try:
            finish(client, client.delete_cluster(name))
        except ApiError as exc:
            assert exc.status == 404, exc


def finish(api: ApiClient, operation: dict, timeout: float = 600) -> dict:
    return api.wait_operation(operation["id"], timeout=timeout, poll=0.2)


def create(api: ApiClient, name: str) -> dict:
    done = finish(api, api.create_cluster(small_cluster(name)))
    assert done["status"] == "SUCCEEDED", done
    return api.get_cluster(name)


def wait_for(condition, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def replica_instances(runtime, group: str) -> list[dict]:
    asg, ec2 = runtime.boto3_client("autoscaling"), runtime.boto3_client("ec2")
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    ids = [m["InstanceId"] for m in members if m["LifecycleState"] == "InService"]
    if not ids:
        return []
    return [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]


def test_a_one_off_upgrade_never_outlives_its_cluster(runtime, store, api) -> None:
    """`upgrade --at`, delete, create the same name again, the time comes: the new cluster is
    not upgraded; the schedule says it was cancelled by the delete, and Scheduler holds it no more."""
    create(api, "own-sched")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    schedule = api.upgrade_cluster("own-sched", versions.catalog().minors[36].default_version, at=at.isoformat())
    old_uid = store.clusters.get("own-sched").uid
    done = finish(api, api.delete_cluster("own-sched"))
    assert done["status"] == "SUCCEEDED", done
    cancelled = api.get_schedule(schedule["id"])
    assert cancelled["state"] == "CANCELLED", cancelled
    assert old_uid in cancelled["outcome"] and done["id"] in cancelled["outcome"]
    names = [s["Name"] for s in runtime.boto3_client("scheduler").list_schedules()["Schedules"]]
    assert schedule["id"] not in names
    again = create(api, "own-sched")
    assert again["metadata"]["uid"] != old_uid
    fired = runtime.tick(at + timedelta(seconds=1))
    assert schedule["id"] not in [f.name for f in fired.fired]
    assert api.get_cluster("own-sched")["status"]["version"] == again["status"]["version"]
    assert [o for o in api.list_operations("own-sched") if o["kind"] == "UpdateCluster"] == []


def test_resuming_after_a_failed_gate_replaces_and_gates_what_runs(runtime, store, api) -> None:
    """A bigger instance type whose instance fails its bootstrap: DEGRADED. Drift says what runs.
    The same version again (a "resume") replaces the failed instance with one of the spec's type
    and passes it through the gate before the cluster is RUNNING."""
    create(api, "own-gate")
    version = store.clusters.get("own-gate").version
    failure = runtime.simulator.fail_bootstrap("own-gate", replica=0, phase="kubelet", times=1)
    failed = finish(api, api.update_cluster("own-gate", {"controlPlane": {"instanceType": "m5.xlarge"}}))
    assert failed["status"] == "FAILED" and failure.remaining == 0, failed
    assert api.get_cluster("own-gate")["status"]["phase"] == "DEGRADED"
    member = store.etcd.require_member("own-gate", 0)
    detected = finish(api, api.repair_cluster("own-gate", detect_only=True))
    drift = detected["result"]["drift"]
    assert "m5.xlarge" in drift.get("replica-0/instance", "") and "failed:kubelet" in drift["replica-0/instance"], drift
    resumed = finish(api, api.upgrade_cluster("own-gate", version))
    assert resumed["status"] == "SUCCEEDED", resumed
    [instance] = replica_instances(runtime, member.asg_name)
    assert instance["InstanceType"] == "m5.large", "RUNNING with an instance the spec does not name"
    report = store.reports.replica(store.clusters.get("own-gate").uid, 0)
    assert report.ok and report.instance_id == instance["InstanceId"]
    assert store.etcd.require_member("own-gate", 0).instance_id == instance["InstanceId"]
    cluster = api.get_cluster("own-gate")
    assert cluster["status"]["phase"] == "RUNNING" and cluster["spec"]["controlPlane"]["instanceType"] == "m5.large"
    clean = finish(api, api.repair_cluster("own-gate", detect_only=True))
    assert clean["result"]["drift"] == {}, clean["result"]


def test_an_upgrade_over_a_hand_deleted_group_says_repair_and_changes_nothing(runtime, store, api) -> None:
    cluster = create(api, "own-drift")
    member = store.etcd.require_member("own-drift", 0)
    runtime.boto3_client("autoscaling").delete_auto_scaling_group(
        AutoScalingGroupName=member.asg_name, ForceDelete=True
    )
    templates = store.etcd.require_member("own-drift", 0).launch_template_version
    done = finish(api, api.upgrade_cluster("own-drift", versions.catalog().minors[36].default_version))
    assert done["status"] == "FAILED" and done["error"] == "DriftDetected", done
    assert "kubestep repair cluster own-drift" in done["cause"] and "replica-0/asg: missing" in done["cause"]
    assert not any(mark in done["cause"] for mark in STACK_TRACE_MARKS), done["cause"]
    status = api.get_cluster("own-drift")["status"]
    assert status["phase"] == "DEGRADED" and status["version"] == cluster["status"]["version"]
    assert "kubestep repair cluster own-drift" in status["lastError"]["hint"]
    assert store.etcd.require_member("own-drift", 0).launch_template_version == templates
    repaired = finish(api, api.repair_cluster("own-drift"))
    assert repaired["status"] == "SUCCEEDED", repaired
    assert api.get_cluster("own-drift")["status"]["phase"] == "RUNNING"


def test_a_node_pool_update_over_its_hand_deleted_group_says_repair_and_changes_nothing(runtime, store, api) -> None:
    create(api, "own-pool-drift")
    pool = store.node_pools.get("own-pool-drift", "general")
    runtime.boto3_client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=pool.asg_name, ForceDelete=True)
    done = finish(api, api.update_node_pool("own-pool-drift", "general", {"maxNodeCount": 7}))
    assert done["status"] == "FAILED" and done["error"] == "DriftDetected", done
    assert (
        "kubestep repair cluster own-pool-drift" in done["cause"] and "nodepool-general/asg: missing" in done["cause"]
    )
    assert not any(mark in done["cause"] for mark in STACK_TRACE_MARKS), done["cause"]
    assert store.node_pools.get("own-pool-drift", "general").spec.spec.max_node_count == pool.spec.spec.max_node_count
    repaired = finish(api, api.repair_cluster("own-pool-drift"))
    assert repaired["status"] == "SUCCEEDED", repaired
    again = finish(api, api.update_node_pool("own-pool-drift", "general", {"maxNodeCount": 7}))
    assert again["status"] == "SUCCEEDED", again


def test_a_cancelled_update_leaves_it_degraded_with_the_command_that_repairs_it(runtime, store, api) -> None:
    create(api, "own-lock")
    runtime.simulator.stop()  # the new instance never reports: the gate waits until the cancel
    try:
        operation = api.update_cluster("own-lock", {"controlPlane": {"instanceType": "m5.xlarge"}})
        wait_for(lambda: "CheckReplicaHealth" in json.dumps(api.operation_steps(operation["id"])), "the gate")
        api.cancel_operation(operation["id"])
        assert finish(api, operation)["status"] == "ABORTED"
    finally:
        runtime.simulator.start()
    status = wait_for(
        lambda: (s := api.get_cluster("own-lock")["status"])["phase"] != "RECONCILING" and s, "the janitor"
    )
    assert status["phase"] == "DEGRADED", status
    assert "kubestep repair cluster own-lock" in status["lastError"]["hint"]
    warnings = [e["message"] for e in api.events("own-lock") if e["type"] == "Warning"]
    assert warnings and not any("delete it" in w for w in warnings), warnings
    repaired = finish(api, api.repair_cluster("own-lock"))
    assert repaired["status"] == "SUCCEEDED", repaired
    assert api.get_cluster("own-lock")["status"]["phase"] == "RUNNING"


def test_a_failure_before_the_catch_records_the_errors_type_and_message(runtime, store, api) -> None:
    """A console delete of a cluster another operation holds fails in its AcquireLock state (no
    Catch yet): the operation's cause is the LockHeld message, no stack trace, its step once."""
    if store.clusters.get("own-lock") is None:
        create(api, "own-lock")
    holder = store.locks.acquire("own-lock", "manual-hold", None, lambda arn: True)
    try:
        result = runtime.run_execution(
            "DeleteCluster", {"clusterName": "own-lock"}, name="delete-own-lock-held", check=False, timeout=120
        )
        assert (result["status"], result["error"]) == ("FAILED", "LockHeld"), result
        operation = wait_for(
            lambda: (o := api.operation("delete-own-lock-held"))["status"] != "RUNNING" and o, "the janitor"
        )
    finally:
        store.locks.release("own-lock", holder.operation_id)
    assert operation["error"] == "LockHeld" and "manual-hold" in operation["cause"], operation
    assert not any(mark in operation["cause"] for mark in STACK_TRACE_MARKS), operation["cause"]
    assert operation["cause"].count("AcquireLock") <= 1 and operation["cause"].count("LockHeld") <= 1
    assert api.get_cluster("own-lock")["status"]["phase"] == "RUNNING"


def test_the_calls_these_operations_made_are_granted(runtime, store, api) -> None:
    """The new calls at resource level against the synthesized policies: a delete cancelling its
    schedules in Scheduler, an update's preflight of what it names and its drift check, the
    roll's look at every replica's live instance."""
    from tests.iam.checker import check
    from tests.iam.template import deployed_resolver, function_policies, named_role_policies, stack_ledger

    from .runtime_checks import _describe_tags

    first_call = len(runtime.recorder.call_records())
    create(api, "own-iam")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    api.upgrade_cluster("own-iam", versions.catalog().minors[36].default_version, at=at.isoformat())
    record = store.clusters.get("own-iam")
    references = {"securityGroupIDs": [record.resources["sg-nodes"].id], "imageID": record.images["amd64"]}
    planned = api.update_cluster("own-iam", {"controlPlane": references}, dry_run=True)
    assert planned["dryRun"] is True, planned
    updated = finish(api, api.update_cluster("own-iam", {"upgradePolicy": {"releaseChannel": "stable"}}))
    assert updated["status"] == "SUCCEEDED", updated
    assert finish(api, api.delete_cluster("own-iam"))["status"] == "SUCCEEDED"
    # The instances of clusters earlier tests made report meanwhile, as roles whose policies were
    # put before `first_call`: the module's runtime check judges those; this test, its own.
    uid = record.uid
    records = [r for r in runtime.recorder.call_records()[first_call:] if not r.role_name or uid in r.role_name]
    by = {(r.function_name.endswith("cluster-tasks"), r.function_name.endswith("-api"), r.action) for r in records}
    assert (True, False, "scheduler:DeleteSchedule") in by and (False, True, "ec2:DescribeImages") in by, by
    template = json.loads(runtime.synthesize().read_text())
    cloudformation = runtime.boto3_client("cloudformation")
    resolver = deployed_resolver(template, cloudformation, cloudformation.describe_stacks()["Stacks"][0]["StackName"])
    ledger = stack_ledger(template, resolver, describe_tags=_describe_tags(runtime))
    result = check(
        records, function_policies(template, resolver), ledger, roles=named_role_policies(template, resolver)
    )
    assert not result.findings, f"{len(result.findings)} calls not granted:\n{result.summary()}"
