"""Automatic repair in the emulator (`management.autoRepair`): PlanRepairs, fired as its
EventBridge rule fires it, finds a node whose heartbeat stopped and a replica that failed after
it was healthy, and starts an AutoRepair operation for each: the node is marked Unhealthy in its
Auto Scaling group, drained through the termination hook and replaced; the replica is replaced
through the one replacement path, keeping its etcd volume. More unhealthy members than
`maxUnhealthy` repair nothing and say why; a cluster another operation holds is left alone.

The faults are the instance simulator's (`stop_heartbeat`, `fail_after_healthy`); Auto Scaling's
replacement of an instance marked Unhealthy is kubestep_local/moto_compat/autoscaling_health.py (Amazon EC2
Auto Scaling API Reference, SetInstanceHealth: "Amazon EC2 Auto Scaling terminates and replaces
the unhealthy instance"), through the emulated termination lifecycle hook."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from kubestep import auto_repair
from kubestep.resources import reports

from ..deployed_stack import TIME_SCALE
from .fault_matrix import small_cluster

CLUSTER = "mended"
# 4.8 s at the tests' time scale: a node counts as unhealthy after two missed reports (2.4 s).
UNHEALTHY_AFTER = "4m"


def _wait(condition: Callable[[], object], what: str, timeout: float = 120.0, seen: object = None) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}: {seen[-2:] if isinstance(seen, list) else seen}"
        )
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(runtime, store) -> dict:
    request = small_cluster(CLUSTER)
    request["cluster"]["spec"]["management"] = {"autoRepair": {"enabled": True, "unhealthyAfter": UNHEALTHY_AFTER}}
    pool = request["nodePools"][0]
    pool["spec"].update(minNodeCount=2, maxNodeCount=3)
    pool["spec"]["management"] = {"autoRepair": {"unhealthyAfter": UNHEALTHY_AFTER}}  # maxUnhealthy: 40% (1 of 2)
    created = runtime.run_execution("CreateCluster", request, name=f"{CLUSTER}-create", check=False, timeout=600)
    assert created["status"] == "SUCCEEDED", created.get("cause")
    return {"name": CLUSTER, "pool": pool["metadata"]["name"], "uid": store.clusters.get(CLUSTER).uid}


def _pool_instances(runtime, store, cluster: dict) -> dict[str, str]:
    group = store.node_pools.get(cluster["name"], cluster["pool"]).asg_name
    (found,) = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ]
    return {i["InstanceId"]: i["LifecycleState"] for i in found["Instances"]}


def _nodes_fresh(runtime, store, cluster: dict) -> bool:
    in_service = [i for i, state in _pool_instances(runtime, store, cluster).items() if state == "InService"]
    arns = {i: f"arn:aws:ec2:{runtime.region}:123456789012:instance/{i}" for i in in_service}
    found = store.reports.nodes(cluster["uid"], arns)
    ready = [i for i in in_service if reports.node_problem(found.get(i), TIME_SCALE) is None]
    return len(in_service) == 2 and len(ready) == 2


@pytest.fixture
def healthy(runtime, store, cluster) -> dict:
    """Every member healthy and the cluster RUNNING with no operation, whatever ran before."""
    runtime.simulator.restore_health()
    _wait(lambda: store.locks.get(CLUSTER) is None and store.clusters.get(CLUSTER).phase == "RUNNING", "RUNNING")
    _wait(lambda: _nodes_fresh(runtime, store, cluster), "two fresh, ready nodes")
    yield cluster
    runtime.simulator.restore_health()


def _repairs(store) -> list:
    return [o for o in store.operations.for_target(CLUSTER, limit=100)[0] if o.kind == auto_repair.WORKFLOW]


def _plan(runtime) -> list[dict]:
    """One PlanRepairs run (what the rule starts every two minutes); its decisions."""
    done = runtime.run_execution("PlanRepairs", {}, name=f"plan-repairs-{secrets.token_hex(4)}", timeout=300)
    assert done["status"] == "SUCCEEDED", done
    history = runtime.boto3_client("stepfunctions").get_execution_history(executionArn=done["executionArn"])
    for event in history["events"]:
        output = (event.get("taskSucceededEventDetails") or {}).get("output")
        payload = json.loads(output or "{}").get("Payload") or {}
        if "repairs" in payload:
            return payload["repairs"] + payload["others"]
    raise AssertionError("FindRepairs reported no decisions")


def _plan_until_repair(runtime, store, before: set[str], timeout: float = 120.0):
    """Run the check until it starts a repair (the member must stay unhealthy `unhealthyAfter`)."""

    def started():
        _plan(runtime)
        return [o for o in _repairs(store) if o.operation_id not in before]

    (operation,) = _wait(started, "an AutoRepair operation", timeout)
    finished = _wait(
        lambda: (o := store.operations.get(operation.operation_id)) and o.status != "RUNNING" and o,
        "the AutoRepair operation to finish",
        600,
    )
    return finished


def _reasons(store) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event in store.events.list(CLUSTER):
        found.setdefault(event.reason, []).append(event.message)
    return found


def test_the_rule_starts_the_check(runtime, healthy):
    """The deployed rule `<svc>-plan-repairs` targets PlanRepairs (what EventBridge fires every two minutes)."""
    deliveries = runtime.events.fire_scheduled(f"{runtime.service_name}-plan-repairs")
    assert [d.target_arn.rsplit(":", 1)[1] for d in deliveries] == [f"{runtime.service_name}-PlanRepairs"]
    assert not any(d.errored for d in deliveries), deliveries


def test_a_node_whose_heartbeat_stops_is_drained_and_replaced(runtime, store, healthy):
    before = {o.operation_id for o in _repairs(store)}
    original = set(_pool_instances(runtime, store, healthy))
    (silent,) = runtime.simulator.stop_heartbeat(CLUSTER, nodepool=healthy["pool"], count=1)
    operation = _plan_until_repair(runtime, store, before)
    assert operation.status == "SUCCEEDED", (operation.error, operation.cause)
    assert operation.parameters["instanceIds"] == [silent]
    now_running = _pool_instances(runtime, store, healthy)
    assert silent not in now_running and len(now_running) == 2
    assert set(now_running) - original, "no successor was launched"
    assert (silent, "kubestep-drain") in runtime.simulator.drained, runtime.simulator.drained
    reasons = _reasons(store)
    assert any(silent in m for m in reasons["MarkedUnhealthy"]) and any(silent in m for m in reasons["AutoRepaired"])
    assert store.clusters.get(CLUSTER).phase == "RUNNING" and store.locks.get(CLUSTER) is None
    calls = [r for r in runtime.recorder.call_records() if r.operation == "SetInstanceHealth"]
    assert [(c.params["InstanceId"], c.params["HealthStatus"]) for c in calls][-1:] == [(silent, "Unhealthy")]


def test_a_replica_that_fails_after_being_healthy_is_replaced_keeping_its_etcd_volume(runtime, store, healthy):
    before = {o.operation_id for o in _repairs(store)}
    member = store.etcd.require_member(CLUSTER, 0)
    (failed,) = runtime.simulator.fail_after_healthy(CLUSTER, 0)
    assert failed == member.instance_id
    operation = _plan_until_repair(runtime, store, before)
    assert operation.status == "SUCCEEDED", (operation.error, operation.cause)
    assert operation.parameters["instanceIds"] == [failed]
    after = store.etcd.require_member(CLUSTER, 0)
    assert after.instance_id != failed and after.bootstrap == "ok"
    assert after.volume_id == member.volume_id and after.unhealthy is None
    (volume,) = runtime.boto3_client("ec2").describe_volumes(VolumeIds=[member.volume_id])["Volumes"]
    assert volume["State"] in ("in-use", "available")
    reasons = _reasons(store)
    assert any(failed in m for m in reasons["ReplacingInstances"]) and any(failed in m for m in reasons["AutoRepaired"])
    assert store.clusters.get(CLUSTER).phase == "RUNNING"


def test_more_unhealthy_than_max_unhealthy_repairs_nothing_and_warns(runtime, store, healthy):
    before = {o.operation_id for o in _repairs(store)}
    running = _pool_instances(runtime, store, healthy)
    silent = runtime.simulator.stop_heartbeat(CLUSTER, nodepool=healthy["pool"])
    assert sorted(silent) == sorted(running), (silent, running)

    decisions: list[list[dict]] = []

    def warned():
        pool = store.node_pools.get(CLUSTER, healthy["pool"])
        arns = {i: f"arn:aws:ec2:{runtime.region}:123456789012:instance/{i}" for i in running}
        ages = {i: r.reported_at for i, r in store.reports.nodes(healthy["uid"], arns).items()}
        decisions.append(
            _plan(runtime)
            + [(e.reason, e.message[:600]) for e in store.events.list(CLUSTER) if e.type == "Warning"]
            + [pool.phase, ages, datetime.now(UTC).isoformat(), store.clusters.get(CLUSTER).phase]
        )
        return [m for m in _reasons(store).get(auto_repair.SUPPRESSED, []) if "2 of 2 nodes" in m]

    (message,) = _wait(warned, "the AutoRepairSuppressed warning", 60, decisions)
    assert "maxUnhealthy 40% allows (1)" in message and "nothing is repaired" in message
    # Well past unhealthyAfter, still nothing: the short-circuit holds while they are silent.
    silent_since = datetime.now(UTC)
    _wait(lambda: (datetime.now(UTC) - silent_since).total_seconds() > 2 * 240 * TIME_SCALE, "two unhealthyAfter")
    _plan(runtime)
    assert {o.operation_id for o in _repairs(store)} == before
    assert _pool_instances(runtime, store, healthy) == running
    (event,) = [e for e in store.events.list(CLUSTER) if e.reason == auto_repair.SUPPRESSED]
    assert event.type == "Warning"


def test_auto_repair_never_runs_during_another_operation(runtime, store, healthy):
    """A node roll holds the cluster (its surge node held back from booting) while a node is
    silent past unhealthyAfter: the check starts nothing, and marks nothing Unhealthy."""
    before = {o.operation_id for o in _repairs(store)}
    hold = runtime.simulator.hold_boots(CLUSTER, role="node", nodepool=healthy["pool"])
    update = {"clusterName": CLUSTER, "nodePool": healthy["pool"], "changes": {"labels": {"tier": "web"}}}
    name = f"{CLUSTER}-roll-{secrets.token_hex(3)}"
    arn = runtime.start_execution("UpdateNodePool", update, name=name)
    try:
        _wait(lambda: (lock := store.locks.get(CLUSTER)) and lock.operation_id == name, "the roll's lock")
        (silent,) = runtime.simulator.stop_heartbeat(CLUSTER, nodepool=healthy["pool"], count=1)
        since = datetime.now(UTC)
        _wait(lambda: (datetime.now(UTC) - since).total_seconds() > 2 * 240 * TIME_SCALE, "past unhealthyAfter")
        decisions = _plan(runtime)
        assert store.locks.get(CLUSTER).operation_id == name
    finally:
        runtime.simulator.release_boots(hold)
        runtime.simulator.restore_health()
    assert [d for d in decisions if d["clusterName"] == CLUSTER] == [
        {"clusterName": CLUSTER, "action": "skip", "reason": f"operation {name} holds the cluster"}
    ]
    assert {o.operation_id for o in _repairs(store)} == before
    marked = [r for r in runtime.recorder.call_records() if r.operation == "SetInstanceHealth"]
    assert silent not in [r.params["InstanceId"] for r in marked]
    assert runtime.wait_execution(arn, timeout=600)["status"] == "SUCCEEDED"


def test_repair_turned_off_in_place_leaves_a_silent_node_alone(runtime, store, healthy):
    """UpdateNodePool changes `management.autoRepair` in place (no node replaced); off, a silent
    node past unhealthyAfter is not repaired."""
    pool = healthy["pool"]

    def set_repair(enabled: bool, name: str) -> None:
        changes = {"management": {"autoRepair": {"enabled": enabled, "unhealthyAfter": UNHEALTHY_AFTER}}}
        update = {"clusterName": CLUSTER, "nodePool": pool, "changes": changes}
        assert runtime.run_execution("UpdateNodePool", update, name=name, timeout=600)["status"] == "SUCCEEDED"

    before = {o.operation_id for o in _repairs(store)}
    running = _pool_instances(runtime, store, healthy)
    set_repair(False, f"{CLUSTER}-repair-off-{secrets.token_hex(3)}")
    try:
        assert store.node_pools.get(CLUSTER, pool).spec.spec.management.auto_repair.enabled is False
        assert _pool_instances(runtime, store, healthy) == running
        (silent,) = runtime.simulator.stop_heartbeat(CLUSTER, nodepool=pool, count=1)
        since = datetime.now(UTC)
        _wait(lambda: (datetime.now(UTC) - since).total_seconds() > 2 * 240 * TIME_SCALE, "past unhealthyAfter")
        decisions = [d for d in _plan(runtime) if d["clusterName"] == CLUSTER]
        assert [d["action"] for d in decisions] == ["wait"]
        assert {o.operation_id for o in _repairs(store)} == before
        assert silent in _pool_instances(runtime, store, healthy)
    finally:
        runtime.simulator.restore_health()
        _wait(lambda: _nodes_fresh(runtime, store, healthy), "two fresh, ready nodes")
        set_repair(True, f"{CLUSTER}-repair-on-{secrets.token_hex(3)}")
