"""The registry's lock: taken by operation id, re-entrant for the same operation (the API's
reservation and the execution are one lock), taken over only from a dead or expired holder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubestep import registry as registry_module
from kubestep.errors import LockHeld


def test_same_operation_reacquires_and_another_is_refused(registry):
    registry.acquire_lock("CLUSTER#a", "op-1", "arn:exec:1", lambda arn: True)
    registry.acquire_lock("CLUSTER#a", "op-1", "arn:exec:1", lambda arn: True)
    with pytest.raises(LockHeld) as info:
        registry.acquire_lock("CLUSTER#a", "op-2", "arn:exec:2", lambda arn: True)
    assert "op-1" in str(info.value)


def test_takeover_from_a_stopped_execution(registry):
    registry.acquire_lock("CLUSTER#a", "op-1", "arn:exec:1", lambda arn: True)
    lock = registry.acquire_lock("CLUSTER#a", "op-2", "arn:exec:2", lambda arn: arn != "arn:exec:1")
    assert lock["tookOverFrom"] == "op-1"
    assert registry.get_lock("CLUSTER#a")["operationId"] == "op-2"


def test_reservation_without_execution_is_respected_during_grace(registry, monkeypatch):
    registry.acquire_lock("CLUSTER#a", "op-1", "arn:exec:1", lambda arn: None)
    with pytest.raises(LockHeld):
        registry.acquire_lock("CLUSTER#a", "op-2", "arn:exec:2", lambda arn: None)
    monkeypatch.setattr(registry_module, "LOCK_START_GRACE", timedelta(seconds=-1))
    assert registry.acquire_lock("CLUSTER#a", "op-2", "arn:exec:2", lambda arn: None)["tookOverFrom"] == "op-1"


def test_expired_lease_is_taken_over(registry, monkeypatch):
    monkeypatch.setattr(registry_module, "LOCK_TTL", timedelta(seconds=-1))
    registry.acquire_lock("CLUSTER#a", "op-1", "arn:exec:1", lambda arn: True)
    assert registry.acquire_lock("CLUSTER#a", "op-2", "arn:exec:2", lambda arn: True)["tookOverFrom"] == "op-1"


def test_release_only_by_the_holder(registry):
    registry.acquire_lock("CLUSTER#a", "op-1", None, lambda arn: True)
    assert registry.release_lock("CLUSTER#a", "op-2") is False
    assert registry.release_lock("CLUSTER#a", "op-1") is True
    assert registry.get_lock("CLUSTER#a") is None


def test_events_aggregate_and_outlive_the_cluster(registry):
    registry.create_cluster("c", "uid00001", {"spec": {"controlPlane": {"version": "1.32.1"}}}, "op", [])
    for _ in range(3):
        registry.record_event("c", "Warning", "Pending", "waiting", "AWSCluster/c", "op")
    registry.record_event("c", "Normal", "Other", "hello", "AWSCluster/c")
    registry.delete_cluster_records("c")
    events = registry.list_events("c")
    assert [(e["reason"], e["count"]) for e in events] == [("Pending", 3), ("Other", 1)]
    assert registry.get_cluster("c") is None


def test_parallel_members_do_not_overwrite_each_other(registry):
    registry.create_cluster("c", "uid00001", {"spec": {"controlPlane": {"version": "1.32.1"}}}, "op", [])
    for i in range(3):
        registry.put_etcd_member("c", i, {"zone": f"z{i}"})
        registry.record_resource("CLUSTER#c", f"ETCD#MEMBER#{i:02d}", "etcd-volume", f"vol-{i}", "op")
    registry.put_etcd_member("c", 1, {"zone": "other"})  # re-planning keeps what was recorded
    members = registry.list_etcd_members("c")
    assert [(m["zone"], m["resources"]["etcd-volume"]["id"]) for m in members] == [
        ("z0", "vol-0"),
        ("z1", "vol-1"),
        ("z2", "vol-2"),
    ]
