"""The instance simulator writes bootstrap reports for kubestep ASG instances."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import boto3
import pytest

from kubestep.store import keys
from kubestep_local.latency import BootModel
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


def _registry(runtime: LocalRuntime):
    """The bootstrap registry of the deployed table (what instances read and write)."""
    from kubestep.store import Store

    resource = boto3.resource(
        "dynamodb",
        endpoint_url=runtime.endpoint_url,
        region_name=runtime.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return Store.for_table(runtime.outputs["TableName"], dynamodb=resource).reports


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
    # The boot delay (20 s) is time-scaled (0.01): well under a second, but not instant. Unscaled,
    # the first report alone would take the 20 s; the bound leaves a loaded machine room (5 s
    # timed out under the suite at load 20, the reports written 8 s after the groups).
    assert time.monotonic() - started < 15
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
    instance_id = next(
        i["InstanceId"]
        for g in runtime.boto3_client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=["gke-u2def-np-a"]
        )["AutoScalingGroups"]
        for i in g["Instances"]
    )
    arn = f"arn:aws:ec2:{runtime.region}:123456789012:instance/{instance_id}"
    # No control plane answers yet: the node's `kubeadm join` retries, and it never reports.
    _until(lambda: instance_id in runtime.simulator.awaiting_control_plane())
    assert _report(runtime, keys.node_report_pk("u2def", arn), keys.node_report_sk(instance_id), timeout=0.5) is None
    assert not runtime.simulator.wait_idle(timeout=0.5)
    # Its cluster initialised (what the first replica's bootstrap writes): the join goes through.
    reports = _registry(runtime)
    assert reports.claim_init("u2def", "i-firstreplica", 0)
    reports.mark_initialized("u2def")
    assert runtime.simulator.wait_idle(timeout=10)
    item = _report(runtime, keys.node_report_pk("u2def", arn), keys.node_report_sk(instance_id))
    assert item and item["status"]["S"] == "ok"
    # Its boot report, then whatever its report timer wrote since (a fast emulator gets there
    # before this line): each a PutItem made as the node, from its instance.
    calls = [c for c in runtime.recorder.call_records() if c.role_name == "gke-u2def-node"]
    assert calls and all(c.action == "dynamodb:PutItem" and c.source_instance_arn == arn for c in calls)
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
        first = _report(runtime, keys.bootstrap_pk("u3late"), keys.replica_report_sk(0))
        assert first and first["checks"]["M"]["etcdMembers"]["N"] in ("1", "2")
        assert _report(runtime, keys.bootstrap_pk("u3late"), keys.replica_report_sk(2), timeout=1) is None  # joining
        # The leaf certificates last a year from the replica's join (kubeadm's default).
        expires = first["certificates"]["M"]["apiserver"]["S"]
        assert expires.startswith(str(int(first["reportedAt"]["S"][:4]) + 1))

        def members(replica: int) -> int:
            item = _report(runtime, keys.bootstrap_pk("u3late"), keys.replica_report_sk(replica), timeout=1) or {}
            return int(item.get("checks", {}).get("M", {}).get("etcdMembers", {}).get("N", 0))

        _until(lambda: members(0) == 2)
        later = _until(lambda: members(0) == 3, timeout=30)
        assert later and members(2) == 3
        again = _report(runtime, keys.bootstrap_pk("u3late"), keys.replica_report_sk(0))
        assert again["reportedAt"]["S"] > first["reportedAt"]["S"]  # a periodic report, not the boot's
        assert again["checks"]["M"]["etcdHealthy"]["BOOL"] is True
    finally:
        runtime.simulator.clear_failures()


def _node(runtime: LocalRuntime, lt: str, cluster: str, uid: str) -> str:
    _asg(runtime, f"gke-{uid}-np-a", lt, {"gke:cluster": cluster, "gke:cluster-uid": uid, "gke:role": "node"})
    groups = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"gke-{uid}-np-a"])
    return groups["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]


def _node_report(runtime: LocalRuntime, uid: str, instance_id: str, timeout: float = 10) -> dict | None:
    """A node's report, in the partition its own instance ARN names (the only one its role writes)."""
    arn = f"arn:aws:ec2:{runtime.region}:123456789012:instance/{instance_id}"
    return _report(runtime, keys.node_report_pk(uid, arn), keys.node_report_sk(instance_id), timeout=timeout)


def test_the_cloud_controller_manager_initialises_nodes_unless_it_is_stalled(
    runtime: LocalRuntime, launch_template: str
) -> None:
    _control_plane(runtime, launch_template, "ccm-ok", "u4ccm", 1)
    node = _node(runtime, launch_template, "ccm-ok", "u4ccm")
    booted = _node_report(runtime, "u4ccm", node)
    assert booted and booted["checks"]["M"]["nodeReady"]["BOOL"] is True

    def initialised(uid: str, instance: str) -> dict | None:
        item = _node_report(runtime, uid, instance, timeout=1) or {}
        checks = item.get("checks", {}).get("M", {})
        return checks if checks.get("nodeInitialized", {}).get("BOOL") is True else None

    checks = _until(lambda: initialised("u4ccm", node))
    zone = runtime.boto3_client("ec2").describe_instances(InstanceIds=[node])["Reservations"][0]["Instances"][0]
    assert checks["providerID"]["S"] == f"aws:///{zone['Placement']['AvailabilityZone']}/{node}"

    runtime.simulator.stall_cloud_controller("ccm-stalled")
    try:
        _control_plane(runtime, launch_template, "ccm-stalled", "u5stl", 1)
        stalled = _node(runtime, launch_template, "ccm-stalled", "u5stl")
        # Three periodic reports later (each past the CCM's delay) it is still Ready, not
        # initialised, without a providerID.
        seen: set[str] = set()

        def reports_seen() -> bool:
            item = _node_report(runtime, "u5stl", stalled, timeout=1) or {}
            seen.add(item.get("reportedAt", {}).get("S", ""))
            return len(seen - {""}) >= 3

        _until(reports_seen, timeout=30)
        checks = _node_report(runtime, "u5stl", stalled)["checks"]["M"]
        assert checks["nodeReady"]["BOOL"] is True and checks["nodeInitialized"]["BOOL"] is False
        assert "providerID" not in checks
    finally:
        runtime.simulator.resume_cloud_controller()


def test_replicas_serve_each_administrators_generation_and_keep_it_when_the_item_is_unreadable(
    runtime: LocalRuntime, launch_template: str
) -> None:
    """Each replica's report says the administrators generation it serves: the one the item says
    (read with its role, on every report), a new one within a report interval, with no instance
    replaced; and when the item cannot be read, still the last one, with why."""
    import boto3

    from kubestep.cluster_admins import mapping
    from kubestep.store import Store

    store = Store.for_table(
        runtime.outputs["TableName"],
        dynamodb=boto3.resource(
            "dynamodb",
            endpoint_url=runtime.endpoint_url,
            region_name=runtime.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ),
    )
    uid, admin = "u6adm", "arn:aws:iam::123456789012:user/alice"
    store.admins.publish(uid, mapping([admin]))
    _control_plane(runtime, launch_template, "admins", uid, 2)

    def served(replica: int) -> dict:
        item = _report(runtime, keys.bootstrap_pk(uid), keys.replica_report_sk(replica), timeout=1) or {}
        return item.get("checks", {}).get("M", {})

    def generations() -> list[str | None]:
        return [served(r).get("adminsGeneration", {}).get("N") for r in range(2)]

    _until(lambda: generations() == ["1", "1"])
    instances = {
        r: _report(runtime, keys.bootstrap_pk(uid), keys.replica_report_sk(r))["instanceId"]["S"] for r in range(2)
    }

    published, changed = store.admins.publish(uid, mapping([admin, "arn:aws:iam::123456789012:role/team/Ops"]))
    assert changed and published.generation == 2
    _until(lambda: generations() == ["2", "2"])
    for replica, instance in instances.items():
        assert _report(runtime, keys.bootstrap_pk(uid), keys.replica_report_sk(replica))["instanceId"]["S"] == instance
        assert "adminsError" not in served(replica)
    calls = [c for c in runtime.recorder.call_records() if c.role_name == f"gke-{uid}-controlplane"]
    partition = keys.cluster_access_pk(uid)
    reads = [c for c in calls if c.params.get("Key", {}).get("pk") in (partition, {"S": partition})]
    assert reads and {c.action for c in reads} == {"dynamodb:GetItem"}

    runtime.simulator.refuse_admins("admins")
    try:
        store.admins.publish(uid, mapping([admin]))  # generation 3, which the replicas cannot read
        _until(lambda: all("adminsError" in served(r) for r in range(2)))
        assert generations() == ["2", "2"]
        assert "AccessDeniedException" in served(0)["adminsError"]["S"]
    finally:
        runtime.simulator.allow_admins()
    _until(lambda: generations() == ["3", "3"])


def test_a_boot_model_inits_first_joins_one_at_a_time_and_nodes_wait_for_the_control_plane(
    runtime: LocalRuntime, launch_template: str
) -> None:
    """With a latency profile's boot model (kubestep_local/latency.py), the first replica reports
    after its packages and `kubeadm init`, each other replica a join after the one before it
    (etcd takes one learner at a time), a node a join after the control plane answered."""
    model = BootModel(os_boot=0.0, packages=50.0, init=100.0, control_plane_join=100.0, node_join=50.0)
    runtime.simulator.boot_model = lambda: model  # at time scale 0.01: 0.5 s, 1 s, 1 s, 0.5 s
    created = datetime.now(UTC)
    try:
        _control_plane(runtime, launch_template, "modelled", "u6mod", 3)
        node = _node(runtime, launch_template, "modelled", "u6mod")
        assert _node_report(runtime, "u6mod", node, timeout=30)
        wanted = {"replica 0", "replica 1", "replica 2", f"node {node}"}
        # Every instance's first report, awaited by name (the joins end after the node's).
        _until(lambda: wanted <= {r.key for r in runtime.simulator.reports() if r.uid == "u6mod"}, timeout=30)
    finally:
        runtime.simulator.boot_model = lambda: None
    reports = {r.key: datetime.fromisoformat(r.reported_at) for r in runtime.simulator.reports() if r.uid == "u6mod"}
    scale = runtime.time_scale.scale
    # A report is never early: the k-th replica to report did so no sooner than the packages,
    # the init and k joins one after another (all three instances ran at once).
    for k, reported in enumerate(sorted(reports[f"replica {i}"] for i in range(3))):
        earliest = (model.ready_to_bootstrap() + model.init + k * model.control_plane_join) * scale
        assert (reported - created).total_seconds() >= earliest * 0.95, (k, reported, created)
    # The node was ready to join at 0.5 s, but joined only once the first replica's init was done.
    node_earliest = (model.first_replica() + model.node_join) * scale
    assert (reports[f"node {node}"] - created).total_seconds() >= node_earliest * 0.95
