"""kubestep_local/instance_faults.apply: a fault request names the field it gets wrong (the
cluster, the node, the replica) and changes nothing."""

from __future__ import annotations

import pytest

from kubestep_local.instance_faults import FaultRefused, apply


class Simulator:
    """The two calls `apply` makes of the instance simulator, over a fixed fleet."""

    def __init__(self) -> None:
        self.fleet = {("prod", "control-plane"): {"i-0aaa": 0, "i-0bbb": 1}, ("prod", "node"): {"i-0ccc": None}}
        self.changed: list[tuple] = []

    def live_instances(self, cluster: str, role: str) -> dict:
        return self.fleet.get((cluster, role), {})

    def stop_heartbeat(self, cluster: str, *, role: str, instance_id: str) -> list[str]:
        self.changed.append(("heartbeat", cluster, instance_id))
        return [instance_id]

    def fail_after_healthy(self, cluster: str, replica: int) -> list[str]:
        self.changed.append(("fails", cluster, replica))
        return ["i-0aaa"]

    def hold_boots(self, cluster: str, *, role: str) -> None:
        self.changed.append(("hold", cluster, role))

    def restore_health(self) -> None:
        self.changed.append(("restore",))

    def release_boots(self) -> None:
        self.changed.append(("release",))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"kind": "node-heartbeat", "cluster": "nope", "node": "i-0ccc"}, "CLUSTER"),
        ({"kind": "replica-fails", "cluster": "nope", "replica": 0}, "CLUSTER"),
        ({"kind": "node-heartbeat", "cluster": "prod", "node": "i-0aaa"}, "NODE"),
        ({"kind": "replica-fails", "cluster": "prod", "replica": 2}, "INDEX"),
        ({"kind": "reboot", "cluster": "prod"}, "kind"),
        ({"kind": "boot-hangs"}, "CLUSTER"),
    ],
)
def test_a_bad_fault_request_names_its_field_and_changes_nothing(request_: dict, field: str) -> None:
    simulator = Simulator()
    with pytest.raises(FaultRefused) as refused:
        apply(simulator, request_)
    assert str(refused.value).startswith(f"{field}:") and simulator.changed == []


def test_a_good_fault_request_reaches_the_simulator() -> None:
    simulator = Simulator()
    assert apply(simulator, {"kind": "node-heartbeat", "cluster": "prod", "node": "i-0ccc"}) == {
        "instances": ["i-0ccc"]
    }
    assert apply(simulator, {"kind": "replica-fails", "cluster": "prod", "replica": 1}) == {"instances": ["i-0aaa"]}
    assert simulator.changed == [("heartbeat", "prod", "i-0ccc"), ("fails", "prod", 1)]


def test_boots_hang_for_a_cluster_without_instances_yet_and_clear_lets_them_finish() -> None:
    simulator = Simulator()
    assert apply(simulator, {"kind": "boot-hangs", "cluster": "second"}) == {"instances": []}
    assert apply(simulator, {"kind": "clear"}) == {"instances": []}
    assert simulator.changed == [
        ("hold", "second", "control-plane"),
        ("hold", "second", "node"),
        ("restore",),
        ("release",),
    ]
