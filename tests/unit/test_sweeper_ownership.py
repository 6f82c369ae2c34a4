"""The orphan sweeper proves ownership of what it deletes: etcd volumes a delete kept
(`gke:retained-by`) are retained whoever sweeps, what AWS gives no creation time (security
groups) is aged from when a sweep first saw it, and the report names every resource it deleted
and every one it left, with why. Run through the rendered SweepOrphans ASL in process."""

from __future__ import annotations

import boto3
import pytest

from kubestep import inventory, naming

from .fleet import REGION, Fleet, fleet

DAY = 24 * 3600


def _volumes(uid: str) -> dict[str, str]:
    found = boto3.client("ec2", REGION).describe_volumes(Filters=[{"Name": "tag:gke:cluster-uid", "Values": [uid]}])
    return {v["VolumeId"]: v["State"] for v in found["Volumes"]}


def _plant_group(world: Fleet, name: str, uid: str) -> str:
    """A leftover a person (or a crashed tool) made: the service's, the uid's and the cluster's
    tags, but not all of a cluster's identity (no kubernetes.io/cluster/<uid>=owned)."""
    ec2 = boto3.client("ec2", REGION)
    vpc = world.store.network.get().vpc_id
    group = ec2.create_security_group(GroupName=f"leftover-{uid}", Description="planted", VpcId=vpc)["GroupId"]
    ec2.create_tags(
        Resources=[group],
        Tags=naming.ec2_tags(
            {naming.TAG_SERVICE: world.settings.service_name, naming.TAG_CLUSTER_UID: uid, naming.TAG_CLUSTER: name}
        ),
    )
    return group


def _sweep(world: Fleet, name: str, *, dry_run: bool, grace: int) -> dict:
    world.run("SweepOrphans", {"dryRun": dry_run, "gracePeriodSeconds": grace}, name)
    return world.store.operations.get(name).progress


@pytest.fixture(scope="module")
def swept():
    with pytest.MonkeyPatch.context() as monkeypatch, fleet(monkeypatch) as world:
        prod = world.create("prod")
        kept = world.create("kept")
        deleted = world.run("DeleteCluster", {"clusterName": "kept", "keepEtcdVolumes": True}, "delete-kept")
        assert deleted.entered[-1] == "Deleted"
        planted = _plant_group(world, "kept", kept.uid)
        lost = world.create("lost")
        lost_resources = inventory.cluster_resources(lost.uid, lambda s: boto3.client(s, REGION))
        world.store.clusters.delete_everything("lost", lost.uid)  # its records lost by hand
        prod_before = world.snapshot("prod", prod.uid)
        retained = _volumes(kept.uid)
        young = _sweep(world, "sweep-young", dry_run=False, grace=30 * DAY)
        after_young = {"kept": _volumes(kept.uid), "lost": inventory.count(lost_resources)}
        listed = _sweep(world, "sweep-dry", dry_run=True, grace=0)
        result = _sweep(world, "sweep-yes", dry_run=False, grace=0)
        yield {
            "world": world,
            "prod": prod,
            "kept": kept,
            "lost": lost,
            "planted": planted,
            "retained": retained,
            "lost_resources": lost_resources,
            "prod_before": prod_before,
            "young": young,
            "after_young": after_young,
            "listed": listed,
            "result": result,
        }


def test_a_grace_period_protects_what_cannot_be_dated(swept) -> None:
    """`--grace-period 30d`: nothing is old, the planted security group (no creation time in AWS)
    included, and nothing is deleted."""
    by_uid = {o["uid"]: o for o in swept["young"]["orphans"]}
    planted = by_uid[swept["kept"].uid]
    assert planted["resources"] == {"securityGroups": [swept["planted"]]}
    assert planted["ageSeconds"] is not None and planted["ageSeconds"] < DAY and planted["old"] is False
    assert not any(o["old"] for o in swept["young"]["orphans"])
    assert swept["young"]["deleted"] == [] and swept["young"]["deletedResources"] == {}
    assert swept["after_young"]["kept"] == swept["retained"]
    # The first sighting is recorded: a later sweep ages the group from it, not from its own time.
    seen = swept["world"].store.sightings.first_seen(swept["kept"].uid, [swept["planted"]], _far_future())
    assert seen[swept["planted"]] < _far_future()


def test_retained_volumes_are_listed_as_retained_and_never_deleted(swept) -> None:
    kept = swept["kept"].uid
    assert len(swept["retained"]) == 1 and set(swept["retained"].values()) == {"available"}
    assert _volumes(kept) == swept["retained"], "a sweep with no grace period deleted a retained volume"
    by_uid = {o["uid"]: o for o in swept["listed"]["orphans"]}
    assert by_uid[kept]["retained"] == {"volumes": sorted(swept["retained"])}
    assert "volumes" not in by_uid[kept]["resources"]
    assert swept["result"]["retained"] == {kept: {"volumes": sorted(swept["retained"])}}


def test_the_report_names_exactly_what_was_deleted_and_what_was_left(swept) -> None:
    result, lost, kept = swept["result"], swept["lost"].uid, swept["kept"].uid
    made = {kind: sorted(r.get("id") or r.get("name") for r in rs) for kind, rs in swept["lost_resources"].items()}
    deleted = result["deletedResources"][lost]
    assert deleted["autoScalingGroups"] and deleted["volumes"] and deleted["securityGroups"]
    assert sorted(deleted["volumes"]) == made["volumes"] and sorted(deleted["securityGroups"]) == made["securityGroups"]
    assert inventory.count(inventory.cluster_resources(lost, lambda s: boto3.client(s, REGION))) == 0
    assert lost in result["deleted"] and lost not in result["remaining"]
    # The planted group: left, with why; nothing of its uid reported deleted that was not.
    assert result["deletedResources"][kept] == {}
    assert result["left"][kept]["resources"] == {"securityGroups": [swept["planted"]]}
    assert "identity tags" in result["left"][kept]["reason"]
    assert naming.k8s_cluster_tag(kept) in result["left"][kept]["missingTags"][swept["planted"]]
    assert kept in result["remaining"] and kept not in result["deleted"]
    warnings = [e for e in swept["world"].store.events.list("kept") if e.reason == "OrphansSwept"]
    assert warnings and warnings[-1].type == "Warning" and swept["planted"] in str(result["left"])


def test_the_sweep_left_every_live_cluster_as_it_was(swept) -> None:
    assert swept["world"].snapshot("prod", swept["prod"].uid) == swept["prod_before"]


def _far_future():
    from datetime import UTC, datetime

    return datetime(2100, 1, 1, tzinfo=UTC)
