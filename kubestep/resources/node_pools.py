"""Node pools: each its own launch template and Auto Scaling group, tagged for the cluster
autoscaler, including node-template label and taint tags so scale-from-zero works."""

from __future__ import annotations

from datetime import timedelta

from kubestep import naming
from kubestep.errors import BootstrapFailed
from kubestep.models import AWSNodePool
from kubestep.polling import pending
from kubestep.resources import instances, placement
from kubestep.resources.context import ClusterContext

HEALTH_DEADLINE = timedelta(minutes=15)


def autoscaler_tags(uid: str, pool: AWSNodePool) -> dict[str, str]:
    tags = {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/{uid}": "owned",
    }
    for key, value in pool.spec.labels.items():
        tags[f"k8s.io/cluster-autoscaler/node-template/label/{key}"] = value
    for taint in pool.spec.taints:
        tags[f"k8s.io/cluster-autoscaler/node-template/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    return tags


def _pool(ctx: ClusterContext, name: str) -> tuple[dict, AWSNodePool]:
    record = ctx.registry.get_node_pool(ctx.name, name)
    assert record is not None, f"node pool {name} has no record"
    return record, AWSNodePool.model_validate(record["spec"])


def _tags(ctx: ClusterContext, pool: AWSNodePool) -> dict[str, str]:
    tags = ctx.tags(
        Name=naming.node_pool(ctx.uid, pool.name), **{naming.TAG_ROLE: naming.ROLE_NODE, naming.TAG_NODEPOOL: pool.name}
    )
    tags.update(pool.spec.tags)
    return tags


def ensure_launch_template(ctx: ClusterContext, name: str) -> dict:
    record, pool = _pool(ctx, name)
    spec = pool.spec
    tags = _tags(ctx, pool)
    user_data = instances.user_data(ctx, naming.ROLE_NODE, spec.version)
    data = instances.launch_template_data(
        ctx,
        instance_type=spec.instance_type,
        instance_profile_arn=spec.iam_instance_profile or ctx.settings.node_instance_profile_arn,
        security_groups=[ctx.record["resources"]["sg-nodes"]["id"], *spec.security_group_ids],
        root_volume=spec.root_volume,
        key_name=spec.key_name,
        user_data=user_data,
        tags=tags,
    )
    template_id = instances.ensure_launch_template(ctx, naming.node_pool(ctx.uid, name), data, tags)
    if (record.get("resources") or {}).get("launch-template", {}).get("id") != template_id:
        ctx.registry.record_resource(ctx.pk, f"NODEPOOL#{name}", "launch-template", template_id, ctx.operation_id)
        ctx.registry.update_node_pool(ctx.name, name, launchTemplateId=template_id)
    return {"launchTemplateId": template_id}


def ensure_group(ctx: ClusterContext, name: str) -> dict:
    record, pool = _pool(ctx, name)
    zone, subnet = placement.node_pool_subnet(ctx, pool)
    asg_name = naming.node_pool(ctx.uid, name)
    group = instances.ensure_group(
        ctx,
        asg_name,
        launch_template_id=record["launchTemplateId"],
        subnets=[subnet],
        min_size=pool.spec.min_node_count,
        max_size=pool.spec.max_node_count,
        desired=pool.spec.min_node_count,
        target_groups=[],
        tags={**_tags(ctx, pool), **autoscaler_tags(ctx.uid, pool)},
    )
    if (record.get("resources") or {}).get("asg", {}).get("id") != asg_name:
        ctx.registry.record_resource(ctx.pk, f"NODEPOOL#{name}", "asg", asg_name, ctx.operation_id)
        ctx.registry.update_node_pool(ctx.name, name, asgName=asg_name, zone=zone, subnetId=subnet)
    return {"asg": group["AutoScalingGroupName"]}


def check_health(ctx: ClusterContext, name: str) -> dict:
    """A pool is RUNNING when at least minNodeCount nodes are in service and bootstrapped."""
    record, pool = _pool(ctx, name)
    wanted = pool.spec.min_node_count
    group = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[record["asgName"]])["AutoScalingGroups"]
    in_service = [
        i["InstanceId"] for i in (group[0]["Instances"] if group else []) if i["LifecycleState"] == "InService"
    ]
    reports = ctx.registry.bootstrap_reports(ctx.uid)
    failed = [
        (i, reports[f"NODE#{i}"]["status"])
        for i in in_service
        if reports.get(f"NODE#{i}", {}).get("status", "").startswith("failed")
    ]
    if failed:
        instance, status = failed[0]
        raise BootstrapFailed(
            f"node pool {name}: instance {instance} failed bootstrap phase {status.partition(':')[2]}"
        )
    ready = [i for i in in_service if reports.get(f"NODE#{i}", {}).get("status") == "ok"]
    if len(ready) < wanted:
        pending(
            ctx.registry,
            ctx.operation_id,
            f"nodepool-health-{name}",
            HEALTH_DEADLINE,
            f"node pool {name} has {len(ready)}/{wanted} nodes ready",
            ctx.settings.time_scale,
        )
    ctx.registry.update_node_pool(ctx.name, name, phase="RUNNING", readyNodes=len(ready))
    return {"nodePool": name, "readyNodes": len(ready)}
