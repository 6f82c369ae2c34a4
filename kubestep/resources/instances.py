"""Launch templates and Auto Scaling groups, shared by control-plane replicas and node pools.

Every launch template requires IMDSv2 and encrypts every volume; ASG names are unique per
account and region, so CreateAutoScalingGroup's AlreadyExists means an earlier run made it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from kubestep import naming
from kubestep.aws.errors import (
    AUTO_SCALING_GROUP_EXISTS,
    Kind,
    is_already_exists,
    is_error,
    is_group_gone,
    is_in_use,
    is_instance_not_managed,
    is_not_found,
)
from kubestep.errors import NotFound
from kubestep.flow.steps import Poll, step
from kubestep.models import Volume
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING, DeleteStep, Found, ResourceKind, Scope
from kubestep.store import EtcdMember, NodePoolRecord, Resource

# A force-deleted ASG is gone in about 45 s (a minute or two with many instances): the first
# look after 35 s, then every few seconds; terminating instances takes up to a few minutes each.
GROUPS_DELETED = Poll(deadline=timedelta(minutes=15), interval=3, backoff=1.2, max_delay=20, first=35)
INSTANCES_GONE = Poll(deadline=timedelta(minutes=15), interval=10)

ROOT_DEVICE = "/dev/sda1"


def ebs(volume: Volume, default_kms_key: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "VolumeSize": volume.size_gib,
        "VolumeType": volume.volume_type,
        "Encrypted": True,
        "DeleteOnTermination": True,
    }
    if volume.iops:
        spec["Iops"] = volume.iops
    if volume.throughput:
        spec["Throughput"] = volume.throughput
    key = volume.kms_key_arn or default_kms_key
    if key:
        spec["KmsKeyId"] = key
    return spec


def launch_template_data(
    ctx: ClusterContext,
    *,
    instance_type: str,
    image_id: str,
    instance_profile_arn: str,
    security_groups: list[str],
    root_volume: Volume,
    key_name: str | None,
    user_data: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ImageId": image_id,
        "InstanceType": instance_type,
        # The cluster's own profile (an ARN), or one the manifest names (a name or an ARN).
        "IamInstanceProfile": {"Arn" if instance_profile_arn.startswith("arn:") else "Name": instance_profile_arn},
        "SecurityGroupIds": security_groups,
        "UserData": user_data,
        "MetadataOptions": {
            "HttpTokens": "required",
            # 1 hop: everything that uses the instance role (kubelet, the cloud controller
            # manager, the authenticator, the termination handler) runs on the host network;
            # a pod on the pod network cannot reach the instance's credentials.
            "HttpPutResponseHopLimit": 1,
            "HttpEndpoint": "enabled",
        },
        "BlockDeviceMappings": [
            {"DeviceName": ROOT_DEVICE, "Ebs": ebs(root_volume, ctx.settings.service.spec.kms_key_arn)}
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": naming.ec2_tags(tags)},
            {"ResourceType": "volume", "Tags": naming.ec2_tags(tags)},
        ],
    }
    if key_name:
        data["KeyName"] = key_name
    return data


def spec_hash(data: dict[str, Any]) -> str:
    """A short digest of what an instance is launched with (its launch template data, tags
    aside): instances carry it as the `gke:spec` tag, so a roll tells new from old on AWS and in
    the emulator alike (which version of `$Latest` launched an instance is not described)."""
    launch = {k: v for k, v in data.items() if k != "TagSpecifications"}
    return hashlib.sha256(json.dumps(launch, sort_keys=True).encode()).hexdigest()[:12]


def _with_spec_tag(data: dict[str, Any], digest: str) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    for spec in data.get("TagSpecifications", []):
        spec["Tags"] = [t for t in spec["Tags"] if t["Key"] != naming.TAG_SPEC] + [
            {"Key": naming.TAG_SPEC, "Value": digest}
        ]
    return data


@dataclass(frozen=True)
class TemplateVersion:
    template_id: str
    version: int
    spec: str  # the spec hash of that version


def ensure_launch_template(
    ctx: ClusterContext, name: str, data: dict[str, Any], tags: dict[str, str]
) -> TemplateVersion:
    """The template under `name`, whose latest version launches `data`: a changed spec becomes
    a new version (its description carries the spec hash), the same spec is found again."""
    digest = spec_hash(data)
    data = _with_spec_tag(data, digest)
    description = f"kubestep spec {digest}"
    try:
        template = ctx.ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"][0]
    except Exception as exc:
        if not is_not_found(exc, Kind.LAUNCH_TEMPLATE):
            raise
        template = None
    if template is None:
        try:
            template = ctx.ec2.create_launch_template(
                LaunchTemplateName=name,
                VersionDescription=description,
                LaunchTemplateData=data,
                ClientToken=naming.client_token(ctx.operation_id, name),
                TagSpecifications=naming.tag_specifications("launch-template", tags),
            )["LaunchTemplate"]
        except Exception as exc:
            if not is_already_exists(exc, Kind.LAUNCH_TEMPLATE):
                raise
            ctx.pending(f"launch template {name} exists but is not visible yet")
        return TemplateVersion(template["LaunchTemplateId"], int(template.get("LatestVersionNumber", 1)), digest)
    latest = ctx.ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]
    if latest.get("VersionDescription") == description:
        return TemplateVersion(template["LaunchTemplateId"], int(latest["VersionNumber"]), digest)
    created = ctx.ec2.create_launch_template_version(
        LaunchTemplateId=template["LaunchTemplateId"],
        VersionDescription=description,
        LaunchTemplateData=data,
        # Same operation and spec, same request: a retried call is not a second version.
        ClientToken=naming.client_token(ctx.operation_id, f"{name}-{digest}"),
    )["LaunchTemplateVersion"]
    return TemplateVersion(template["LaunchTemplateId"], int(created["VersionNumber"]), digest)


def set_group_spec(ctx: ClusterContext, group_name: str, digest: str) -> None:
    """Instances the group launches from now on carry `gke:spec=<digest>` (tag propagation)."""
    ctx.autoscaling.create_or_update_tags(
        Tags=[
            {
                "ResourceId": group_name,
                "ResourceType": "auto-scaling-group",
                "Key": naming.TAG_SPEC,
                "Value": digest,
                "PropagateAtLaunch": True,
            }
        ]
    )


class LifecycleState(StrEnum):
    """An instance's state in its Auto Scaling group (Amazon EC2 Auto Scaling API Reference,
    `Instance.LifecycleState`)."""

    PENDING = "Pending"
    PENDING_WAIT = "Pending:Wait"
    PENDING_PROCEED = "Pending:Proceed"
    QUARANTINED = "Quarantined"
    IN_SERVICE = "InService"
    TERMINATING = "Terminating"
    TERMINATING_WAIT = "Terminating:Wait"
    TERMINATING_PROCEED = "Terminating:Proceed"
    TERMINATED = "Terminated"
    DETACHING = "Detaching"
    DETACHED = "Detached"
    ENTERING_STANDBY = "EnteringStandby"
    STANDBY = "Standby"
    WARMED_PENDING = "Warmed:Pending"
    WARMED_PENDING_WAIT = "Warmed:Pending:Wait"
    WARMED_PENDING_PROCEED = "Warmed:Pending:Proceed"
    WARMED_TERMINATING = "Warmed:Terminating"
    WARMED_TERMINATING_WAIT = "Warmed:Terminating:Wait"
    WARMED_TERMINATING_PROCEED = "Warmed:Terminating:Proceed"
    WARMED_TERMINATED = "Warmed:Terminated"
    WARMED_STOPPED = "Warmed:Stopped"
    WARMED_RUNNING = "Warmed:Running"
    WARMED_HIBERNATED = "Warmed:Hibernated"


# The instance is going away: terminated or leaving the group (its lifecycle hooks may still
# run, e.g. a node draining in Terminating:Wait). Nothing waits for it, counts it or replaces it.
GOING_AWAY = frozenset(
    {
        LifecycleState.TERMINATING,
        LifecycleState.TERMINATING_WAIT,
        LifecycleState.TERMINATING_PROCEED,
        LifecycleState.TERMINATED,
        LifecycleState.DETACHING,
        LifecycleState.DETACHED,
        LifecycleState.WARMED_TERMINATING,
        LifecycleState.WARMED_TERMINATING_WAIT,
        LifecycleState.WARMED_TERMINATING_PROCEED,
        LifecycleState.WARMED_TERMINATED,
    }
)


def going_away(state: str) -> bool:
    return state in GOING_AWAY


def terminate_in_group(ctx: ClusterContext, instance_id: str, decrement: bool) -> None:
    """Terminate a group's instance through Auto Scaling (its lifecycle hooks run). A resent call
    (the first one's response was lost) meets an instance the group no longer holds: done."""
    try:
        ctx.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement
        )
    except Exception as exc:
        if not is_instance_not_managed(exc):
            raise


def group_instances(ctx: ClusterContext, group_name: str) -> list[dict]:
    """The group's instances: id, lifecycle state, instance type and the spec each was launched
    with."""
    return groups_instances(ctx, [group_name]).get(group_name, [])


def groups_instances(ctx: ClusterContext, group_names: list[str]) -> dict[str, list[dict]]:
    """`group_instances` of each group that exists, by name, in one DescribeAutoScalingGroups
    and one DescribeInstances for all of them."""
    groups = described_groups(ctx, group_names)
    members = {i["InstanceId"]: i for group in groups.values() for i in group["Instances"]}
    found: dict[str, dict] = {}
    if members:
        pages = ctx.ec2.get_paginator("describe_instances").paginate(InstanceIds=list(members))
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    found[instance["InstanceId"]] = instance
    return {
        name: [
            {
                "id": m["InstanceId"],
                "state": m["LifecycleState"],
                "spec": naming.tags_dict(found.get(m["InstanceId"], {}).get("Tags")).get(naming.TAG_SPEC),
                "type": found.get(m["InstanceId"], {}).get("InstanceType") or m.get("InstanceType"),
            }
            for m in sorted(group["Instances"], key=lambda m: m["InstanceId"])
        ]
        for name, group in groups.items()
    }


def ensure_group(
    ctx: ClusterContext,
    name: str,
    *,
    launch_template_id: str,
    subnets: list[str],
    min_size: int,
    max_size: int,
    desired: int,
    target_groups: list[str],
    tags: dict[str, str],
) -> dict:
    existing = group_named(ctx, name)
    if existing is not None:
        return reconcile_group(ctx, existing, launch_template_id, min_size, max_size, target_groups)
    asg_tags = [
        {"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}
        for k, v in tags.items()
    ]
    kwargs: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "LaunchTemplate": {"LaunchTemplateId": launch_template_id, "Version": "$Latest"},
        "MinSize": min_size,
        "MaxSize": max_size,
        "DesiredCapacity": desired,
        "VPCZoneIdentifier": ",".join(subnets),
        # EC2 health only: an ELB health check would kill a replica whose etcd join is slow.
        "HealthCheckType": "EC2",
        "HealthCheckGracePeriod": 600,
        "Tags": asg_tags,
    }
    if target_groups:
        kwargs["TargetGroupARNs"] = target_groups
    try:
        ctx.autoscaling.create_auto_scaling_group(**kwargs)
    except Exception as exc:
        if not is_error(exc, AUTO_SCALING_GROUP_EXISTS):
            raise
    created = group_named(ctx, name)
    if created is None:
        ctx.pending(f"Auto Scaling group {name} is not visible yet")
    return created


def reconcile_group(
    ctx: ClusterContext, group: dict, launch_template_id: str, min_size: int, max_size: int, target_groups: list[str]
) -> dict:
    """An existing group back to what kubestep made it (a repair after hand changes): its launch
    template (recreated under a new id), its size limits, its target groups (recreated under a
    new ARN). The desired capacity is the autoscaler's, kept within the limits."""
    name = group["AutoScalingGroupName"]
    if group.get("Status") == "Delete in progress":
        ctx.pending(f"Auto Scaling group {name} is being deleted")
    changes: dict[str, Any] = {}
    if (group.get("LaunchTemplate") or {}).get("LaunchTemplateId") != launch_template_id:
        changes["LaunchTemplate"] = {"LaunchTemplateId": launch_template_id, "Version": "$Latest"}
    if (group["MinSize"], group["MaxSize"]) != (min_size, max_size):
        changes.update(MinSize=min_size, MaxSize=max_size)
        changes["DesiredCapacity"] = min(max(group["DesiredCapacity"], min_size), max_size)
    if changes:
        ctx.autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, **changes)
    attached = set(group.get("TargetGroupARNs") or [])
    missing = [arn for arn in target_groups if arn not in attached]
    if missing:
        ctx.autoscaling.attach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=missing)
    stale = sorted(attached - set(target_groups))
    if stale and target_groups:  # a replaced target group: the old one is gone or not ours any more
        try:
            ctx.autoscaling.detach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=stale)
        except Exception as exc:
            if not is_not_found(exc, Kind.TARGET_GROUP):
                raise
    if not (changes or missing or stale):
        return group
    return existing_group(ctx, name)


def group_named(ctx: ClusterContext, name: str) -> dict | None:
    """One group, by name (DescribeAutoScalingGroups' answer); None when there is none."""
    return described_groups(ctx, [name]).get(name)


def existing_group(ctx: ClusterContext, name: str) -> dict:
    """One group the step cannot go on without (deleted by hand meanwhile: it says which)."""
    group = group_named(ctx, name)
    if group is None:
        raise NotFound(f"Auto Scaling group {name} does not exist")
    return group


def groups(ctx: ClusterContext, scope: str, role: str) -> list[dict]:
    """The cluster's groups of one role (selected by uid, name and service together)."""
    filters = ctx.ec2_filters(scope, **{naming.TAG_ROLE: role})
    found: list[dict] = []
    for page in ctx.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(Filters=filters):
        found += page["AutoScalingGroups"]
    return found


def force_delete(ctx: ClusterContext, group: dict) -> bool:
    """Force-delete a group (its instances terminate with it); False if its delete is under way
    already. A group another call deleted meanwhile is deleted."""
    if group.get("Status") == "Delete in progress":
        return False
    try:
        ctx.autoscaling.delete_auto_scaling_group(AutoScalingGroupName=group["AutoScalingGroupName"], ForceDelete=True)
    except Exception as exc:
        if is_in_use(exc):
            ctx.pending(f"{group['AutoScalingGroupName']} is busy")
        if not is_group_gone(exc):
            raise
    return True


def delete_groups(ctx: ClusterContext, scope: str, role: str) -> dict:
    """Force-delete: the ASG terminates its instances; the instances step waits for them."""
    deleted = [group["AutoScalingGroupName"] for group in groups(ctx, scope, role) if force_delete(ctx, group)]
    remaining = [g["AutoScalingGroupName"] for g in groups(ctx, scope, role)]
    if remaining:
        ctx.pending(f"Auto Scaling groups {remaining} are being deleted")
    return {"deleted": deleted}


@step(poll=GROUPS_DELETED)
def delete_node_pool_groups(ctx: ClusterContext, scope: str) -> dict:
    """Force-delete every node pool's Auto Scaling group."""
    return delete_groups(ctx, scope, naming.ROLE_NODE)


@step(poll=GROUPS_DELETED)
def delete_control_plane_groups(ctx: ClusterContext, scope: str) -> dict:
    """Force-delete every replica's Auto Scaling group."""
    return delete_groups(ctx, scope, naming.ROLE_CONTROL_PLANE)


LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


def instance_arns(ctx: ClusterContext, instance_ids: Iterable[str]) -> dict[str, str]:
    """Instance id -> its ARN (what a node's report is keyed by: its `ec2:SourceInstanceARN`)."""
    return {i: ctx.settings.account.arn("ec2", f"instance/{i}") for i in instance_ids}


def node_instances_ever(ctx: ClusterContext) -> dict[str, str]:
    """Instance id -> ARN of every node instance of the cluster EC2 still lists, terminated ones
    included (EC2 lists a terminated instance for about an hour)."""
    filters = ctx.ec2_filters("cluster", **{naming.TAG_ROLE: naming.ROLE_NODE})
    found = []
    for page in ctx.ec2.get_paginator("describe_instances").paginate(Filters=filters):
        found += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
    return instance_arns(ctx, found)


def live_instances(ctx: ClusterContext, scope: str) -> dict[str, str]:
    """Instance id -> state of the cluster's instances that are not terminated."""
    filters = [*ctx.ec2_filters(scope), {"Name": "instance-state-name", "Values": LIVE_STATES}]
    found: dict[str, str] = {}
    for page in ctx.ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if ctx.owned(naming.tags_dict(instance.get("Tags")), scope):
                    found[instance["InstanceId"]] = instance["State"]["Name"]
    return found


@step(poll=INSTANCES_GONE)
def terminate_instances(ctx: ClusterContext, scope: str) -> dict:
    """Terminate the cluster's instances that are still alive — also those no Auto Scaling group
    owns any more (detached by hand, or launched by a group whose creation then failed) — and
    wait until every one it asked to go away is gone."""
    live = live_instances(ctx, scope)
    to_stop = sorted(i for i, state in live.items() if state != "shutting-down")
    if to_stop:
        for start in range(0, len(to_stop), 50):
            try:
                ctx.ec2.terminate_instances(InstanceIds=to_stop[start : start + 50])
            except Exception as exc:
                if not is_not_found(exc, Kind.INSTANCE):
                    raise
        live = live_instances(ctx, scope)
    if live:
        states: dict[str, int] = {}
        for state in live.values():
            states[state] = states.get(state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        ctx.pending(f"waiting for {len(live)} instances to terminate ({summary})")
    return {"instances": 0}


@step
def delete_launch_templates(ctx: ClusterContext, scope: str) -> dict:
    """Delete the cluster's launch templates (every version)."""
    templates = ctx.ec2.describe_launch_templates(Filters=ctx.ec2_filters(scope))["LaunchTemplates"]
    deleted = []
    for template in templates:
        if not ctx.owned(naming.tags_dict(template.get("Tags")), scope):
            continue
        try:
            ctx.ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
            deleted.append(template["LaunchTemplateName"])
        except Exception as exc:
            if not is_not_found(exc, Kind.LAUNCH_TEMPLATE):
                raise
    return {"deleted": deleted}


# ---------------------------------------------------------------- the kinds: groups, instances, templates


def find_groups(scope: Scope, uid: str | None) -> Iterator[Found]:
    autoscaling = scope.clients("autoscaling")
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(Filters=scope.ec2_filters(uid)):
        for g in page["AutoScalingGroups"]:
            tags = {t["Key"]: t["Value"] for t in g.get("Tags", [])}
            found = scope.found(
                uid,
                g["AutoScalingGroupName"],
                tags,
                g.get("CreatedTime"),
                name=g["AutoScalingGroupName"],
                zones=g["AvailabilityZones"],
                min=g["MinSize"],
                max=g["MaxSize"],
                subnets=g["VPCZoneIdentifier"],
                healthCheck=g["HealthCheckType"],
                targetGroups=g.get("TargetGroupARNs", []),
                instances=[i["InstanceId"] for i in g["Instances"]],
                role=tags.get(naming.TAG_ROLE),
            )
            if found:
                yield found


def find_instances(scope: Scope, uid: str | None) -> Iterator[Found]:
    """Instances that are not terminated (EC2 lists a terminated one for about an hour)."""
    ec2 = scope.clients("ec2")
    live = [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=scope.ec2_filters(uid) + live):
        for reservation in page["Reservations"]:
            for i in reservation["Instances"]:
                tags = naming.tags_dict(i.get("Tags"))
                state = i["State"]["Name"]
                zone = i["Placement"]["AvailabilityZone"]
                found = scope.found(uid, i["InstanceId"], tags, i.get("LaunchTime"), zone=zone, state=state)
                if found:
                    yield found


def find_launch_templates(scope: Scope, uid: str | None) -> Iterator[Found]:
    ec2 = scope.clients("ec2")
    for t in ec2.describe_launch_templates(Filters=scope.ec2_filters(uid))["LaunchTemplates"]:
        tags = naming.tags_dict(t.get("Tags"))
        found = scope.found(uid, t["LaunchTemplateId"], tags, t.get("CreateTime"), name=t["LaunchTemplateName"])
        if found:
            yield found


def _template_exists(ctx: ClusterContext, template_id: str | None) -> bool:
    if not template_id:
        return False
    try:
        # AWS answers a deleted template's id with InvalidLaunchTemplateId.NotFound; an empty list
        # (what the emulator answers) means the same.
        return bool(ctx.ec2.describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"])
    except Exception as exc:
        if is_not_found(exc, Kind.LAUNCH_TEMPLATE):
            return False
        raise


def launch_template_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """Each replica's and node pool's launch template the records name, gone."""
    owners = [(f"replica-{m.index}", m.launch_template_id) for m in ctx.store.etcd.members(ctx.name)]
    owners += [(f"nodepool-{p.name}", p.launch_template_id) for p in ctx.store.node_pools.list(ctx.name)]
    return {
        f"{where}/launch-template": f"{MISSING} ({template_id})"
        for where, template_id in owners
        if template_id and not _template_exists(ctx, template_id)
    }


def _group_drift(group: dict | None, template_id: str | None, limits: tuple[int, int], target_groups: list[str]) -> str:
    if group is None or group.get("Status") == "Delete in progress":
        return MISSING
    changes = []
    if template_id and (group.get("LaunchTemplate") or {}).get("LaunchTemplateId") != template_id:
        changes.append("launch template changed")
    if (group["MinSize"], group["MaxSize"]) != limits:
        changes.append(f"size {group['MinSize']}..{group['MaxSize']} (kubestep: {limits[0]}..{limits[1]})")
    if target_groups and not set(target_groups) <= set(group.get("TargetGroupARNs") or []):
        changes.append("not attached to the control plane's target group")
    return "; ".join(changes)


def described_groups(ctx: ClusterContext, names: list[str]) -> dict[str, dict]:
    """Group name -> DescribeAutoScalingGroups' answer, for the names that exist."""
    groups: dict[str, dict] = {}
    for start in range(0, len(names), 50):
        page = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names[start : start + 50])
        groups.update({g["AutoScalingGroupName"]: g for g in page["AutoScalingGroups"]})
    return groups


def group_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """Each replica's and node pool's group: there, launching its template, within its size
    limits, a replica's behind the control plane's target group (unless that is gone too)."""
    members, pools = ctx.store.etcd.members(ctx.name), ctx.store.node_pools.list(ctx.name)
    names = [m.asg_name for m in members if m.asg_name] + [p.asg_name for p in pools if p.asg_name]
    groups = described_groups(ctx, names)
    target_group = ctx.resource_id(Resource.TARGET_GROUP)
    target_groups = [target_group] if target_group and Resource.TARGET_GROUP.value not in found else []
    drift = {}
    for member in (m for m in members if m.asg_name):
        what = _group_drift(groups.get(member.asg_name), member.launch_template_id, (1, 1), target_groups)
        drift[f"replica-{member.index}/asg"] = what
    for pool in (p for p in pools if p.asg_name):
        limits = (pool.spec.spec.min_node_count, pool.spec.spec.max_node_count)
        what = _group_drift(groups.get(pool.asg_name), pool.launch_template_id, limits, [])
        drift[f"nodepool-{pool.name}/asg"] = what
    return {key: what for key, what in drift.items() if what}


def _replica_running(ctx: ClusterContext, member: EtcdMember) -> str:
    """What differs between a replica's spec and record and its live instance."""
    live = [m for m in group_instances(ctx, member.asg_name or "") if not going_away(m["state"])]
    if not live:
        return ""
    changes = []
    wanted = ctx.spec.spec.control_plane.instance_type
    target = ctx.record.target_spec.spec.control_plane.instance_type if ctx.record.target_spec else wanted
    for other in sorted({m["type"] for m in live if m["type"] != wanted}):
        unfinished = " (what an unfinished update asks for: run it again)" if other == target else ""
        changes.append(f"runs {other} where the spec says {wanted}{unfinished}")
    stale = [m["id"] for m in live if member.launch_spec and m["spec"] != member.launch_spec]
    if stale:
        changes.append(f"{', '.join(stale)} launched from another launch template version than the replica's")
    in_service = sorted(m["id"] for m in live if m["state"] == LifecycleState.IN_SERVICE)
    if member.instance_id and member.instance_id not in in_service:
        serving = ", ".join(in_service) or "none"
        changes.append(f"the record names {member.instance_id}, which is not in service ({serving} is)")
    report = ctx.store.reports.replica(ctx.uid, member.index)
    if report and report.failed_phase and report.instance_id in in_service:
        changes.append(f"{report.instance_id} reported {report.status}")
    return "; ".join(changes)


def _pool_running(ctx: ClusterContext, pool: NodePoolRecord) -> str:
    live = [m for m in group_instances(ctx, pool.asg_name or "") if not going_away(m["state"])]
    wanted = pool.spec.spec.instance_type
    others = sorted({m["type"] for m in live if m["type"] != wanted})
    stale = [m["id"] for m in live if pool.launch_spec and m["spec"] != pool.launch_spec]
    changes = [f"runs {', '.join(others)} where the spec says {wanted}"] if others else []
    if stale:
        changes.append(f"{', '.join(stale)} launched from another launch template version than the pool's")
    return "; ".join(changes)


def instance_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """The spec against what runs: each replica's and node pool's live instances (their type,
    the launch template version they came from, their reports, the instances the records name).
    Groups already found missing or changed are skipped: the repair makes them again first."""
    changed = set(group_drift(ctx, found))
    drift: dict[str, str] = {}
    for member in ctx.store.etcd.members(ctx.name):
        if member.asg_name and f"replica-{member.index}/asg" not in changed:
            drift[f"replica-{member.index}/instance"] = _replica_running(ctx, member)
    for pool in ctx.store.node_pools.list(ctx.name):
        if pool.asg_name and f"nodepool-{pool.name}/asg" not in changed and not pool.target_spec:
            drift[f"nodepool-{pool.name}/instances"] = _pool_running(ctx, pool)
    return {key: what for key, what in drift.items() if what}


GROUPS = ResourceKind(
    "autoScalingGroups",
    label="AutoScalingGroup",
    find=find_groups,
    ensure=("EnsureReplicaGroup", "EnsureNodePoolGroup"),
    delete=(DeleteStep(delete_node_pool_groups), DeleteStep(delete_control_plane_groups)),
    needs=("launchTemplates", "targetGroups"),
    drift=group_drift,
)
# Instances come after their groups: a group deleted by force takes its own; the step after it
# takes those no group holds (detached by hand, or launched by a group whose creation failed).
INSTANCES = ResourceKind(
    "instances",
    label="Instance",
    find=find_instances,
    delete=(DeleteStep(terminate_instances),),
    needs=("volumes", "launchTemplates", "instanceProfiles", "securityGroups", "terminationQueues", "secrets"),
    # What runs differing from the spec is what an update's roll and its health gate put right.
    drift=instance_drift,
    blocks_updates=False,
)
LAUNCH_TEMPLATES = ResourceKind(
    "launchTemplates",
    label="LaunchTemplate",
    find=find_launch_templates,
    ensure=("EnsureReplicaLaunchTemplate", "EnsureNodePoolLaunchTemplate"),
    delete=(DeleteStep(delete_launch_templates),),
    needs=("instanceProfiles", "securityGroups", "bootstrapBundles"),
    drift=launch_template_drift,
)
