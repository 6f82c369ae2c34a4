"""Control-plane replicas: each with its etcd EBS volume (same zone, survives instance
replacement), its launch template and its own Auto Scaling group (min = max = desired = 1)
registered in the NLB's target group; and the health gate that decides RUNNING."""

from __future__ import annotations

from datetime import timedelta

from kubestep import naming
from kubestep.aws import is_error
from kubestep.errors import BootstrapFailed, ResourcePending
from kubestep.polling import pending
from kubestep.resources import instances, load_balancer, placement
from kubestep.resources.context import ClusterContext

VOLUME_DEADLINE = timedelta(minutes=5)
# Instance boot + packages + kubeadm join + NLB health checks (ANCHORS: 3-5 min for targets).
HEALTH_DEADLINE = timedelta(minutes=20)
ETCD_DATA_DIR = "/var/lib/etcd"


def member_sk(index: int) -> str:
    return f"ETCD#MEMBER#{index:02d}"


def plan(ctx: ClusterContext) -> dict:
    """One etcd member item per replica plus the cluster-level etcd item. Re-planning keeps
    what an earlier run recorded."""
    replicas = placement.replicas(ctx)
    ctx.registry.put_etcd_config(
        ctx.name,
        {
            # The token keeps a member from joining another cluster's etcd by mistake.
            "initialClusterToken": f"gke-{ctx.uid}-etcd",
            "dataDir": ETCD_DATA_DIR,
            "bootstrapSecret": naming.bootstrap_secret(ctx.uid),
            "members": len(replicas),
        },
    )
    for replica in replicas:
        ctx.registry.put_etcd_member(
            ctx.name,
            replica.index,
            {
                "zone": replica.zone,
                "subnetId": replica.subnet_id,
                "name": naming.replica(ctx.uid, replica.index),
                # Stable peer address: the NLB fronts the API; etcd peers find each other through
                # kubeadm's member list, by this name resolved in the VPC's private DNS.
                "peerName": f"{naming.replica(ctx.uid, replica.index)}.{ctx.name}.internal",
            },
        )
    return {"replicas": [r.index for r in replicas]}


def _volume_tags(ctx: ClusterContext, index: int) -> dict[str, str]:
    return ctx.tags(
        Name=naming.etcd_volume(ctx.uid, index), **{naming.TAG_ROLE: "etcd", naming.TAG_REPLICA: str(index)}
    )


def ensure_etcd_volume(ctx: ClusterContext, index: int) -> dict:
    member = ctx.registry.get_etcd_member(ctx.name, index)
    assert member is not None, f"replica {index} was not planned"
    volume_id = (member.get("resources") or {}).get("etcd-volume", {}).get("id")
    volume = None
    if volume_id:
        try:
            volume = ctx.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        except Exception as exc:
            if not is_error(exc, "InvalidVolume.NotFound"):
                raise
    if volume is None:
        found = ctx.ec2.describe_volumes(
            Filters=ctx.ec2_filters(**{naming.TAG_ROLE: "etcd", naming.TAG_REPLICA: str(index)})
        )
        volume = found["Volumes"][0] if found["Volumes"] else None
    if volume is None:
        spec = ctx.spec.spec.control_plane.etcd.main_volume
        ebs = instances.ebs(spec, ctx.settings.service.spec.kms_key_arn)
        kwargs = {k: v for k, v in ebs.items() if k not in ("VolumeSize", "DeleteOnTermination")}
        volume = ctx.ec2.create_volume(
            AvailabilityZone=member["zone"],
            Size=spec.size_gib,
            ClientToken=naming.client_token(ctx.operation_id, naming.etcd_volume(ctx.uid, index)),
            TagSpecifications=naming.tag_specifications("volume", _volume_tags(ctx, index)),
            **kwargs,
        )
    if volume["VolumeId"] != volume_id:
        ctx.registry.record_resource(ctx.pk, member_sk(index), "etcd-volume", volume["VolumeId"], ctx.operation_id)
        ctx.registry.update_etcd_member(ctx.name, index, volumeId=volume["VolumeId"])
    if volume["State"] not in ("available", "in-use"):
        pending(
            ctx.registry,
            ctx.operation_id,
            f"etcd-volume-{index}",
            VOLUME_DEADLINE,
            f"etcd volume {volume['VolumeId']} of replica {index} is {volume['State']}",
            ctx.settings.time_scale,
        )
    return {"volumeId": volume["VolumeId"], "zone": volume["AvailabilityZone"]}


def _replica_tags(ctx: ClusterContext, index: int) -> dict[str, str]:
    return ctx.tags(
        Name=naming.replica(ctx.uid, index),
        **{naming.TAG_ROLE: naming.ROLE_CONTROL_PLANE, naming.TAG_REPLICA: str(index)},
    )


def ensure_launch_template(ctx: ClusterContext, index: int) -> dict:
    member = ctx.registry.get_etcd_member(ctx.name, index)
    assert member is not None
    cp = ctx.spec.spec.control_plane
    resources = ctx.record["resources"]
    tags = _replica_tags(ctx, index)
    user_data = instances.user_data(
        ctx, naming.ROLE_CONTROL_PLANE, cp.version, replica=index, etcd_volume_id=member["volumeId"]
    )
    data = instances.launch_template_data(
        ctx,
        instance_type=cp.instance_type,
        instance_profile_arn=cp.iam_instance_profile or ctx.settings.control_plane_instance_profile_arn,
        security_groups=[resources["sg-controlplane"]["id"], *cp.security_group_ids],
        root_volume=cp.root_volume,
        key_name=cp.key_name,
        user_data=user_data,
        tags=tags,
    )
    name = naming.replica(ctx.uid, index)
    template_id = instances.ensure_launch_template(ctx, name, data, tags)
    if (member.get("resources") or {}).get("launch-template", {}).get("id") != template_id:
        ctx.registry.record_resource(ctx.pk, member_sk(index), "launch-template", template_id, ctx.operation_id)
        ctx.registry.update_etcd_member(ctx.name, index, launchTemplateId=template_id)
    return {"launchTemplateId": template_id}


def ensure_group(ctx: ClusterContext, index: int) -> dict:
    member = ctx.registry.get_etcd_member(ctx.name, index)
    assert member is not None
    name = naming.replica(ctx.uid, index)
    group = instances.ensure_group(
        ctx,
        name,
        launch_template_id=member["launchTemplateId"],
        subnets=[member["subnetId"]],
        min_size=1,
        max_size=1,
        desired=1,
        target_groups=[ctx.record["resources"]["target-group"]["id"]],
        tags=_replica_tags(ctx, index),
    )
    if (member.get("resources") or {}).get("asg", {}).get("id") != name:
        ctx.registry.record_resource(ctx.pk, member_sk(index), "asg", name, ctx.operation_id)
        ctx.registry.update_etcd_member(ctx.name, index, asgName=name)
    return {"asg": group["AutoScalingGroupName"]}


def check_health(ctx: ClusterContext, index: int) -> dict:
    """RUNNING means: the instance's own bootstrap report says ok, the ASG has it InService,
    and the NLB target (HTTPS /readyz on AWS) is healthy. A failed report fails at once."""
    member = ctx.registry.get_etcd_member(ctx.name, index)
    assert member is not None
    report = ctx.registry.bootstrap_report(ctx.uid, f"REPLICA#{index}")
    where = f"replica {index} ({member['zone']}, {member.get('asgName')})"
    if report and report["status"].startswith("failed"):
        phase = report["status"].partition(":")[2] or "unknown"
        raise BootstrapFailed(f"{where} instance {report.get('instanceId')} failed bootstrap phase {phase}")
    group = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[member["asgName"]])["AutoScalingGroups"]
    in_service = [
        i["InstanceId"] for i in (group[0]["Instances"] if group else []) if i["LifecycleState"] == "InService"
    ]
    step = f"replica-health-{index}"
    scale = ctx.settings.time_scale
    if not in_service:
        pending(ctx.registry, ctx.operation_id, step, HEALTH_DEADLINE, f"{where} has no instance in service", scale)
    instance_id = in_service[0]
    if not report or report.get("instanceId") != instance_id:
        pending(
            ctx.registry,
            ctx.operation_id,
            step,
            HEALTH_DEADLINE,
            f"{where} instance {instance_id} has not reported its bootstrap yet",
            scale,
        )
    health = load_balancer.target_health(ctx).get(instance_id)
    if health != "healthy":
        pending(
            ctx.registry,
            ctx.operation_id,
            step,
            HEALTH_DEADLINE,
            f"{where} instance {instance_id} is {health or 'not registered'} in the NLB target group",
            scale,
        )
    ctx.registry.update_etcd_member(ctx.name, index, instanceId=instance_id, bootstrap="ok")
    return {"replica": index, "instanceId": instance_id}


# ---------------------------------------------------------------- delete


def check_instances_gone(ctx: ClusterContext, scope: str) -> dict:
    live = instances.live_instances(ctx, scope)
    if live:
        pending(
            ctx.registry,
            ctx.operation_id,
            "instances-gone",
            timedelta(minutes=15),
            f"{len(live)} instances are still terminating",
            ctx.settings.time_scale,
        )
    return {"instances": 0}


def delete_etcd_volumes(ctx: ClusterContext, scope: str, keep: bool) -> dict:
    volumes = ctx.ec2.describe_volumes(Filters=ctx.ec2_filters(scope, **{naming.TAG_ROLE: "etcd"}))["Volumes"]
    if keep:
        return {"kept": [v["VolumeId"] for v in volumes]}
    deleted = []
    for volume in volumes:
        if volume["State"] == "in-use":
            raise ResourcePending(f"etcd volume {volume['VolumeId']} is still attached")
        try:
            ctx.ec2.delete_volume(VolumeId=volume["VolumeId"])
            deleted.append(volume["VolumeId"])
        except Exception as exc:
            if is_error(exc, "VolumeInUse", "IncorrectState"):
                raise ResourcePending(f"etcd volume {volume['VolumeId']} is busy") from None
            if not is_error(exc, "InvalidVolume.NotFound"):
                raise
    return {"deleted": deleted}
