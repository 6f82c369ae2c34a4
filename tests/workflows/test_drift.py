"""Drift and repair (issue 11, acceptance 4): a replica's Auto Scaling group, its etcd volume and
the NLB deleted by hand. RepairCluster with `detectOnly` records the drift and changes nothing;
RepairCluster recreates them (the replica rejoins behind the health gate) and reports what it
changed; the same hand deletions again, then DeleteCluster still completes with nothing left.

Orphans: a cluster's record deleted by hand leaves its resources to SweepOrphans, which lists
them in a dry run and deletes them (older than the grace period) otherwise."""

from __future__ import annotations

import time

import pytest

from kubestep import inventory
from kubestep.store import Resource

from .fault_matrix import counts, small_cluster


def _run(runtime, workflow: str, payload: dict, name: str) -> dict:
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=600)


def _delete_by_hand(runtime, store, cluster: str) -> dict[str, str]:
    """What a person might do in the console: the replica's group (force: its instance goes),
    then its etcd volume once free, and the NLB."""
    record = store.clusters.get(cluster)
    member = store.etcd.require_member(cluster, 0)
    ec2, autoscaling, elbv2 = (runtime.boto3_client(s) for s in ("ec2", "autoscaling", "elbv2"))
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=member.asg_name, ForceDelete=True)
    deadline = time.monotonic() + 60
    while True:
        (volume,) = ec2.describe_volumes(VolumeIds=[member.volume_id])["Volumes"]
        if volume["State"] == "available":
            break
        assert time.monotonic() < deadline, f"etcd volume still {volume['State']}"
        time.sleep(0.2)
    ec2.delete_volume(VolumeId=member.volume_id)
    nlb = record.resources[Resource.NLB].id
    elbv2.delete_load_balancer(LoadBalancerArn=nlb)
    return {"asg": member.asg_name, "volume": member.volume_id, "nlb": nlb}


@pytest.fixture(scope="module")
def drift(runtime, store) -> dict:
    cluster = "drifted"
    created = _run(runtime, "CreateCluster", small_cluster(cluster), f"{cluster}-create")
    assert created["status"] == "SUCCEEDED", created.get("cause")
    uid = store.clusters.get(cluster).uid
    before = counts(runtime, uid)
    gone = _delete_by_hand(runtime, store, cluster)
    detected = _run(runtime, "RepairCluster", {"clusterName": cluster, "detectOnly": True}, f"{cluster}-detect")
    after_detect = {"record": store.clusters.get(cluster), "counts": counts(runtime, uid)}
    repaired = _run(runtime, "RepairCluster", {"clusterName": cluster}, f"{cluster}-repair")
    record = store.clusters.get(cluster)
    after_repair = {
        "record": record,
        "counts": counts(runtime, uid),
        "member": store.etcd.require_member(cluster, 0),
        "operation": store.operations.get(f"{cluster}-repair"),
        "events": [e.reason for e in store.events.list(cluster)],
    }
    # Drift again, then the delete: it must not trip over what is missing.
    _delete_by_hand(runtime, store, cluster)
    deleted = _run(runtime, "DeleteCluster", {"clusterName": cluster}, f"{cluster}-delete")
    left = inventory.count(inventory.cluster_resources(uid, runtime.boto3_client))
    return {
        "before": before,
        "gone": gone,
        "detected": detected,
        "after_detect": after_detect,
        "repaired": repaired,
        "after_repair": after_repair,
        "deleted": deleted,
        "left": left,
        "record_after_delete": store.clusters.get(cluster),
    }


def test_detect_only_records_the_drift_and_changes_nothing(drift) -> None:
    assert drift["detected"]["status"] == "SUCCEEDED", drift["detected"].get("cause")
    record = drift["after_detect"]["record"]
    assert record.phase == "RUNNING" and record.current_operation is None
    assert record.drift == {
        "nlb": "missing",
        "replica-0/asg": "missing",
        "replica-0/etcd-volume": f"missing ({drift['gone']['volume']})",
    }
    expected = dict(drift["before"], autoScalingGroups=drift["before"]["autoScalingGroups"] - 1)
    expected.update(volumes=drift["before"]["volumes"] - 1, loadBalancers=0)
    assert drift["after_detect"]["counts"] == expected, "a detect-only run made nothing"


def test_repair_recreates_what_was_deleted_and_says_so(drift) -> None:
    assert drift["repaired"]["status"] == "SUCCEEDED", drift["repaired"].get("cause")
    after = drift["after_repair"]
    assert after["record"].phase == "RUNNING"
    assert after["counts"] == drift["before"], "exactly one of everything again"
    member = after["member"]
    assert member.volume_id != drift["gone"]["volume"] and member.bootstrap == "ok"
    result = after["operation"].progress
    assert result["remaining"] == {} and len(result["repaired"]) >= 3, result
    assert after["record"].drift == {}
    assert {"DriftDetected", "Repaired"} <= set(after["events"])


def test_delete_after_hand_deletions_leaves_nothing(drift) -> None:
    assert drift["deleted"]["status"] == "SUCCEEDED", drift["deleted"].get("cause")
    assert drift["left"] == 0 and drift["record_after_delete"] is None


def test_the_sweeper_lists_then_deletes_a_lost_records_resources(runtime, store) -> None:
    cluster = "forgotten"
    created = _run(runtime, "CreateCluster", small_cluster(cluster), f"{cluster}-create")
    assert created["status"] == "SUCCEEDED", created.get("cause")
    uid = store.clusters.get(cluster).uid
    made = inventory.count(inventory.cluster_resources(uid, runtime.boto3_client))
    store.clusters.delete_everything(cluster, uid)  # the records lost by hand: what AWS holds is orphaned
    dry = _run(runtime, "SweepOrphans", {"dryRun": True, "gracePeriodSeconds": 0}, "sweep-dry")
    listed = store.operations.get("sweep-dry").progress
    still = inventory.count(inventory.cluster_resources(uid, runtime.boto3_client))
    swept = _run(runtime, "SweepOrphans", {"dryRun": False, "gracePeriodSeconds": 0}, "sweep-yes")
    result = store.operations.get("sweep-yes").progress
    left = inventory.count(inventory.cluster_resources(uid, runtime.boto3_client))
    assert dry["status"] == "SUCCEEDED", dry.get("cause")
    assert [o["uid"] for o in listed["orphans"]] == [uid] and listed["orphans"][0]["old"]
    assert still == made > 0, "a dry run deletes nothing"
    assert swept["status"] == "SUCCEEDED", swept.get("cause")
    assert uid in result["deleted"] and left == 0
