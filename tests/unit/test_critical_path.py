"""The lower bound of an operation (kubestep_local/critical_path.py): the longest chain of AWS
waits through the rendered workflow, at the latency profile's durations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kubestep.bootstrap.host import REPORT_SOON_SECONDS
from kubestep.workflows import create_cluster, delete_cluster, provision_network
from kubestep_local.critical_path import TARGET_HEALTHY_SECONDS, Shape, lower_bound
from kubestep_local.latency import PROFILES, BootModel, Profile

BOOT = BootModel(os_boot=0, packages=50, init=100, control_plane_join=40, node_join=10)
PROFILE = Profile(
    "test",
    {
        "nat-gateway-pending": 100,
        "load-balancer-provisioning": 70,
        "instance-pending": 5,
        "volume-creating": 3,
        "target-health": 1,
    },
    BOOT,
)


def task(task_name: str, **more) -> dict:
    return {"Type": "Task", "Parameters": {"Payload": {"task": task_name}}, **more}


def test_a_map_runs_its_items_side_by_side_and_a_parallel_waits_for_its_slowest_branch() -> None:
    nat_map = {
        "Type": "Map",
        "ItemsPath": "$.zones.names",
        "ItemProcessor": {"StartAt": "Nat", "States": {"Nat": task("EnsureNatGateway", End=True)}},
        "Next": "Wait",
    }
    wait_for_nats = task("CheckNatGateways", End=True)
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Lb", "States": {"Lb": task("EnsureLoadBalancer", End=True)}},
                    {"StartAt": "Nats", "States": {"Nats": nat_map, "Wait": wait_for_nats}},
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    bound = lower_bound(definition, PROFILE, Shape(zones=3))
    # Three NAT gateways at once (100 s), not one after another; the NLB's 70 s alongside.
    assert bound.seconds == 100
    assert [(s.state, s.end) for s in bound.critical_path()] == [("Nat", 0), ("Wait", 100)]


def test_replicas_join_one_after_another_behind_the_init_and_the_gate_waits_for_the_last() -> None:
    bound = lower_bound(create_cluster.WORKFLOW.render(), PROFILE, Shape(replicas=3, node_pools=2))
    first_report = 3 + 5 + BOOT.first_replica()  # volume, instance pending, packages + init
    last_report = first_report + 2 * BOOT.control_plane_join
    gate = last_report + TARGET_HEALTHY_SECONDS
    critical = bound.critical_path()
    held = next(s for s in critical if s.state == "WaitForControlPlane" or s.state == "CheckReplicaHealth")
    assert held.end == gate
    assert held.held_by is not None and held.held_by.state == "EnsureReplicaGroup"
    assert bound.seconds >= gate
    assert critical[-1].state == "MarkRunning"
    # One replica: no join at all.
    single = lower_bound(create_cluster.WORKFLOW.render(), PROFILE, Shape(replicas=1, node_pools=0))
    assert single.seconds == first_report + TARGET_HEALTHY_SECONDS


def test_a_replica_that_reported_before_the_last_join_holds_the_gate_until_its_next_fast_report() -> None:
    """Replica 1 reports 45 s before replica 2 joins: its report shows 2 of 3 members, and the
    whole control plane only at its fast report timer's next run (every REPORT_SOON_SECONDS from
    its report: 50 s later), 5 s after the last join."""
    boot = replace(BOOT, control_plane_join=45)
    bound = lower_bound(create_cluster.WORKFLOW.render(), replace(PROFILE, boot=boot), Shape(replicas=3, node_pools=0))
    first_report = 3 + 5 + boot.first_replica()
    last_join = first_report + 2 * 45
    assert REPORT_SOON_SECONDS == 10
    held = next(s for s in bound.critical_path() if s.state == "CheckReplicaHealth")
    assert held.end == last_join + 5 + TARGET_HEALTHY_SECONDS
    # Replica 0 reported 90 s (nine fast runs) before the last join: it shows it at the join.
    aligned = lower_bound(create_cluster.WORKFLOW.render(), PROFILE, Shape(replicas=2, node_pools=0))
    assert aligned.seconds == first_report + BOOT.control_plane_join + TARGET_HEALTHY_SECONDS


def test_the_reference_operations_under_the_realistic_profile() -> None:
    realistic = PROFILES["realistic"]
    network = lower_bound(provision_network.WORKFLOW.render(), realistic)
    assert network.seconds == realistic.seconds["nat-gateway-pending"]
    assert "WaitForNatGateways" in network.critical_states()
    delete = lower_bound(delete_cluster.WORKFLOW.render(), realistic)
    # The groups and the NLB go together: the NLB's interfaces linger while the groups delete.
    linger, groups = (
        realistic.seconds["load-balancer-interfaces-linger"],
        realistic.seconds["auto-scaling-group-deleting"],
    )
    assert delete.seconds == max(linger, groups)
    assert "DeleteLoadBalancer" in delete.critical_states()
    # The create: the node pools' chain runs beside the control plane's, which is the longer.
    create = lower_bound(create_cluster.WORKFLOW.render(), realistic)
    assert create.critical_path()[-2].state == "WaitForControlPlane" or "CheckReplicaHealth" in create.critical_states()
    assert not {"CheckNodePoolHealth", "ListNodePools"} & create.critical_states()
    # A slower profile never gives a smaller bound.
    slow = PROFILES["slow"]
    for workflow in (provision_network.WORKFLOW, create_cluster.WORKFLOW, delete_cluster.WORKFLOW):
        assert lower_bound(workflow.render(), slow).seconds > lower_bound(workflow.render(), realistic).seconds


def test_the_instant_profile_bounds_nothing_and_an_unknown_map_is_refused() -> None:
    assert lower_bound(create_cluster.WORKFLOW.render(), PROFILES["instant"]).seconds == 0
    definition = {
        "StartAt": "M",
        "States": {"M": {"Type": "Map", "ItemsPath": "$.other", "ItemProcessor": {"StartAt": "x", "States": {}}}},
    }
    with pytest.raises(ValueError, match=r"\$\.other"):
        lower_bound(definition, replace(PROFILE))
