"""Launch templates and Auto Scaling groups, shared by control-plane replicas and node pools.

Every launch template requires IMDSv2 and encrypts every volume; ASG names are unique per
account and region, so CreateAutoScalingGroup's AlreadyExists means an earlier run made it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
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
from kubestep.flow.steps import Poll, step
from kubestep.models import Volume
from kubestep.resources.context import ClusterContext

# ASG deletes take a minute or two; terminating instances up to a few minutes each.
GROUPS_DELETED = Poll(deadline=timedelta(minutes=15), interval=5)
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
    groups = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    if not groups:
        return []
    members = {i["InstanceId"]: i for i in groups[0]["Instances"]}
    found: dict[str, dict] = {}
    if members:
        pages = ctx.ec2.get_paginator("describe_instances").paginate(InstanceIds=list(members))
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    found[instance["InstanceId"]] = instance
    return [
        {
            "id": i,
            "state": m["LifecycleState"],
            "spec": naming.tags_dict(found.get(i, {}).get("Tags")).get(naming.TAG_SPEC),
            "type": found.get(i, {}).get("InstanceType") or m.get("InstanceType"),
        }
        for i, m in sorted(members.items())
    ]


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
    groups = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if groups:
        return reconcile_group(ctx, groups[0], launch_template_id, min_size, max_size, target_groups)
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
    created = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not created:
        ctx.pending(f"Auto Scaling group {name} is not visible yet")
    return created[0]


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
    return ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def groups(ctx: ClusterContext, scope: str, role: str) -> list[dict]:
    """The cluster's groups of one role (selected by uid, name and service together)."""
    filters = ctx.ec2_filters(scope, **{naming.TAG_ROLE: role})
    found: list[dict] = []
    for page in ctx.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(Filters=filters):
        found += page["AutoScalingGroups"]
    return found


def delete_groups(ctx: ClusterContext, scope: str, role: str) -> dict:
    """Force-delete: the ASG terminates its instances; the instances step waits for them."""
    deleted = []
    for group in groups(ctx, scope, role):
        if group.get("Status") == "Delete in progress":
            continue
        try:
            ctx.autoscaling.delete_auto_scaling_group(
                AutoScalingGroupName=group["AutoScalingGroupName"], ForceDelete=True
            )
        except Exception as exc:
            if is_in_use(exc):
                ctx.pending(f"{group['AutoScalingGroupName']} is busy")
            if not is_group_gone(exc):
                raise
        deleted.append(group["AutoScalingGroupName"])
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
