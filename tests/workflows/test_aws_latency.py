"""The main workflows under the `realistic` latency profile (kubestep_local/latency.py): NAT
gateways pending, the NLB provisioning, volumes creating, instances pending, targets initial or
unhealthy until their bootstrap report, groups deleting, the NLB's interfaces lingering. The
execution histories must show each step's pending path taken, and the workflows still succeed.

The module's runtime deprovisions the network it started with: it is provisioned again under the
profile."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from kubestep import inventory
from kubestep.resources import control_plane
from kubestep_local import moto_compat
from kubestep_local.latency import PROFILES
from kubestep_local.runtime import LocalRuntime

from .conftest import ha_request
from .fault_matrix import small_cluster

LB = "load-balancer-provisioning"


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=600)


def pending(runtime: LocalRuntime, execution_arn: str) -> list[str]:
    """What each ResourcePending of the execution said (the step's own words)."""
    sfn = runtime.boto3_client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    out = []
    for event in events:
        details = event.get("taskFailedEventDetails") or {}
        if details.get("error") in ("ResourcePending", "ResourceSettling"):
            out.append(json.loads(details["cause"])["errorMessage"])
    return out


def said(messages: list[str], *words: str) -> bool:
    return any(all(w in m for w in words) for m in messages)


@pytest.fixture(scope="module")
def realistic(runtime: LocalRuntime, store) -> Iterator[LocalRuntime]:
    assert run(runtime, "DeprovisionNetwork", {}, "deprovision-network-realistic")["status"] == "SUCCEEDED"
    runtime.set_latency("realistic")
    # The NLB provisions while the replicas boot; only the replicas' health gate waits for it. The
    # emulator does not compress the Lambda tasks' own run time, so at time scale 0.02 each real
    # millisecond of them counts 50 modelled ones: the NLB outlasts them (on a busy machine too)
    # only when it provisions for well beyond the slow end of AWS's "a few minutes" — half the
    # gate's deadline, so that the provisioning and the slowest target checks after it
    # (slow_target_checks: 300 s) still fit in the deadline, on a fast machine too.
    realistic = runtime.latency.profile
    provisioning = control_plane.HEALTH.deadline.total_seconds() / 2
    assert (
        provisioning >= PROFILES["slow"].seconds[LB]
        and provisioning + 300 < control_plane.HEALTH.deadline.total_seconds()
    )
    runtime.latency.profile = replace(realistic, seconds={**realistic.seconds, LB: provisioning})
    runtime.latency.reset_report()
    try:
        yield runtime
    finally:
        runtime.set_latency("instant")


@pytest.fixture
def network(realistic: LocalRuntime, store) -> None:
    """The network provisioned under the profile (test_provision_network_waits_for_its_nat_gateways
    does it first; a test run alone, here)."""
    if store.network.get() is None:
        result = run(realistic, "ProvisionNetwork", {}, "provision-network-realistic-again")
        assert result["status"] == "SUCCEEDED", result.get("cause")


@pytest.fixture
def patient_instances(realistic: LocalRuntime) -> Iterator[None]:
    """Instances pending longer than the profile says. The replicas' health gate first looks at
    the last replica's instance a Map transition and a Lambda start after launching it: at time
    scale 0.02 the profile's 30 s of pending are 0.6 s, which a busy machine spends before that
    look (the gate then never sees an instance pending). 240 s (5 s here) outlast it. They boot
    in the simulator's fixed delay, not the profile's boot model: the gate looks at the NLB only
    once every replica reported, and the model's minutes of packages, init and joins one after
    another, with the Lambda tasks' unscaled run time of a busy machine, would outlast the NLB's
    provisioning (tests/local/test_instances.py covers the boot model)."""
    profile = realistic.latency.profile
    realistic.latency.profile = replace(profile, seconds={**profile.seconds, "instance-pending": 240.0}, boot=None)
    try:
        yield
    finally:
        realistic.latency.profile = profile


@contextlib.contextmanager
def repeating(seconds: float, action: Callable[[], bool | None]) -> Iterator[None]:
    """`action` every `seconds` on a thread of its own while the block runs, until it returns True."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            if action():
                return

    watcher = threading.Thread(target=loop, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


@pytest.fixture
def slow_target_checks(realistic: LocalRuntime) -> Iterator[None]:
    """Every target group checks its targets every 30 s and counts one healthy after 10 checks
    (the longest an NLB allows), set as soon as the group exists: a target stays `initial`, then
    `unhealthy`, for 5 minutes of AWS time (6 s here) after its load balancer is active. With
    kubestep's 10 s x 2 it is 0.4 s here, less than a busy machine takes between two looks of the
    health gate (the Lambda tasks' own run time is not compressed)."""
    elbv2 = realistic.boto3_client("elbv2")
    slowed: set[str] = set()

    def slow_down() -> None:
        for group in elbv2.describe_target_groups()["TargetGroups"]:
            if group["TargetGroupArn"] not in slowed:
                elbv2.modify_target_group(
                    TargetGroupArn=group["TargetGroupArn"], HealthCheckIntervalSeconds=30, HealthyThresholdCount=10
                )
                slowed.add(group["TargetGroupArn"])

    with repeating(0.05, slow_down):
        yield


@pytest.fixture
def nlb_provisioning_until_the_gate_looks(realistic: LocalRuntime) -> Iterator[None]:
    """The NLB stays provisioning until a replica's health gate has said so. The gate looks at it
    only once every replica reported (kubestep.resources.control_plane.check_replica_health), and
    a loaded machine can spend the NLB's whole modelled provisioning before that look; so, until
    an execution's history shows the gate waiting for it, every provisioning NLB is held."""
    sfn = realistic.boto3_client("stepfunctions")

    def the_gate_saw_it() -> bool:
        for execution in sfn.list_executions(stateMachineArn=realistic.state_machine_arn("CreateCluster"))[
            "executions"
        ]:
            if execution["status"] == "RUNNING" and said(
                pending(realistic, execution["executionArn"]), "the load balancer is provisioning"
            ):
                return True
        return False

    def hold() -> bool:
        moto_compat.keep_load_balancers_provisioning(2.0)
        return the_gate_saw_it()

    with repeating(0.25, hold):
        yield


def test_provision_network_waits_for_its_nat_gateways(realistic, store) -> None:
    result = run(realistic, "ProvisionNetwork", {}, "provision-network-realistic")
    assert result["status"] == "SUCCEEDED", result.get("cause")
    messages = pending(realistic, result["executionArn"])
    assert said(messages, "NAT gateways", "are not available yet"), messages
    assert store.network.get().status == "READY"
    modelled = realistic.modelled_time(result["executionArn"])
    # Three NAT gateways pending 3 minutes of AWS time each, in parallel. The polls' own run time
    # inside that window counts unscaled (latency.modelled_seconds): on a busy machine it eats
    # part of the window, hence the margin.
    assert modelled["modelledSeconds"] >= 120 > modelled["realSeconds"]


def test_create_and_delete_take_every_pending_path(
    realistic, store, network, patient_instances, slow_target_checks, nlb_provisioning_until_the_gate_looks
) -> None:
    created = run(realistic, "CreateCluster", ha_request("patient"), "create-patient-1")
    assert created["status"] == "SUCCEEDED", created.get("cause")
    messages = pending(realistic, created["executionArn"])
    uid = store.clusters.get("patient").uid
    # The replicas' health gate waits for the NLB (kubestep.resources.control_plane.check_replica_health).
    assert said(messages, "the load balancer is provisioning"), messages
    assert said(messages, "etcd volume", "is creating"), messages
    assert said(messages, "has no instance in service"), messages  # instances pending
    target = [m for m in messages if "in the NLB target group" in m]
    assert any(" is initial " in m or " is unhealthy " in m for m in target), messages
    assert store.clusters.get("patient").phase == "RUNNING"
    modelled = realistic.modelled_time(created["executionArn"])
    # The NLB's provisioning ran in modelled time, compressed: the modelled figure counts the
    # scaled waits at AWS's pace and the tasks' own run time as it was, so it is a multiple of
    # the real time by how much of the create was waiting (how much depends on the machine).
    assert modelled["modelledSeconds"] >= 3 * modelled["realSeconds"], modelled

    # Instances slower to shut down than their groups and the NLB to go: the groups, the replicas'
    # groups and the NLB go at once (DeleteGroupsAndLoadBalancer), and with the profile's 30 s the
    # instances are gone before TerminateInstances looks, so its wait would never be taken. The
    # NLB's interfaces linger long enough that the poll after DeleteLoadBalancer finds them even
    # when a loaded machine answers it late (the profile's 60 s passed first under load).
    profile = realistic.latency.profile
    slower = {"instance-shutting-down": 600.0, "load-balancer-interfaces-linger": 240.0}
    realistic.latency.profile = replace(profile, seconds={**profile.seconds, **slower})
    deleted = run(realistic, "DeleteCluster", {"clusterName": "patient"}, "delete-patient-1")
    assert deleted["status"] == "SUCCEEDED", deleted.get("cause")
    messages = pending(realistic, deleted["executionArn"])
    assert said(messages, "Auto Scaling groups", "are being deleted"), messages
    assert said(messages, "network interfaces of the load balancer are still attached"), messages
    assert said(messages, "instances to terminate", "shutting-down"), messages
    assert inventory.count(inventory.cluster_resources(uid, realistic.boto3_client)) == 0
    report = realistic.latency.report()
    for state in ("nat-gateway-pending", "load-balancer-provisioning", "volume-creating", "instance-pending"):
        assert report[state]["count"] >= 1, report


def test_a_node_pool_roll_and_an_upgrade_wait_for_what_aws_keeps_pending(realistic, store, network) -> None:
    """The lifecycle under the profile: a pool's roll waits for its new instance (pending, then
    its report); the control plane's upgrade waits for the replacement to be in service and its
    NLB target to leave `initial`/`unhealthy`; both succeed, and the delete leaves nothing."""
    request = small_cluster("steady")
    request["nodePools"][0]["spec"]["minNodeCount"] = 1
    created = run(realistic, "CreateCluster", request, "create-steady-1")
    assert created["status"] == "SUCCEEDED", created.get("cause")
    uid = store.clusters.get("steady").uid
    pool = request["nodePools"][0]["metadata"]["name"]

    before = realistic.latency.report()["instance-pending"]["count"]
    changes = {"labels": {"tier": "web"}, "updateSettings": {"maxSurge": 1, "maxUnavailable": 0}}
    rolled = run(
        realistic, "UpdateNodePool", {"clusterName": "steady", "nodePool": pool, "changes": changes}, "roll-steady-1"
    )
    assert rolled["status"] == "SUCCEEDED", rolled.get("cause")
    assert said(pending(realistic, rolled["executionArn"]), f"node pool {pool}", "new nodes ready")
    assert realistic.latency.report()["instance-pending"]["count"] > before  # the surge instance was pending

    before = realistic.latency.report()["instance-pending"]["count"]
    upgrade = {"clusterName": "steady", "controlPlane": {"version": "1.36.5"}, "nodePools": "all"}
    upgraded = run(realistic, "UpdateCluster", upgrade, "upgrade-steady-1")
    assert upgraded["status"] == "SUCCEEDED", upgraded.get("cause")
    messages = pending(realistic, upgraded["executionArn"])
    target = [m for m in messages if "in the NLB target group" in m]
    assert said(messages, "has no instance in service") or target, messages
    assert realistic.latency.report()["instance-pending"]["count"] > before
    assert store.clusters.get("steady").version == "1.36.5"

    deleted = run(realistic, "DeleteCluster", {"clusterName": "steady"}, "delete-steady-1")
    assert deleted["status"] == "SUCCEEDED", deleted.get("cause")
    assert inventory.count(inventory.cluster_resources(uid, realistic.boto3_client)) == 0
