"""`management.autoRepair` in the manifests: on for node pools, opt-in for the control plane, a
wait before a member counts as failed, and Cluster API's `maxUnhealthy` short-circuit (a count
or a share). Bad values name the field and the rule."""

from __future__ import annotations

import copy

import pytest
import yaml

from kubestep.errors import InvalidSpec
from kubestep.models import ControlPlaneAutoRepair, NodePoolAutoRepair
from kubestep.validation import parse_create_request

from .conftest import EXAMPLES, load_service

SERVICE = load_service(EXAMPLES / "management-service.yaml")
DOCS = list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))


def _request(cluster_repair: dict | None = None, pool_repair: dict | None = None) -> dict:
    body = {"cluster": copy.deepcopy(DOCS[0]), "nodePools": copy.deepcopy(DOCS[1:])}
    if cluster_repair is not None:
        body["cluster"]["spec"]["management"] = {"autoRepair": cluster_repair}
    if pool_repair is not None:
        body["nodePools"][0]["spec"]["management"] = {"autoRepair": pool_repair}
    return body


def _problems(body: dict) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as info:
        parse_create_request(SERVICE, body)
    return dict(info.value.problems)


def test_defaults_repair_nodes_and_leave_the_control_plane_to_an_opt_in():
    request = parse_create_request(SERVICE, _request())
    control_plane = request.cluster.spec.management.auto_repair
    pool = request.node_pools[0].spec.management.auto_repair
    assert (control_plane.enabled, control_plane.max_unhealthy, control_plane.unhealthy_after_seconds) == (
        False,
        1,
        600,
    )
    assert (pool.enabled, pool.max_unhealthy, pool.unhealthy_after_seconds) == (True, "40%", 600)


def test_settings_are_read_as_written_and_kept_so():
    request = parse_create_request(
        SERVICE,
        _request({"enabled": "on", "unhealthyAfter": "5m30s"}, {"enabled": False, "maxUnhealthy": 3}),
    )
    control_plane = request.cluster.spec.management.auto_repair
    assert control_plane.enabled is True and control_plane.unhealthy_after_seconds == 330
    dumped = request.cluster.model_dump(mode="json", by_alias=True)["spec"]["management"]["autoRepair"]
    assert dumped == {"enabled": True, "unhealthyAfter": "5m30s", "maxUnhealthy": 1}
    assert request.node_pools[0].spec.management.auto_repair.max_unhealthy == 3


@pytest.mark.parametrize(
    ("setting", "members", "allowed"),
    [(1, 3, 1), (2, 10, 2), ("40%", 1, 1), ("40%", 2, 1), ("40%", 5, 2), ("40%", 6, 3), ("100%", 4, 4)],
)
def test_max_unhealthy_is_a_count_or_a_share_rounded_up(setting, members, allowed):
    assert NodePoolAutoRepair.model_validate({"maxUnhealthy": setting}).allowed(members) == allowed


@pytest.mark.parametrize(
    ("setting", "field", "rule"),
    [
        ({"maxUnhealthy": 0}, "maxUnhealthy", "must be at least 1"),
        ({"maxUnhealthy": "0%"}, "maxUnhealthy", "share from 1% to 100%"),
        ({"maxUnhealthy": "150%"}, "maxUnhealthy", "share from 1% to 100%"),
        ({"maxUnhealthy": True}, "maxUnhealthy", "is not a count"),
        ({"unhealthyAfter": "1m"}, "unhealthyAfter", "must be from 3m to 24h"),
        ({"unhealthyAfter": "2d"}, "unhealthyAfter", "must be from 3m to 24h"),
        ({"unhealthyAfter": "soon"}, "unhealthyAfter", "is not a duration"),
        ({"enabled": "maybe"}, "enabled", "boolean"),
        ({"maxUnhealty": 1}, "maxUnhealty", "is not a known field"),
    ],
)
def test_bad_settings_name_the_field_and_the_rule(setting, field, rule):
    cluster = _problems(_request(cluster_repair=setting))
    assert list(cluster) == [f"cluster.spec.management.autoRepair.{field}"]
    assert rule in next(iter(cluster.values()))
    pool = _problems(_request(pool_repair=setting))
    assert list(pool) == [f"nodePools[0].spec.management.autoRepair.{field}"]
    assert rule in next(iter(pool.values()))


def test_the_control_plane_default_is_one_replica_at_a_time():
    assert ControlPlaneAutoRepair().allowed(3) == 1 and ControlPlaneAutoRepair().allowed(5) == 1


def test_applying_a_changed_setting_changes_it_in_place():
    from kubestep import lifecycle

    stored = parse_create_request(SERVICE, _request())
    wanted = parse_create_request(SERVICE, _request({"enabled": True}, {"maxUnhealthy": 1}))
    request, fixed = lifecycle.cluster_manifest_changes(stored.cluster, wanted.cluster)
    assert fixed == [] and request is not None and request.control_plane.model_dump(exclude_none=True) == {}
    assert request.management.auto_repair.enabled is True
    plan = lifecycle.plan_cluster_change(SERVICE, stored.cluster, stored.node_pools, request)
    assert plan.target.spec.management.auto_repair.enabled is True and not plan.rolls
    changes, fixed = lifecycle.node_pool_manifest_changes(stored.node_pools[0], wanted.node_pools[0])
    assert fixed == [] and changes.management.auto_repair.max_unhealthy == 1
    others = stored.node_pools[1:]
    pool = lifecycle.plan_node_pool_change(
        SERVICE, stored.cluster, stored.cluster.spec.control_plane.version, stored.node_pools[0], changes, others
    )
    assert pool.target.spec.management.auto_repair.max_unhealthy == 1 and not pool.rolls
