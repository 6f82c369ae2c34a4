"""How the health gates read the instances' periodic reports: a stale report proves nothing, a
replica's checks name what does not hold, a node counts only when Ready and initialised by the
cloud controller manager."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubestep.resources import reports
from kubestep.resources.control_plane import replica_check_failure
from kubestep.store import BootstrapReport, EtcdConfig, iso, now

CONFIG = EtcdConfig(initial_cluster_token="t", data_dir="/var/lib/etcd", members=3)
# What a node's report says once the cloud controller manager initialised its Node (docs/contracts.md:
# `nodeInitialized` is providerID set and the uninitialized taint gone, as the node's script sees them).
INITIALISED = {"nodeReady": True, "nodeInitialized": True, "providerID": "aws:///us-east-1a/i-0abc"}


def node(checks: dict, status: str = "ok", age: timedelta = timedelta(seconds=5)) -> BootstrapReport:
    return BootstrapReport(status=status, instance_id="i-0abc", reported_at=iso(now() - age), checks=checks)


def test_a_replica_names_the_check_that_does_not_hold():
    healthy = {"etcdMembers": 3, "etcdHealthy": True, "apiserverReady": True}
    assert replica_check_failure(healthy, CONFIG) is None
    assert "2 of 3 members (etcdMembers)" in replica_check_failure({**healthy, "etcdMembers": 2}, CONFIG)
    assert "(etcdHealthy)" in replica_check_failure({**healthy, "etcdHealthy": False}, CONFIG)
    assert "(/readyz, apiserverReady)" in replica_check_failure({**healthy, "apiserverReady": None}, CONFIG)


def test_a_node_counts_only_when_ready_and_initialised_by_the_cloud_controller_manager():
    assert reports.node_problem(node(INITIALISED)) is None
    # Ready, but the cloud controller manager has not initialised it (no providerID, or tainted).
    ready_only = node({"nodeReady": True, "nodeInitialized": False})
    assert "(nodeInitialized)" in reports.node_problem(ready_only)
    assert reports.UNINITIALIZED_TAINT in reports.node_problem(ready_only)
    # A report that says nothing about it does not prove it initialised.
    silent = node({"nodeReady": True, "providerID": "aws:///us-east-1a/i-0abc"})
    assert "(nodeInitialized)" in reports.node_problem(silent)
    assert "(nodeReady)" in reports.node_problem(node({**INITIALISED, "nodeReady": False}))
    assert reports.node_problem(node({}, status="failed:kubeadm-join")) == "reported failed:kubeadm-join"
    assert reports.node_problem(None) == "has not reported its bootstrap yet"


@pytest.mark.parametrize(("scale", "stale"), [(1.0, True), (100.0, False)])
def test_a_report_older_than_five_intervals_is_stale(scale, stale):
    old = node(INITIALISED, age=reports.STALE_AFTER + timedelta(minutes=1))
    assert (reports.staleness(old, scale) is not None) is stale
    assert (reports.node_problem(old, scale) is not None) is stale
    assert reports.staleness(node(INITIALISED)) is None
    assert "no reportedAt" in reports.staleness(BootstrapReport(status="ok"))
