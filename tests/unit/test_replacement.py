"""One replica replacement for the roll, the repair and what comes later: one rule for "the
instance is going away", from the Auto Scaling lifecycle states (Amazon EC2 Auto Scaling API
Reference, `Instance.LifecycleState`), and one event."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kubestep.resources import instances, replacement
from kubestep.resources.instances import LifecycleState

# Every value of LifecycleState in the API reference, in its order.
AWS_STATES = [
    "Pending",
    "Pending:Wait",
    "Pending:Proceed",
    "Quarantined",
    "InService",
    "Terminating",
    "Terminating:Wait",
    "Terminating:Proceed",
    "Terminated",
    "Detaching",
    "Detached",
    "EnteringStandby",
    "Standby",
    "Warmed:Pending",
    "Warmed:Pending:Wait",
    "Warmed:Pending:Proceed",
    "Warmed:Terminating",
    "Warmed:Terminating:Wait",
    "Warmed:Terminating:Proceed",
    "Warmed:Terminated",
    "Warmed:Stopped",
    "Warmed:Running",
    "Warmed:Hibernated",
]


def test_the_states_are_the_api_references() -> None:
    assert [s.value for s in LifecycleState] == AWS_STATES


def test_going_away_is_terminating_or_leaving_the_group() -> None:
    away = {s for s in AWS_STATES if instances.going_away(s)}
    assert away == {s for s in AWS_STATES if "Terminat" in s or s.startswith("Detach")}
    assert not instances.going_away("InService") and not instances.going_away("Standby")


class Recorder:
    """Stands in for the context: the group's instances as DescribeAutoScalingGroups and
    DescribeInstances give them, the terminations asked for, the events."""

    def __init__(self, members: list[dict]) -> None:
        self.members = members
        self.terminated: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.spec_tags: list[str] = []

    def event(self, type_: str, reason: str, message: str, involved: str | None = None) -> None:
        self.events.append((reason, message))


@pytest.fixture
def group(monkeypatch):
    def make(*members: tuple[str, str, str]) -> Recorder:
        ctx = Recorder([{"id": i, "state": state, "spec": spec, "type": "m5.large"} for i, state, spec in members])
        monkeypatch.setattr(instances, "group_instances", lambda c, name: ctx.members)
        monkeypatch.setattr(instances, "set_group_spec", lambda c, name, spec: ctx.spec_tags.append(spec))
        monkeypatch.setattr(instances, "terminate_in_group", lambda c, i, decrement: ctx.terminated.append(i) or None)
        return ctx

    return make


def test_only_live_instances_of_another_spec_or_failed_are_replaced(group) -> None:
    ctx = group(
        ("i-old", "InService", "v1"),
        ("i-pending-old", "Pending:Wait", "v1"),
        ("i-draining", "Terminating:Wait", "v1"),
        ("i-detaching", "Detaching", "v1"),
        ("i-current", "InService", "v2"),
        ("i-failed", "InService", "v2"),
    )
    replaced = replacement.replace_stale(ctx, "asg", "v2", "replica 0", failed="i-failed")  # type: ignore[arg-type]
    assert replaced == ctx.terminated == ["i-old", "i-pending-old", "i-failed"]
    assert ctx.spec_tags == ["v2"], "the group launches the spec's instances from now on"
    assert ctx.events == [
        (
            replacement.REPLACING,
            "replica 0: replacing i-old, i-pending-old, i-failed with instances of its current spec",
        )
    ]


def test_nothing_to_replace_is_no_event(group) -> None:
    ctx = group(("i-current", "InService", "v2"), ("i-gone", "Terminated", "v1"))
    assert replacement.replace_stale(ctx, "asg", "v2", "replica 0") == []  # type: ignore[arg-type]
    assert ctx.terminated == [] and ctx.events == []


def test_a_replica_is_replaced_by_its_record_and_report(group, monkeypatch) -> None:
    ctx = group(("i-1", "InService", "v2"))
    member = SimpleNamespace(asg_name="gke-x-cp-0", launch_spec="v2")
    report = SimpleNamespace(instance_id="i-1", failed_phase="kubeadm")
    ctx.name, ctx.uid = "c", "uid00001"
    ctx.store = SimpleNamespace(
        etcd=SimpleNamespace(require_member=lambda name, index: member),
        reports=SimpleNamespace(replica=lambda uid, index: report),
    )
    assert replacement.replace_replica(ctx, 0) == ["i-1"]  # type: ignore[arg-type]
