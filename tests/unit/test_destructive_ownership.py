"""Every destructive path proves ownership of what it deletes. Next to each target sit another
cluster (`prod`, with a node pool of the same name as the target's and a pending one-off
upgrade) and resources that must survive whatever happens to the target: the etcd volumes an
earlier incarnation of the target's name kept (`gke:retained-by`). Delete, rollback, repair,
node-pool delete and schedule cancel each leave all of them as they were; the orphan sweep is
tests/unit/test_sweeper_ownership.py. One-off schedules belong to a cluster incarnation: a
delete cancels them, and one that fires for a later cluster of the same name does nothing.

Run in process: the rendered ASL with its real handlers, and the API's handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from kubestep import inventory, naming, upgrades, versions
from kubestep.aws.errors import Kind, is_not_found

from .asl_runner import ExecutionFailed
from .fleet import REGION, Fleet, fleet, report_all, small_request


def _at(days: int = 2) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _upgrade() -> str:
    return versions.catalog().minors[36].default_version


def _retained(uid: str) -> dict[str, dict]:
    ec2 = boto3.client("ec2", REGION)
    found = ec2.describe_volumes(Filters=[{"Name": "tag:gke:cluster-uid", "Values": [uid]}])["Volumes"]
    return {v["VolumeId"]: {"state": v["State"], "tags": naming.tags_dict(v.get("Tags"))} for v in found}


def _scheduler_has(schedule_id: str) -> bool:
    try:
        boto3.client("scheduler", REGION).get_schedule(Name=schedule_id, GroupName=upgrades.SCHEDULE_GROUP)
        return True
    except Exception as exc:
        if is_not_found(exc, Kind.SCHEDULE):
            return False
        raise


def _schedule(world: Fleet, cluster: str) -> str:
    answer = world.api("POST", f"/v1/clusters/{cluster}/upgrade", {"version": _upgrade(), "at": _at()})
    assert answer.status == 201, answer.text
    return answer.json["id"]


@pytest.fixture(scope="module")
def world():
    """prod with a pending upgrade, and the retained volumes of an earlier `target`."""
    with pytest.MonkeyPatch.context() as monkeypatch, fleet(monkeypatch) as world:
        earlier = world.create("target")
        kept = world.run("DeleteCluster", {"clusterName": "target", "keepEtcdVolumes": True}, "delete-target-0")
        assert kept.entered[-1] == "Deleted"
        prod = world.create("prod")
        yield {"world": world, "prod": prod, "earlier": earlier, "schedule": _schedule(world, "prod")}


class Neighbours:
    """What must not change while the target is destroyed: prod (records, lock, schedules, AWS
    resources), its schedule in Scheduler, the earlier target's retained volumes."""

    def __init__(self, fixture: dict):
        self.world, self.prod, self.earlier, self.schedule = (
            fixture["world"],
            fixture["prod"],
            fixture["earlier"],
            fixture["schedule"],
        )
        self.before = self._now()

    def _now(self) -> dict:
        return {
            "prod": self.world.snapshot("prod", self.prod.uid),
            "scheduled": _scheduler_has(self.schedule),
            "retained": _retained(self.earlier.uid),
        }

    def assert_untouched(self) -> None:
        assert self.before["retained"] and all(v["state"] == "available" for v in self.before["retained"].values())
        assert self.before["scheduled"] is True
        assert self._now() == self.before


def _target(world: Fleet) -> object:
    record = world.create("target")
    assert record.uid != world.store.clusters.require("prod").uid
    return record


def _fire(world: Fleet, schedule_id: str):
    """What EventBridge Scheduler does when the schedule is due: StartExecution with the input the
    schedule was created with, under its own execution name."""
    import json

    target = boto3.client("scheduler", REGION).get_schedule(Name=schedule_id, GroupName=upgrades.SCHEDULE_GROUP)
    start = json.loads(target["Target"]["Input"])
    return world.run("UpdateCluster", json.loads(start["input"]), start["name"])


def test_delete_takes_only_its_own_and_cancels_its_schedules(world) -> None:
    fleet_ = world["world"]
    target = _target(fleet_)
    mine = _schedule(fleet_, "target")
    neighbours = Neighbours(world)
    run = fleet_.run("DeleteCluster", {"clusterName": "target"}, "delete-target-1")
    assert run.entered[-1] == "Deleted"
    assert inventory.count(inventory.cluster_resources(target.uid, lambda s: boto3.client(s, REGION))) == 0
    neighbours.assert_untouched()
    cancelled = fleet_.store.schedules.get(mine)
    assert cancelled.state == "CANCELLED" and "delete-target-1" in cancelled.outcome and target.uid in cancelled.outcome
    assert not _scheduler_has(mine), "the Scheduler schedule outlived its cluster"
    assert "SchedulesCancelled" in [e.reason for e in fleet_.store.events.list("target")]


def test_a_schedule_of_an_earlier_incarnation_never_acts_on_a_new_cluster_of_its_name(world) -> None:
    """`target`'s records lost (so no delete cancelled its schedule), a new `target`: the old
    schedule fires, records why it did nothing, and the new cluster is as it was."""
    fleet_ = world["world"]
    old = _target(fleet_)
    stale = _schedule(fleet_, "target")
    fleet_.store.clusters.delete_everything("target", old.uid)
    new = _target(fleet_)
    assert new.uid != old.uid
    before = fleet_.snapshot("target", new.uid)
    run = _fire(fleet_, stale)
    assert run.entered[-1] == "NothingToDo", run.entered
    fired = fleet_.store.schedules.get(stale)
    assert fired.state == "FIRED" and fired.outcome.startswith("skipped:") and old.uid in fired.outcome
    assert new.uid in fired.outcome and fired.operation_id is None
    after = fleet_.snapshot("target", new.uid)
    assert after["record"] == before["record"] and after["aws"] == before["aws"] and after["lock"] is None
    # The new cluster's own schedule does run: the rule refuses the other incarnation only.
    own = _schedule(fleet_, "target")
    started = _fire(fleet_, own)
    assert started.entered[-1] == "Updated", started.entered
    assert fleet_.store.schedules.get(own).outcome == "started"
    assert fleet_.store.clusters.require("target").version == _upgrade()
    fleet_.run("DeleteCluster", {"clusterName": "target"}, "delete-target-3")


def test_a_failed_create_rolls_back_only_what_it_made(world) -> None:
    fleet_ = world["world"]
    neighbours = Neighbours(world)

    def fail(payload: dict) -> None:
        record = fleet_.store.clusters.get(payload["clusterName"])
        report_all(fleet_.store, record.uid, status="failed:kubelet")

    with pytest.raises(ExecutionFailed) as failed:
        fleet_.run("CreateCluster", small_request("target"), "create-target-fails", hooks={"CheckReplicaHealth": fail})
    assert failed.value.error == "BootstrapFailed"
    record = fleet_.store.clusters.require("target")
    assert inventory.count(inventory.cluster_resources(record.uid, lambda s: boto3.client(s, REGION))) == 0
    neighbours.assert_untouched()
    fleet_.run("DeleteCluster", {"clusterName": "target"}, "delete-target-4")


def test_repair_remakes_only_its_own(world) -> None:
    fleet_ = world["world"]
    target = _target(fleet_)
    member = fleet_.store.etcd.require_member("target", 0)
    boto3.client("autoscaling", REGION).delete_auto_scaling_group(
        AutoScalingGroupName=member.asg_name, ForceDelete=True
    )
    neighbours = Neighbours(world)
    run = fleet_.run("RepairCluster", {"clusterName": "target"}, "repair-target")
    assert run.entered[-1] == "Repaired", run.entered
    assert fleet_.store.clusters.require("target").phase == "RUNNING"
    assert fleet_.store.clusters.require("target").uid == target.uid
    neighbours.assert_untouched()
    fleet_.run("DeleteCluster", {"clusterName": "target"}, "delete-target-5")


def test_node_pool_delete_takes_only_its_own_pool(world) -> None:
    """prod has a pool named `general` too."""
    fleet_ = world["world"]
    target = _target(fleet_)
    assert {p.name for p in fleet_.store.node_pools.list("prod")} == {"general"}
    neighbours = Neighbours(world)
    run = fleet_.run("DeleteNodePool", {"clusterName": "target", "nodePool": "general"}, "delete-target-pool")
    assert run.entered[-1] == "Deleted", run.entered
    assert fleet_.store.node_pools.list("target") == []
    groups = boto3.client("autoscaling", REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[naming.node_pool(target.uid, "general")]
    )["AutoScalingGroups"]
    assert groups == []
    neighbours.assert_untouched()
    fleet_.run("DeleteCluster", {"clusterName": "target"}, "delete-target-6")


def test_schedule_cancel_cancels_only_that_schedule(world) -> None:
    fleet_ = world["world"]
    _target(fleet_)
    mine = _schedule(fleet_, "target")
    neighbours = Neighbours(world)
    answer = fleet_.api("DELETE", f"/v1/schedules/{mine}")
    assert answer.status == 200 and answer.json["state"] == "CANCELLED", answer.text
    assert not _scheduler_has(mine)
    neighbours.assert_untouched()
    fleet_.run("DeleteCluster", {"clusterName": "target"}, "delete-target-7")


def _kubernetes_load_balancers(uid: str, name: str) -> dict[str, str]:
    """What the cloud controller manager makes for a Service of a cluster `uid`: an NLB, its
    target group and a classic ELB, tagged `kubernetes.io/cluster/<uid>=owned` and
    `kubernetes.io/service-name` (cloud-provider-aws, TagNameKubernetesService)."""
    tags = [
        {"Key": naming.k8s_cluster_tag(uid), "Value": "owned"},
        {"Key": "kubernetes.io/service-name", "Value": name},
    ]
    subnets = [s["SubnetId"] for s in boto3.client("ec2", REGION).describe_subnets()["Subnets"]][:2]
    elbv2, elb = boto3.client("elbv2", REGION), boto3.client("elb", REGION)
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="network", Scheme="internal", Tags=tags)
    vpc = lb["LoadBalancers"][0]["VpcId"]
    tg = elbv2.create_target_group(Name=f"{name}-tg", Protocol="TCP", Port=30080, VpcId=vpc, Tags=tags)
    elb.create_load_balancer(
        LoadBalancerName=f"{name}-classic",
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30081}],
        Subnets=subnets,
        Scheme="internal",
        Tags=tags,
    )
    return {
        "nlb": lb["LoadBalancers"][0]["LoadBalancerArn"],
        "targetGroup": tg["TargetGroups"][0]["TargetGroupArn"],
        "classic": f"{name}-classic",
    }


def _exists(planted: dict[str, str]) -> dict[str, bool]:
    elbv2, elb = boto3.client("elbv2", REGION), boto3.client("elb", REGION)
    balancers = {lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]}
    groups = {tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]}
    classic = {lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]}
    return {
        "nlb": planted["nlb"] in balancers,
        "targetGroup": planted["targetGroup"] in groups,
        "classic": planted["classic"] in classic,
    }


def test_delete_takes_the_load_balancers_kubernetes_made_for_it_and_no_others(world) -> None:
    """Found by their cluster tag (the Resource Groups Tagging API, not a Describe of every load
    balancer): the target's Service load balancers go; prod's and the earlier incarnation's stay."""
    fleet_ = world["world"]
    target = _target(fleet_)
    mine = _kubernetes_load_balancers(target.uid, "k8s-target-web")
    others = [_kubernetes_load_balancers(world[key].uid, f"k8s-{key}-web") for key in ("prod", "earlier")]
    neighbours = Neighbours(world)
    run = fleet_.run("DeleteCluster", {"clusterName": "target"}, "delete-target-8")
    assert run.entered[-1] == "Deleted", run.entered
    assert _exists(mine) == {"nlb": False, "targetGroup": False, "classic": False}
    for planted in others:
        assert _exists(planted) == {"nlb": True, "targetGroup": True, "classic": True}
    neighbours.assert_untouched()
    for planted in others:  # the module's other tests compare prod with itself only, but tidy up
        boto3.client("elbv2", REGION).delete_load_balancer(LoadBalancerArn=planted["nlb"])
        boto3.client("elbv2", REGION).delete_target_group(TargetGroupArn=planted["targetGroup"])
        boto3.client("elb", REGION).delete_load_balancer(LoadBalancerName=planted["classic"])
