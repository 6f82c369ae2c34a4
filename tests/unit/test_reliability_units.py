"""Pure parts of issue 11: modelled AWS time, latency profiles, fault matching, orphan views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubestep.resources.orphans import Orphan
from kubestep_local.faults import Fault, Invocation, is_read_only
from kubestep_local.latency import PROFILES, Profile


def test_profiles_name_known_states_and_grow_from_realistic_to_slow() -> None:
    assert PROFILES["instant"].seconds == {}
    for state, realistic in PROFILES["realistic"].seconds.items():
        assert PROFILES["slow"].seconds[state] >= realistic
    with pytest.raises(ValueError, match="unknown states"):
        Profile("typo", {"nat-gateway-pendin": 1.0})


def test_faults_match_operation_cluster_and_times() -> None:
    invocation = Invocation("svc-cluster-tasks", "EnsureEtcdVolume", "prod", "create-x-1")
    fault = Fault("error", "ec2:CreateVolume", cluster="prod", times=2, fired=1)
    assert fault.hits(invocation, "ec2:CreateVolume")
    assert not fault.hits(invocation, "ec2:DeleteVolume")
    assert not Fault("error", "ec2:CreateVolume", cluster="other").hits(invocation, "ec2:CreateVolume")
    assert not Fault("error", "ec2:CreateVolume", times=2, fired=2).hits(invocation, "ec2:CreateVolume")
    mutating = Fault("crash", "mutating", task="EnsureEtcdVolume")
    assert mutating.hits(invocation, "ec2:CreateVolume") and not mutating.hits(invocation, "ec2:DescribeVolumes")
    assert Fault("crash", function="cluster-tasks").hits(invocation, None)
    assert is_read_only("dynamodb:Query") and not is_read_only("dynamodb:PutItem")


def test_an_orphan_is_old_once_its_newest_resource_passed_the_grace_period() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    orphan = Orphan("u1", None)
    orphan.add("volumes", "vol-1", now - timedelta(hours=3), {"gke:cluster": "prod"})
    orphan.add("instances", "i-1", now - timedelta(minutes=20), {})
    view = orphan.view(now, timedelta(hours=1))
    assert (view["clusterName"], view["count"], view["ageSeconds"], view["old"]) == ("prod", 2, 1200, False)
    assert orphan.view(now, timedelta(minutes=10))["old"] is True
