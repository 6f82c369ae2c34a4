"""The instance simulator writes bootstrap reports for kubestep ASG instances."""

from __future__ import annotations

import time

import pytest

from kubestep.store import keys
from kubestep_local.runtime import LocalRuntime


@pytest.fixture(scope="module")
def launch_template(runtime: LocalRuntime) -> str:
    ec2 = runtime.boto3_client("ec2")
    ec2.create_launch_template(
        LaunchTemplateName="gke-sim-lt",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.medium"},
    )
    return "gke-sim-lt"


def _asg(runtime: LocalRuntime, name: str, lt: str, tags: dict[str, str]) -> None:
    runtime.boto3_client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": lt, "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()],
    )


def _report(runtime: LocalRuntime, pk: str, sk: str, timeout: float = 10) -> dict | None:
    ddb = runtime.boto3_client("dynamodb")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = ddb.get_item(TableName=runtime.outputs["TableName"], Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        if item:
            return item
        time.sleep(0.05)
    return None


def test_reports_ok_and_injected_failure(runtime: LocalRuntime, launch_template: str) -> None:
    runtime.simulator.fail_bootstrap("sim-cluster", replica=2, phase="kubeadm-join")
    for replica in range(3):
        _asg(
            runtime,
            f"gke-u1abc-cp-{replica}",
            launch_template,
            {
                "gke:cluster": "sim-cluster",
                "gke:cluster-uid": "u1abc",
                "gke:role": "control-plane",
                "gke:replica": str(replica),
            },
        )
    started = time.monotonic()
    reports = {r: _report(runtime, keys.bootstrap_pk("u1abc"), keys.replica_report_sk(r)) for r in range(3)}
    assert all(reports.values())
    assert reports[0]["status"]["S"] == "ok"
    assert reports[1]["status"]["S"] == "ok"
    assert reports[2]["status"]["S"] == "failed:kubeadm-join"
    assert reports[0]["instanceId"]["S"].startswith("i-")
    assert reports[0]["reportedAt"]["S"].endswith(("Z", "+00:00"))
    # The boot delay (20 s) is time-scaled (0.01): well under a second, but not instant.
    assert time.monotonic() - started < 5
    # A replica that booted fine claimed initialisation, once, and marked it done, as the
    # script does; every call was made as the control-plane role, from its own instance.
    claim = _report(runtime, keys.init_claim_pk("u1abc"), keys.INIT_CLAIM_SK)
    assert claim and claim["status"]["S"] == "initialized" and claim["replica"]["N"] in ("0", "1")
    calls = [c for c in runtime.recorder.call_records() if c.role_name == "gke-u1abc-controlplane"]
    assert {c.action for c in calls} >= {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert all(c.source_instance_arn and ":instance/i-" in c.source_instance_arn for c in calls)


def test_node_reports_and_untagged_groups(runtime: LocalRuntime, launch_template: str) -> None:
    _asg(
        runtime,
        "gke-u2def-np-a",
        launch_template,
        {
            "gke:cluster": "other",
            "gke:cluster-uid": "u2def",
            "gke:role": "node",
            "gke:nodepool": "a",
        },
    )
    _asg(runtime, "not-kubestep", launch_template, {"team": "x"})
    assert runtime.simulator.wait_idle(timeout=10)
    instance_id = next(
        i["InstanceId"]
        for g in runtime.boto3_client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=["gke-u2def-np-a"]
        )["AutoScalingGroups"]
        for i in g["Instances"]
    )
    arn = f"arn:aws:ec2:{runtime.region}:123456789012:instance/{instance_id}"
    item = _report(runtime, keys.node_report_pk("u2def", arn), keys.node_report_sk(instance_id))
    assert item and item["status"]["S"] == "ok"
    (call,) = [c for c in runtime.recorder.call_records() if c.role_name == "gke-u2def-node"]
    assert call.action == "dynamodb:PutItem" and call.source_instance_arn == arn
    assert not [r for r in runtime.simulator.reports() if r.asg_name == "not-kubestep"]


def _control_plane(runtime: LocalRuntime, lt: str, cluster: str, uid: str, replicas: int) -> None:
    for replica in range(replicas):
        _asg(
            runtime,
            f"gke-{uid}-cp-{replica}",
            lt,
            {"gke:cluster": cluster, "gke:cluster-uid": uid, "gke:role": "control-plane", "gke:replica": str(replica)},
        )


def _until(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition never held")


def test_replicas_report_live_membership_and_a_slow_join_shows_up_late(
    runtime: LocalRuntime, launch_template: str
) -> None:
    """Every replica rewrites its report: etcd counts the replicas that booted and still run,
    so the first replicas say 2 members until the slow third one joins, then 3."""
    runtime.simulator.delay_boot("late-cluster", replica=2, seconds=300)  # 3 s at time scale 0.01
    try:
        _control_plane(runtime, launch_template, "late-cluster", "u3late", 3)
        first = _report(runtime, "u3late", "REPLICA#0")
        assert first and first["checks"]["M"]["etcdMembers"]["N"] in ("1", "2")
        assert _report(runtime, "u3late", "REPLICA#2", timeout=1) is None  # still joining
        # The leaf certificates last a year from the replica's join (kubeadm's default).
        expires = first["checks"]["M"]["certificates"]["M"]["apiserver"]["S"]
        assert expires.startswith(str(int(first["reportedAt"]["S"][:4]) + 1))

        def members(replica: int) -> int:
            item = _report(runtime, "u3late", f"REPLICA#{replica}", timeout=1) or {}
            return int(item.get("checks", {}).get("M", {}).get("etcdMembers", {}).get("N", 0))

        _until(lambda: members(0) == 2)
        later = _until(lambda: members(0) == 3, timeout=30)
        assert later and members(2) == 3
        again = _report(runtime, "u3late", "REPLICA#0")
        assert again["reportedAt"]["S"] > first["reportedAt"]["S"]  # a periodic report, not the boot's
        assert again["checks"]["M"]["etcdHealthy"]["BOOL"] is True
    finally:
        runtime.simulator.clear_failures()


def _node(runtime: LocalRuntime, lt: str, cluster: str, uid: str) -> str:
    _asg(runtime, f"gke-{uid}-np-a", lt, {"gke:cluster": cluster, "gke:cluster-uid": uid, "gke:role": "node"})
    groups = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"gke-{uid}-np-a"])
    return groups["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]


def test_the_cloud_controller_manager_initialises_nodes_unless_it_is_stalled(
    runtime: LocalRuntime, launch_template: str
) -> None:
    _control_plane(runtime, launch_template, "ccm-ok", "u4ccm", 1)
    node = _node(runtime, launch_template, "ccm-ok", "u4ccm")
    booted = _report(runtime, "u4ccm", f"NODE#{node}")
    assert booted and booted["checks"]["M"]["nodeReady"]["BOOL"] is True

    def initialised(uid: str, instance: str) -> dict | None:
        item = _report(runtime, uid, f"NODE#{instance}", timeout=1) or {}
        checks = item.get("checks", {}).get("M", {})
        return checks if checks.get("uninitializedTaint", {}).get("BOOL") is False else None

    checks = _until(lambda: initialised("u4ccm", node))
    zone = runtime.boto3_client("ec2").describe_instances(InstanceIds=[node])["Reservations"][0]["Instances"][0]
    assert checks["providerID"]["S"] == f"aws:///{zone['Placement']['AvailabilityZone']}/{node}"

    runtime.simulator.stall_cloud_controller("ccm-stalled")
    try:
        _control_plane(runtime, launch_template, "ccm-stalled", "u5stl", 1)
        stalled = _node(runtime, launch_template, "ccm-stalled", "u5stl")
        # Three periodic reports later (each past the CCM's delay) it is still Ready, tainted,
        # without a providerID.
        seen: set[str] = set()

        def reports_seen() -> bool:
            item = _report(runtime, "u5stl", f"NODE#{stalled}", timeout=1) or {}
            seen.add(item.get("reportedAt", {}).get("S", ""))
            return len(seen - {""}) >= 3

        _until(reports_seen, timeout=30)
        checks = _report(runtime, "u5stl", f"NODE#{stalled}")["checks"]["M"]
        assert checks["nodeReady"]["BOOL"] is True and checks["uninitializedTaint"]["BOOL"] is True
        assert "providerID" not in checks
    finally:
        runtime.simulator.resume_cloud_controller()
