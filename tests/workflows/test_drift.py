"""Drift and repair (issue 11, acceptance 4): a replica's Auto Scaling group, its etcd volume and
the NLB deleted by hand. RepairCluster with `detectOnly` records the drift and changes nothing;
RepairCluster recreates them (the replica rejoins behind the health gate) and reports what it
changed; the same hand deletions again, then DeleteCluster still completes with nothing left.

Orphans: a cluster's record deleted by hand leaves its resources to SweepOrphans, which lists
them in a dry run and deletes them (older than the grace period) otherwise."""

from __future__ import annotations

import secrets
import time

import pytest

from kubestep import inventory, naming
from kubestep.resources import kinds
from kubestep.store import Resource, Schedule

from .fault_matrix import counts, small_cluster

# Part of this module's wall time is modelled waiting (boots, the repair's health gate); its steps'
# deadlines count modelled waits, not the clock (kubestep.flow.context): at 0.01 it takes about 20%
# less.
RUNTIME_TIME_SCALE = 0.01


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


# ---------------------------------------------------------------- every kind (kubestep.resources.kinds)


def _not_granted(runtime, records: list) -> list[str]:
    """The ClusterTasks function's calls among `records` that its synthesized policy does not
    grant (the listings and look-ups every kind added: queues, rules, profiles, schedules).
    `records` start before the resources were created: the checker reads their tags from there."""
    from . import runtime_checks

    tasks = [r for r in records if r.function_name.endswith("cluster-tasks")]
    assert tasks, "the operations ran in the ClusterTasks function"
    result = runtime_checks.granted(runtime, tasks)
    return [str(finding) for finding in result.findings]


def _stale_dns_record(runtime, store, uid: str, address: str) -> str:
    """A replica's name in the service's zone, as a replica UPSERTs it at boot (here by hand)."""
    network = store.network.get()
    name = f"cp-0.{uid}.{network.dns_domain.rstrip('.')}."
    record = {"Name": name, "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": address}]}
    runtime.boto3_client("route53").change_resource_record_sets(
        HostedZoneId=network.hosted_zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]},
    )
    return name.rstrip(".")


def _pending_schedule(runtime, store, cluster: str, uid: str, schedule_id: str) -> None:
    """A one-off upgrade as `kubestep upgrade --at` makes it: its record and its Scheduler schedule
    (kubestep.upgrades.create_schedule)."""
    store.schedules.create(
        Schedule(
            schedule_id=schedule_id,
            cluster=cluster,
            uid=uid,
            kind="UpdateCluster",
            at="2099-01-01T03:00:00Z",
            parameters={"clusterName": cluster, "scheduleId": schedule_id},
        )
    )
    runtime.boto3_client("scheduler").create_schedule(
        Name=schedule_id,
        GroupName="default",
        ScheduleExpression="at(2099-01-01T03:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:sfn:startExecution", "RoleArn": "arn:aws:iam::123456789012:role/x"},
    )


def _delete_one_of_each(runtime, store, cluster: str) -> dict[str, str]:
    """By hand, one of each kind the first drift test leaves alone: a node pool's group and launch
    template, the listener, the target group, an instance profile, a role, a secret, the
    termination queue and its rule, a security group's rules; a DNS record changed; a pending
    schedule's Scheduler schedule."""
    record = store.clusters.get(cluster)
    uid = record.uid
    (pool,) = store.node_pools.list(cluster)
    ec2, asg, elbv2, iam, secretsmanager, sqs, events = (
        runtime.boto3_client(s) for s in ("ec2", "autoscaling", "elbv2", "iam", "secretsmanager", "sqs", "events")
    )
    asg.delete_auto_scaling_group(AutoScalingGroupName=pool.asg_name, ForceDelete=True)
    ec2.delete_launch_template(LaunchTemplateId=pool.launch_template_id)
    lb = record.resources[Resource.NLB].id
    for listener in elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]:
        elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    elbv2.delete_target_group(TargetGroupArn=record.resources[Resource.TARGET_GROUP].id)
    node = naming.instance_role(uid, naming.ROLE_NODE)
    iam.remove_role_from_instance_profile(InstanceProfileName=node, RoleName=node)
    iam.delete_instance_profile(InstanceProfileName=node)
    control_plane = naming.instance_role(uid, naming.ROLE_CONTROL_PLANE)
    iam.remove_role_from_instance_profile(InstanceProfileName=control_plane, RoleName=control_plane)
    for policy in iam.list_role_policies(RoleName=control_plane)["PolicyNames"]:
        iam.delete_role_policy(RoleName=control_plane, PolicyName=policy)
    iam.delete_role(RoleName=control_plane)
    secretsmanager.delete_secret(SecretId=naming.node_secret(uid), RecoveryWindowInDays=7)
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=naming.termination_queue(uid))["QueueUrl"])
    rule = naming.termination_rule(uid)
    events.remove_targets(Rule=rule, Ids=[t["Id"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]])
    events.delete_rule(Name=rule)
    nodes = record.resources[Resource.SG_NODES].id
    (group,) = ec2.describe_security_groups(GroupIds=[nodes])["SecurityGroups"]
    ec2.revoke_security_group_ingress(GroupId=nodes, IpPermissions=group["IpPermissions"])
    dns = _stale_dns_record(runtime, store, uid, "10.254.254.254")
    schedule = f"{runtime.service_name}-upgrade-{secrets.token_hex(4)}"  # named as kubestep.upgrades names them
    _pending_schedule(runtime, store, cluster, uid, schedule)
    runtime.boto3_client("scheduler").delete_schedule(Name=schedule, GroupName="default")
    return {"pool": pool.name, "dns": dns, "schedule": schedule}


def test_drift_sees_every_kind_deleted_or_changed_by_hand(runtime, store) -> None:
    cluster = "everykind"
    # From the create on: the checker learns each resource's tags and path from its creation.
    first_call = len(runtime.recorder.call_records())
    created = _run(runtime, "CreateCluster", small_cluster(cluster), f"{cluster}-create")
    assert created["status"] == "SUCCEEDED", created.get("cause")
    try:
        gone = _delete_one_of_each(runtime, store, cluster)
        detected = _run(runtime, "RepairCluster", {"clusterName": cluster, "detectOnly": True}, f"{cluster}-detect")
        assert detected["status"] == "SUCCEEDED", detected.get("cause")
        drift = store.clusters.get(cluster).drift
        pool = f"nodepool-{gone['pool']}"
        assert drift[f"{pool}/asg"] == "missing" and drift[f"{pool}/launch-template"].startswith("missing")
        for logical in (
            Resource.LISTENER,
            Resource.TARGET_GROUP,
            Resource.NODE_PROFILE,
            Resource.CONTROL_PLANE_ROLE,
            Resource.TERMINATION_QUEUE,
            Resource.TERMINATION_RULE,
        ):
            assert drift.get(logical.value) == "missing", (logical, drift)
        assert drift[Resource.NODE_SECRET.value].startswith("scheduled for deletion")
        assert drift[Resource.SG_NODES.value].startswith("rules missing")
        assert drift[f"dns/{gone['dns']}"] == "points at 10.254.254.254, which no live replica has"
        assert drift[f"schedule/{gone['schedule']}"].startswith("missing from EventBridge Scheduler")
        denied = _not_granted(runtime, runtime.recorder.call_records()[first_call:])
        assert not denied, "\n".join(denied)
    finally:
        deleted = _run(runtime, "DeleteCluster", {"clusterName": cluster}, f"{cluster}-delete")
    assert deleted["status"] == "SUCCEEDED", deleted.get("cause")
    assert store.schedules.get(gone["schedule"]).state == "CANCELLED", "a schedule goes with its cluster"


def test_the_sweeper_frees_every_kind_and_nothing_of_another_incarnation(runtime, store) -> None:
    """A lost record's resources of every kind, with a DNS record and a pending schedule planted
    for it, are listed and freed; a live cluster's resources and a deleted cluster's retained
    etcd volume stay."""
    live, kept, lost = "bystander", "keptvols", "strayed"
    bucket = runtime.outputs["BackupBucketName"]  # the bootstrap bundles' bucket
    first_call = len(runtime.recorder.call_records())
    for name in (live, kept, lost):
        created = _run(runtime, "CreateCluster", small_cluster(name), f"{name}-create")
        assert created["status"] == "SUCCEEDED", created.get("cause")
    kept_uid, lost_uid, live_uid = (store.clusters.get(n).uid for n in (kept, lost, live))
    deleted = _run(runtime, "DeleteCluster", {"clusterName": kept, "keepEtcdVolumes": True}, f"{kept}-delete")
    assert deleted["status"] == "SUCCEEDED", deleted.get("cause")
    ec2 = runtime.boto3_client("ec2")
    kept_filter = [{"Name": f"tag:{naming.TAG_CLUSTER_UID}", "Values": [kept_uid]}]
    retained = [v["VolumeId"] for v in ec2.describe_volumes(Filters=kept_filter)["Volumes"]]
    _stale_dns_record(runtime, store, lost_uid, "10.254.254.253")
    schedule = f"{runtime.service_name}-upgrade-{secrets.token_hex(4)}"
    _pending_schedule(runtime, store, lost, lost_uid, schedule)
    live_before = inventory.cluster_resources(live_uid, runtime.boto3_client, store, bucket)
    try:
        store.clusters.delete_everything(lost, lost_uid)  # its records lost by hand
        found = inventory.cluster_resources(lost_uid, runtime.boto3_client, store, bucket)
        made = {k: v for k, v in found.items() if v}
        dry = _run(runtime, "SweepOrphans", {"dryRun": True, "gracePeriodSeconds": 0}, "sweep-kinds-dry")
        assert dry["status"] == "SUCCEEDED", dry.get("cause")
        listed = {o["uid"]: o for o in store.operations.get("sweep-kinds-dry").progress["orphans"]}
        swept = _run(runtime, "SweepOrphans", {"dryRun": False, "gracePeriodSeconds": 0}, "sweep-kinds")
        assert swept["status"] == "SUCCEEDED", swept.get("cause")
        result = store.operations.get("sweep-kinds").progress
        left = inventory.cluster_resources(lost_uid, runtime.boto3_client, store, bucket)
        live_after = inventory.cluster_resources(live_uid, runtime.boto3_client, store, bucket)
        kept_after = [v["VolumeId"] for v in ec2.describe_volumes(VolumeIds=retained)["Volumes"]]
        sweep_calls = runtime.recorder.call_records()[first_call:]
    finally:
        for volume in retained:  # retained volumes are a person's to delete: here, the test's
            ec2.delete_volume(VolumeId=volume)
        _run(runtime, "DeleteCluster", {"clusterName": live}, f"{live}-delete")
    every_kind = {k.name for k in kinds.KINDS if k.find is not None}
    assert set(made) == every_kind, "the lost cluster had one or more of every kind"
    assert set(listed[lost_uid]["resources"]) == every_kind
    assert listed[kept_uid]["retained"] == {"volumes": sorted(retained)} and not listed[kept_uid]["old"]
    assert live_uid not in listed
    assert lost_uid in result["deleted"] and inventory.count(left) == 0, left
    assert store.schedules.get(schedule).state == "CANCELLED"
    assert live_after == live_before, "the live cluster's resources are as they were"
    assert sorted(kept_after) == sorted(retained), "retained volumes stay"
    denied = _not_granted(runtime, sweep_calls)
    assert not denied, "\n".join(denied)
