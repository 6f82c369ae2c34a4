"""The upgrade planner's decisions and its fleet-wide cap, with the PlanUpgrades definition run
in process (tests/unit/asl_runner.py) against moto, where started executions stay RUNNING and so
keep holding their clusters' locks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubestep import upgrades, versions
from kubestep.settings import settings
from kubestep.store import Store
from tests.api.conftest import example_body, executions, register
from tests.unit.asl_runner import Interpreter

SATURDAY_0330 = datetime(2026, 12, 5, 3, 30, tzinfo=UTC)
ALWAYS = {"start": "00:00", "duration": "24h"}


def auto_cluster(store: Store, name: str, *, version: str = "1.35.4", window: dict | None = None, **policy) -> None:
    body = example_body()
    body["cluster"]["metadata"]["name"] = name
    body["cluster"]["spec"]["controlPlane"]["version"] = version
    body["cluster"]["spec"]["upgradePolicy"] = {
        "autoUpgrade": True,
        "releaseChannel": "regular",
        "maintenanceWindow": window or ALWAYS,
        **policy,
    }
    for pool in body["nodePools"]:
        pool["spec"]["clusterName"] = name
        pool["spec"]["version"] = version
    register(store, body, operation_id=f"create-{name}")
    store.clusters.update(name, phase="RUNNING", current_operation=None)


def plan(store: Store, name: str, at: datetime = SATURDAY_0330) -> dict:
    event = {"time": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "detail-type": "Scheduled Event"}
    run = Interpreter("PlanUpgrades", settings(), store).run(event, name)
    return run


@pytest.mark.parametrize(
    ("current", "channel", "expected"),
    [
        ("1.35.4", "regular", "1.36.5"),  # regular follows 1.36: its newest patch
        ("1.34.2", "regular", "1.35.9"),  # two minors behind: one at a time
        ("1.36.1", "regular", "1.36.5"),  # a patch behind
        ("1.36.5", "regular", None),  # up to date
        ("1.37.1", "stable", None),  # ahead of its channel: never down
        ("1.35.4", "none", None),
    ],
)
def test_next_version_moves_toward_the_channel_one_minor_at_a_time(current: str, channel: str, expected: str | None):
    assert versions.catalog().channels["regular"] == 36, "the table below assumes regular = 1.36"
    assert upgrades.next_version(current, channel) == expected


def test_decisions_name_why_each_cluster_waits(api: Store) -> None:
    auto_cluster(api, "due")
    auto_cluster(api, "current", version="1.36.5")
    auto_cluster(api, "sunday", window={"start": "03:00", "duration": "4h", "days": ["SUN"]})
    auto_cluster(api, "berlin", window={"start": "03:00", "duration": "1h", "timeZone": "Europe/Berlin"})
    auto_cluster(api, "off", autoUpgrade=False)
    auto_cluster(api, "degraded")
    api.clusters.update("degraded", phase="DEGRADED")
    decisions = {d.cluster: d for d in upgrades.plan(api, 3, SATURDAY_0330)}
    assert decisions["due"].action == "upgrade" and decisions["due"].version == "1.36.5"
    assert decisions["due"].operation_id == upgrades.auto_operation_id(
        api.clusters.get("due"), "1.36.5", datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    )
    assert decisions["current"].reason.startswith("up to date")
    assert decisions["sunday"].reason == "outside its maintenance window"
    # 03:30 UTC is 04:30 in Berlin: its 03:00-04:00 window has closed.
    assert decisions["berlin"].reason == "outside its maintenance window"
    assert decisions["off"].reason == "auto-upgrade is off"
    assert decisions["degraded"].reason == "cluster is DEGRADED"
    assert [d.cluster for d in decisions.values() if d.action == "upgrade"] == ["due"]


def test_the_cap_holds_with_ten_eligible_clusters_and_firing_twice_starts_nothing_twice(api: Store) -> None:
    for index in range(10):
        auto_cluster(api, f"c{index}")
    first = plan(api, "plan-1")
    assert first.entered[-1] == "Planned"
    started = [e["name"] for e in executions("UpdateCluster")]
    assert len(started) == 3 == settings().service.spec.upgrades.max_concurrent
    assert all(name.startswith("auto-") for name in started)
    # Each holds its cluster's lock under its own operation record.
    for name in started:
        operation = api.operations.get(name)
        assert operation.kind == "UpdateCluster" and api.locks.get(operation.target).operation_id == name
    # The rule fires again (at-least-once delivery, or the next period): nothing more starts.
    plan(api, "plan-2")
    assert sorted(e["name"] for e in executions("UpdateCluster")) == sorted(started)
    # One upgrade ends: one slot opens.
    done = api.operations.get(started[0])
    api.operations.finish(done.operation_id, "SUCCEEDED")
    api.locks.release(done.target, done.operation_id)
    api.clusters.update(done.target, version="1.36.5", spec=_upgraded(api, done.target))
    plan(api, "plan-3")
    assert len(executions("UpdateCluster")) == 4


def _upgraded(store: Store, name: str):
    record = store.clusters.get(name)
    spec = record.spec.model_copy(deep=True)
    spec.spec.control_plane.version = "1.36.5"
    return spec


def test_the_input_time_is_honoured_only_by_the_local_runtime(api: Store, monkeypatch) -> None:
    """On AWS, anyone who may start PlanUpgrades could type any `time`: it is ignored there, and
    the execution's own start time decides the windows."""
    auto_cluster(api, "weekday", window={"start": "10:00", "duration": "1h", "days": ["TUE"]})
    tuesday = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    plan(api, "plan-aws", at=tuesday)  # StartTime (Saturday 03:30) wins: outside the window
    assert executions("UpdateCluster") == []
    monkeypatch.setenv("KUBESTEP_LOCAL_CLOCK", "1")
    settings.cache_clear()
    plan(api, "plan-local", at=tuesday)
    assert [e["name"] for e in executions("UpdateCluster")][0].startswith("auto-")
