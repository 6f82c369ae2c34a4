"""The boot model of the latency profiles (kubestep_local/latency.py): per role, the time from
an instance's `running` to its bootstrap report."""

from __future__ import annotations

from kubestep_local.latency import PROFILES, BootModel


def test_replicas_init_once_then_join_one_at_a_time_and_nodes_wait_for_the_control_plane() -> None:
    model = BootModel(os_boot=10, packages=40, init=70, control_plane_join=60, node_join=20)
    assert model.first_replica() == 120
    assert model.replicas(1) == 120 and model.replicas(3) == 240
    assert model.node() == 70  # nothing to wait for
    assert model.node(control_plane_up=120) == 140  # packages done at 50: retries its join until 120


def test_realistic_and_slow_model_boots_instant_does_not() -> None:
    assert PROFILES["instant"].boot is None
    realistic, slow = PROFILES["realistic"].boot, PROFILES["slow"].boot
    assert realistic and slow
    # A real replica is not ready 20 s after it runs: packages and kubeadm take minutes.
    assert realistic.first_replica() >= 120 and slow.first_replica() > realistic.first_replica()
    assert slow.replicas(3) > realistic.replicas(3) > realistic.first_replica()
