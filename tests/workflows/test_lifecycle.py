"""Issue 10 in the emulator, through the API and the real ASL: node pools scaled in place and
rolled within their update settings through the drain lifecycle hook; the control plane
upgraded one replica at a time behind its health gate, a failed gate leaving the cluster
DEGRADED and the next upgrade resuming; skew refused before anything changes; the upgrade
planner and one-off schedules fired by the local clock."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from kubestep import naming
from kubestep.api.client import ApiClient, ApiError
from kubestep.store import ClusterRecord

from . import runtime_checks
from .conftest import ha_request

AUTOSCALER = "k8s.io/cluster-autoscaler/node-template/"
# Half of this module's wall time at 0.02 is modelled waiting (boots, drains, the upgrade's health
# gate, the planner's windows) and its steps' deadlines count modelled waits, not the clock
# (kubestep.flow.context): at 0.01 it takes about 30 s less for the same work.
RUNTIME_TIME_SCALE = 0.01
# The roll's watcher looks at the group this often in workflow seconds (whatever the time scale).
SAMPLE_EVERY = 2.5


@pytest.fixture(scope="module")
def api(runtime) -> ApiClient:
    return ApiClient(runtime.api_url, sign=False)


@pytest.fixture(scope="module")
def pools(store, api) -> str:
    """The node-pool tests' cluster, its Service load balancers in one named subnet (returned)."""
    network = store.network.get()
    lb_subnet = sorted(z.private_subnet_id for z in network.zones.values())[0]
    request = ha_request("pools")
    request["cluster"]["spec"]["networking"]["serviceLoadBalancerSubnetIDs"] = [lb_subnet]
    done = finish(api, api.create_cluster(request))
    assert done["status"] == "SUCCEEDED", done
    return lb_subnet


@pytest.fixture(scope="module")
def up(api) -> str:
    """The control-plane tests' cluster."""
    create(api, "up")
    return "up"


# What a test run alone needs of the ones before it (in file order they have done it already).
@pytest.fixture
def general_at_three(pools, api) -> None:
    """The general pool scaled to 3..8 (test_scaling_a_node_pool_changes_only_its_group_bounds)."""
    spec = api.get_node_pool("pools", "general")["spec"]
    if (spec["minNodeCount"], spec["maxNodeCount"]) != (3, 8):
        done = finish(api, api.update_node_pool("pools", "general", {"minNodeCount": 3, "maxNodeCount": 8}))
        assert done["status"] == "SUCCEEDED", done


@pytest.fixture
def general_rolled(general_at_three, api, store) -> None:
    """The general pool rolled once (test_changing_labels_rolls_the_pool_within_surge_through_the_drain_hook)."""
    if not store.node_pools.get("pools", "general").rollout:
        done = finish(api, api.update_node_pool("pools", "general", {"labels": {"tier": "web"}}))
        assert done["status"] == "SUCCEEDED", done


@pytest.fixture
def pools_on_1_36(pools, api) -> None:
    """The pools cluster on 1.36.5 (test_a_one_off_schedule_upgrades_at_its_time_and_a_cancelled_one_does_not)."""
    if api.get_cluster("pools")["status"]["version"] != "1.36.5":
        done = finish(api, api.upgrade_cluster("pools", "1.36.5", node_pools="all"), timeout=600)
        assert done["status"] == "SUCCEEDED", done


def finish(api: ApiClient, operation: dict, timeout: float = 400) -> dict:
    return api.wait_operation(operation["id"], timeout=timeout, poll=0.2)


def create(api: ApiClient, name: str, **extra) -> None:
    done = finish(api, api.create_cluster(ha_request(name, **extra)))
    assert done["status"] == "SUCCEEDED", done


def group_tags(runtime, name: str) -> dict[str, str]:
    group = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return {t["Key"]: t["Value"] for t in group["AutoScalingGroups"][0]["Tags"]}


def replica_instances(runtime, uid: str) -> dict[int, list[dict]]:
    ec2 = runtime.boto3_client("ec2")
    found: dict[int, list[dict]] = {}
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag:gke:cluster-uid", "Values": [uid]},
            {"Name": "tag:gke:role", "Values": ["control-plane"]},
        ]
    )
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                found.setdefault(int(tags["gke:replica"]), []).append(instance)
    return found


def roll_order(runtime, execution_arn: str) -> list[tuple[str, str, int]]:
    """(event, state, replica) of the replicas' ReplaceReplica/CheckReplicaHealth, in history order."""
    sfn = runtime.boto3_client("stepfunctions")
    order = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
            if not details or details["name"] not in ("ReplaceReplica", "CheckReplicaHealth"):
                continue
            data = json.loads(details.get("input") or details.get("output") or "{}")
            kind = "entered" if "stateEnteredEventDetails" in event else "exited"
            order.append((kind, details["name"], int(data["replica"])))
    return order


# ---------------------------------------------------------------- node pools


def test_scaling_a_node_pool_changes_only_its_group_bounds(runtime, store, api, pools):
    # Its Service load balancers go to one named subnet: only that one gets the cluster's tag.
    lb_subnet = pools
    cluster_tag = naming.k8s_cluster_tag(store.clusters.get("pools").uid)
    tagged = runtime.boto3_client("ec2").describe_subnets(Filters=[{"Name": "tag-key", "Values": [cluster_tag]}])
    assert [s["SubnetId"] for s in tagged["Subnets"]] == [lb_subnet]
    record = store.node_pools.get("pools", "general")
    asg = runtime.boto3_client("autoscaling")
    before = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[record.asg_name])["AutoScalingGroups"][0]
    instances_before = {i["InstanceId"] for i in before["Instances"]}
    done = finish(api, api.update_node_pool("pools", "general", {"minNodeCount": 3, "maxNodeCount": 8}))
    assert done["status"] == "SUCCEEDED", done
    after = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[record.asg_name])["AutoScalingGroups"][0]
    assert (after["MinSize"], after["MaxSize"]) == (3, 8)
    # No instance replaced, no new launch template version.
    assert instances_before <= {i["InstanceId"] for i in after["Instances"]}
    assert after["LaunchTemplate"] == before["LaunchTemplate"]
    assert store.node_pools.get("pools", "general").launch_spec == record.launch_spec
    pool = api.get_node_pool("pools", "general")
    assert (pool["spec"]["minNodeCount"], pool["spec"]["maxNodeCount"]) == (3, 8)
    # The update ends when the new minimum is ready, and says so: the status counts what it
    # waited for (it used to keep the count from before the new nodes booted).
    in_service = [i for i in after["Instances"] if i["LifecycleState"] == "InService"]
    assert len(in_service) == 3 and pool["status"]["readyNodes"] == 3, (in_service, pool["status"])


def test_changing_labels_rolls_the_pool_within_surge_through_the_drain_hook(runtime, store, api, general_at_three):
    runtime.simulator.wait_idle(30)
    record = store.node_pools.get("pools", "general")
    asg = runtime.boto3_client("autoscaling")

    def members() -> list[dict]:
        return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[record.asg_name])["AutoScalingGroups"][0][
            "Instances"
        ]

    old = {i["InstanceId"] for i in members()}
    desired = len(old)
    assert desired == 3
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            current = members()
            ok = {r.instance_id for r in runtime.simulator.reports() if r.status == "ok"}
            ready = [i for i in current if i["LifecycleState"] == "InService" and i["InstanceId"] in ok]
            samples.append((len(current), len(ready)))
            time.sleep(runtime.time_scale.seconds(SAMPLE_EVERY))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        changes = {"labels": {"tier": "web"}, "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]}
        done = finish(api, api.update_node_pool("pools", "general", changes))
    finally:
        stop.set()
        watcher.join()
    assert done["status"] == "SUCCEEDED", done
    now = {i["InstanceId"] for i in members() if i["LifecycleState"] == "InService"}
    assert len(now) == desired and not now & old, "every node replaced"
    # maxSurge 1, maxUnavailable 0 (the defaults): never more than 4 instances, never fewer than 3 ready.
    assert max(total for total, _ in samples) <= desired + 1, samples
    assert min(ready for _, ready in samples) >= desired, samples
    # Every old instance went through the termination lifecycle hook, completed by the handler.
    drained = {instance for instance, hook in runtime.simulator.drained if hook == naming.DRAIN_HOOK}
    assert old <= drained
    tags = group_tags(runtime, record.asg_name)
    assert tags[f"{AUTOSCALER}label/tier"] == "web"
    assert tags[f"{AUTOSCALER}taint/dedicated"] == "web:NoSchedule"
    events = [e for e in api.events("pools") if e["reason"] == "Draining"]
    assert len(events) >= desired


def test_a_stalled_drain_times_out_with_a_warning_and_the_roll_goes_on(runtime, store, api, pools):
    done = finish(api, api.update_node_pool("pools", "batch", {"minNodeCount": 1}))
    assert done["status"] == "SUCCEEDED", done
    runtime.simulator.wait_idle(30)
    [old] = [
        m["InstanceId"]
        for m in runtime.boto3_client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[store.node_pools.get("pools", "batch").asg_name]
        )["AutoScalingGroups"][0]["Instances"]
    ]
    runtime.simulator.stall_drains("pools")
    try:
        done = finish(api, api.update_node_pool("pools", "batch", {"labels": {"tier": "batch"}}))
    finally:
        runtime.simulator.resume_drains()
    assert done["status"] == "SUCCEEDED", done
    assert old not in {instance for instance, _ in runtime.simulator.drained}
    warnings = [e for e in api.events("pools") if e["type"] == "Warning" and e["reason"] == "DrainTimedOut"]
    assert warnings and old in warnings[0]["message"], api.events("pools")


def test_a_bounds_change_after_a_roll_says_it_replaced_nothing(store, api, general_rolled):
    assert store.node_pools.get("pools", "general").rollout  # the rolls above left their facts
    done = finish(api, api.update_node_pool("pools", "general", {"maxNodeCount": 9}))
    assert done["status"] == "SUCCEEDED", done
    assert store.node_pools.get("pools", "general").rollout is None
    updated = [e for e in store.events.list("pools") if e.reason == "NodePoolUpdated" and "general" in e.message]
    latest = max(updated, key=lambda e: e.last_timestamp or "")
    assert "(0 nodes replaced)" in latest.message, latest.message


def test_node_pools_are_added_and_deleted(runtime, store, api, pools):
    pool = {
        "apiVersion": "kubestep.io/v1",
        "kind": "AWSNodePool",
        "metadata": {"name": "extra"},
        "spec": {"clusterName": "pools", "version": "1.35.4", "minNodeCount": 1, "maxNodeCount": 2},
    }
    done = finish(api, api.create_node_pool("pools", pool))
    assert done["status"] == "SUCCEEDED", done
    record = store.node_pools.get("pools", "extra")
    assert record.phase == "RUNNING" and record.asg_name
    assert group_tags(runtime, record.asg_name)["gke:nodepool"] == "extra"
    with pytest.raises(ApiError) as exists:
        api.create_node_pool("pools", pool)
    assert exists.value.status == 409
    done = finish(api, api.delete_node_pool("pools", "extra"))
    assert done["status"] == "SUCCEEDED", done
    assert store.node_pools.get("pools", "extra") is None
    groups = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[record.asg_name])
    assert not groups["AutoScalingGroups"]
    assert store.clusters.get("pools").phase == "RUNNING"


# ---------------------------------------------------------------- the control plane


def test_upgrade_replaces_each_replica_once_one_at_a_time(runtime, store, api, up):
    record = store.clusters.get("up")
    members_before = {m.index: m for m in store.etcd.members("up")}
    templates_before = {m.index: m.launch_template_version for m in members_before.values()}
    with pytest.raises(ApiError) as skew:
        api.upgrade_cluster("up", "1.37.1")  # two minors at once
    assert skew.value.status == 400 and "one minor version at a time" in skew.value.message
    operation = api.upgrade_cluster("up", "1.36.5", node_pools="all")
    done = finish(api, operation, timeout=600)
    assert done["status"] == "SUCCEEDED", done

    # One at a time: replica N+1 is replaced only after replica N passed its gate.
    order = roll_order(runtime, done["executionArn"])
    replaced = [replica for kind, state, replica in order if (kind, state) == ("entered", "ReplaceReplica")]
    assert sorted(replaced) == [0, 1, 2] and len(replaced) == 3
    for previous, following in zip(replaced, replaced[1:], strict=False):
        passed = order.index(("exited", "CheckReplicaHealth", previous))
        assert passed < order.index(("entered", "ReplaceReplica", following)), order

    # Each replica: exactly one new instance; the same etcd volume and name; a newer template.
    by_replica = replica_instances(runtime, record.uid)
    for index, member in {m.index: m for m in store.etcd.members("up")}.items():
        states = sorted(i["State"]["Name"] for i in by_replica[index])
        assert states == ["running", "terminated"], (index, states)
        assert member.volume_id == members_before[index].volume_id
        assert member.name == members_before[index].name
        assert member.instance_id != members_before[index].instance_id
        assert member.launch_template_version > templates_before[index]
    cluster = api.get_cluster("up")
    assert cluster["status"]["phase"] == "RUNNING" and cluster["status"]["version"] == "1.36.5"
    assert cluster["spec"]["controlPlane"]["version"] == "1.36.5"
    assert {p["status"]["version"] for p in api.list_node_pools("up")} == {"1.36.5"}


def test_a_failed_gate_stops_the_roll_degraded_and_the_next_upgrade_resumes(runtime, store, api, up):
    members_before = {m.index: m.instance_id for m in store.etcd.members("up")}
    failure = runtime.simulator.fail_bootstrap("up", replica=1, phase="etcd-join", times=1)
    done = finish(api, api.update_cluster("up", {"controlPlane": {"instanceType": "m5.xlarge"}}), timeout=600)
    assert done["status"] == "FAILED", done
    assert failure.remaining == 0
    cluster = api.get_cluster("up")
    assert cluster["status"]["phase"] == "DEGRADED"
    after = {m.index: m.instance_id for m in store.etcd.members("up")}
    order = roll_order(runtime, done["executionArn"])
    replaced = [replica for kind, state, replica in order if (kind, state) == ("entered", "ReplaceReplica")]
    assert replaced[-1] == 1 and 2 in members_before and after[2] == members_before[2], "replica 3 untouched"
    warning = [e for e in api.events("up") if e["type"] == "Warning"][-1]
    assert "replica 1" in warning["message"] and "etcd-join" in warning["message"], warning

    # The next update resumes with the replica that failed, then the one not rolled yet; the one
    # already healthy on the spec keeps its instance (and still passes the gate).
    on_spec = {m.index: m.instance_id for m in store.etcd.members("up")}
    again = finish(api, api.update_cluster("up", {"controlPlane": {"instanceType": "m5.xlarge"}}), timeout=600)
    assert again["status"] == "SUCCEEDED", again
    order = roll_order(runtime, again["executionArn"])
    resumed = [r for kind, state, r in order if (kind, state) == ("entered", "ReplaceReplica")]
    gated = [r for kind, state, r in order if (kind, state) == ("exited", "CheckReplicaHealth")]
    assert resumed == [1, 2, 0] and sorted(gated) == [0, 1, 2], order
    now = {m.index: m.instance_id for m in store.etcd.members("up")}
    assert now[0] == on_spec[0] and now[1] != on_spec[1] and now[2] != on_spec[2], (on_spec, now)
    assert api.get_cluster("up")["status"]["phase"] == "RUNNING"
    assert api.get_cluster("up")["spec"]["controlPlane"]["instanceType"] == "m5.xlarge"


# ---------------------------------------------------------------- scheduled upgrades


def _fake_cluster(store, name: str, *, version: str, auto: bool, window: dict | None = None, phase="RUNNING"):
    """A cluster record without AWS resources: enough for the planner, which only reads records
    (anything it starts for one would fail, so the tests only let it start real clusters)."""
    request = ha_request(name)
    spec = request["cluster"]
    spec["spec"]["controlPlane"]["version"] = version
    spec["spec"]["upgradePolicy"] = {
        "autoUpgrade": auto,
        "releaseChannel": "regular",
        "maintenanceWindow": window or {},
    }
    from kubestep.models import AWSCluster

    cluster = AWSCluster.model_validate(spec)
    record = ClusterRecord(name=name, uid=naming.new_uid(), spec=cluster, version=version, phase=phase)
    store.clusters.create(record, [])
    return record


def test_the_planner_starts_due_upgrades_once_and_only_inside_windows(runtime, store, api):
    # A real cluster on 1.35 with auto-upgrade in a Saturday 03:00-05:00 UTC window.
    window = {"start": "03:00", "duration": "2h", "days": ["SAT"], "timeZone": "UTC"}
    request = ha_request("auto")
    request["cluster"]["spec"]["upgradePolicy"] = {
        "autoUpgrade": True,
        "releaseChannel": "regular",
        "maintenanceWindow": window,
    }
    done = finish(api, api.create_cluster(request))
    assert done["status"] == "SUCCEEDED", done
    _fake_cluster(store, "off", version="1.35.4", auto=False, window=window)
    _fake_cluster(store, "current", version="1.36.5", auto=True, window=window)
    _fake_cluster(store, "sunday", version="1.35.4", auto=True, window={**window, "days": ["SUN"]})
    saturday = datetime(2026, 12, 5, 3, 30, tzinfo=UTC)

    outside = runtime.tick(saturday - timedelta(hours=2))
    assert outside.planner_status == "SUCCEEDED"
    assert not [d for d in outside.decisions if d["action"] == "upgrade"]

    inside = runtime.tick(saturday)
    decisions = {d["clusterName"]: d for d in inside.decisions}
    assert decisions["auto"]["action"] == "upgrade" and decisions["auto"]["version"] == "1.36.5"
    assert decisions["off"]["reason"] == "auto-upgrade is off"
    assert decisions["current"]["reason"].startswith("up to date")
    assert decisions["sunday"]["reason"] == "outside its maintenance window"
    operation_id = decisions["auto"]["operationId"]
    # Firing again in the same window starts nothing more: the cluster is busy, the id the same.
    again = runtime.tick(saturday + timedelta(minutes=15))
    assert {d["clusterName"]: d["action"] for d in again.decisions}["auto"] == "skip"
    sfn = runtime.boto3_client("stepfunctions")
    upgrades = [
        e
        for e in sfn.list_executions(stateMachineArn=runtime.state_machine_arn("UpdateCluster"))["executions"]
        if e["name"].startswith("auto-")
    ]
    assert [e["name"] for e in upgrades] == [operation_id]
    done = finish(api, api.operation(operation_id), timeout=600)
    assert done["status"] == "SUCCEEDED", done
    assert api.get_cluster("auto")["status"]["version"] == "1.36.5"
    after = runtime.tick(saturday + timedelta(minutes=30))
    assert {d["clusterName"]: d for d in after.decisions}["auto"]["reason"].startswith("up to date")
    for name in ("off", "current", "sunday"):
        store.clusters.delete_everything(name, store.clusters.get(name).uid)


def test_a_one_off_schedule_upgrades_at_its_time_and_a_cancelled_one_does_not(runtime, store, api, pools):
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    cancelled = api.upgrade_cluster("pools", "1.36.5", node_pools="all", at=at.isoformat())
    assert api.cancel_schedule(cancelled["id"])["state"] == "CANCELLED"
    schedule = api.upgrade_cluster("pools", "1.36.5", node_pools="all", at=at.isoformat())
    assert schedule["state"] == "SCHEDULED"
    early = runtime.tick(at - timedelta(minutes=1))
    assert not early.fired
    fired = runtime.tick(at + timedelta(seconds=1))
    assert [f.name for f in fired.fired] == [schedule["id"]] and fired.fired[0].outcome == "started"
    execution = fired.fired[0].execution_arn
    description = runtime.wait_execution(execution, timeout=600)
    assert description["status"] == "SUCCEEDED", description
    record = api.get_schedule(schedule["id"])
    assert record["state"] == "FIRED" and record["outcome"] == "started"
    assert record["operationId"] == f"sched-{schedule['id']}"
    assert api.get_schedule(cancelled["id"])["state"] == "CANCELLED"
    assert api.get_cluster("pools")["status"]["version"] == "1.36.5"
    # The Scheduler deleted the fired schedule (ActionAfterCompletion DELETE).
    assert not runtime.boto3_client("scheduler").list_schedules()["Schedules"]


def test_a_schedule_whose_cluster_is_busy_records_why_it_did_nothing(runtime, store, api, pools_on_1_36):
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    schedule = api.upgrade_cluster("pools", "1.37.1", at=at.isoformat())
    holder = store.locks.acquire("pools", "manual-hold", None, lambda arn: True)
    try:
        fired = runtime.tick(at + timedelta(seconds=1))
        runtime.wait_execution(fired.fired[0].execution_arn, timeout=120)
    finally:
        store.locks.release("pools", holder.operation_id)
    record = api.get_schedule(schedule["id"])
    assert record["state"] == "FIRED" and record["outcome"].startswith("skipped:"), record
    assert "manual-hold" in record["outcome"]
    # The tick says what the schedule says (it said "started": its execution did start).
    (reported,) = fired.fired
    assert reported.outcome == record["outcome"] and reported.invocation == "started"


# ---------------------------------------------------------------- no secret material anywhere


def test_no_secret_material_in_any_history_log_environment_or_record(runtime, store, api, pools, up):
    """Over everything this module's runtime has run (creates, rolls, upgrades, schedules; every
    other runtime is scanned the same way before it stops: runtime_checks.py): each execution's
    full history, each Lambda's log, each function's environment, each item of the table. The
    clusters of this module are alive, so their secrets' exact values are searched too."""
    needles = runtime_checks.secret_values(runtime, store)
    assert len(needles) >= 2 * 4, needles.keys()  # two clusters: CA keys, SA key, certificate key, token
    assert runtime_checks.leaks_in("self-check", json.dumps(list(needles.values())), needles)  # the scan can fail
    assert sorted((runtime.home / "local" / "logs").glob("*.log"))
    leaks, histories = runtime_checks.leaks(runtime, needles)
    assert histories >= 3  # the network's and the two clusters' creates at least
    assert leaks == []
