"""What automatic repair counts as unhealthy, and from when (`kubestep.auto_repair`): only the
replica instance that passed its gate, by its report and its NLB target; a node by its
heartbeat's age; one deterministic operation per set of instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from kubestep import auto_repair, recovery
from kubestep.models import NodePoolAutoRepair
from kubestep.store import BootstrapReport, ClusterRecord, EtcdMember
from kubestep.store.table import iso
from kubestep.workflows import auto_repair_steps

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _member(instance_id: str = "i-0aaa") -> EtcdMember:
    return EtcdMember(
        index=1, zone="us-east-1b", subnet_id="subnet-1", name="m1", peer_name="cp-1", instance_id=instance_id
    )


def _report(
    status: str = "ok", instance_id: str = "i-0aaa", age: timedelta = timedelta(0), **checks
) -> BootstrapReport:
    return BootstrapReport(
        status=status,
        instance_id=instance_id,
        reported_at=iso(datetime.now(UTC) - age),
        checks={"apiserverReady": True, **checks},
    )


def test_a_healthy_replica_has_no_problem():
    assert auto_repair.replica_problem(_member(), _report(), "healthy", 1.0) is None


def test_a_replica_is_unhealthy_by_its_report_or_its_target():
    member = _member()
    assert "failed:kubeadm-join" in auto_repair.replica_problem(member, _report("failed:kubeadm-join"), None, 1.0)
    assert "apiserverReady" in auto_repair.replica_problem(member, _report(apiserverReady=False), "healthy", 1.0)
    assert "older than" in auto_repair.replica_problem(member, _report(age=timedelta(minutes=6)), "healthy", 1.0)
    assert "NLB target is unhealthy" in auto_repair.replica_problem(member, _report(), "unhealthy", 1.0)


def test_a_report_of_another_instance_says_nothing_good_about_the_gated_one():
    assert "not from it" in auto_repair.replica_problem(_member("i-0bbb"), _report(), "healthy", 1.0)


def test_a_node_counts_as_unhealthy_only_after_two_missed_reports_and_only_if_it_booted_well():
    assert auto_repair.node_problem(_report(age=timedelta(seconds=90)), datetime.now(UTC), 1.0) is None
    problem, since = auto_repair.node_problem(_report(age=timedelta(seconds=150)), datetime.now(UTC), 1.0)
    assert "stopped" in problem and datetime.now(UTC) - since >= timedelta(seconds=150)
    assert auto_repair.node_problem(_report("failed:packages", age=timedelta(hours=1)), datetime.now(UTC), 1.0) is None
    assert auto_repair.node_problem(None, datetime.now(UTC), 1.0) is None


def test_a_member_is_due_after_unhealthy_after_scaled_by_the_time_scale():
    setting = NodePoolAutoRepair.model_validate({"unhealthyAfter": "5m"})
    member = auto_repair.Unhealthy("i-0aaa", "silent", NOW - timedelta(minutes=4), node_pool="general")
    assert not member.due(setting, NOW, 1.0)
    assert member.due(setting, NOW + timedelta(minutes=1), 1.0)
    assert member.due(setting, NOW, 0.5)


def test_the_operation_id_is_the_same_for_the_same_instances_and_fits_an_execution_name():
    first = auto_repair.operation_id("abcd1234", ["i-0bbb", "i-0aaa"])
    assert first == auto_repair.operation_id("abcd1234", ["i-0aaa", "i-0bbb"])
    assert first != auto_repair.operation_id("abcd1234", ["i-0aaa"])
    assert first != auto_repair.operation_id("efgh5678", ["i-0aaa", "i-0bbb"])
    assert first.startswith("autorepair-abcd1234-") and len(first) <= 80


def test_a_failed_automatic_repair_is_advised_a_repair_not_a_rerun():
    assert recovery.phase_after_interruption("AutoRepair") == "DEGRADED"
    advice = recovery.advice("prod", "DEGRADED", "AutoRepair")
    assert advice.startswith("run `kubestep repair cluster prod`") and "AutoRepair again" not in advice


class _Clusters:
    """The cluster records as the index lists them; a consistent read of one is noted."""

    def __init__(self, *records: ClusterRecord) -> None:
        self.records = list(records)
        self.read: list[str] = []

    def all(self) -> list[ClusterRecord]:
        return self.records

    def require(self, name: str) -> ClusterRecord:
        self.read.append(name)
        return next(r for r in self.records if r.name == name)

    def require_with_operation_and_network(self, name: str, operation_id: str) -> tuple[ClusterRecord, None, None]:
        return self.require(name), None, None  # what a step's context reads as it starts


class _Locks:
    def __init__(self, **held: str) -> None:
        self.held = held

    def get(self, name: str) -> SimpleNamespace | None:
        return SimpleNamespace(operation_id=self.held[name]) if name in self.held else None


def _sweep(clusters: _Clusters, locks: _Locks) -> dict:
    store = SimpleNamespace(clusters=clusters, locks=locks)
    return auto_repair_steps.find_repairs(SimpleNamespace(store=store, settings=None, operation_id="plan-1"))


def test_the_sweep_leaves_a_cluster_being_created_or_deleted_alone_without_reading_it_again():
    clusters = _Clusters(
        ClusterRecord.model_construct(name="new", uid="u1", phase="PROVISIONING"),
        ClusterRecord.model_construct(name="old", uid="u2", phase="DELETING"),
    )
    found = _sweep(clusters, _Locks(new="op-create"))
    assert found["repairs"] == [] and found["othersCount"] == 2
    assert [(d["clusterName"], d["action"], d["reason"]) for d in found["others"]] == [
        ("new", "skip", "operation op-create holds the cluster"),  # the same reason a full decision gives
        ("old", "skip", "cluster is DELETING"),
    ]
    assert clusters.read == []  # the index's copy sufficed: no consistent re-read of either


def test_the_sweep_reads_a_running_cluster_again_before_deciding():
    clusters = _Clusters(ClusterRecord.model_construct(name="web", uid="u3", phase="RUNNING"))
    found = _sweep(clusters, _Locks(web="op-update"))  # a lock taken since the index was read
    assert clusters.read == ["web"]
    assert [(d["clusterName"], d["reason"]) for d in found["others"]] == [
        ("web", "operation op-update holds the cluster")
    ]
