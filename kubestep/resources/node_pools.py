"""Node pools: each its own launch template and Auto Scaling group, tagged for the cluster
autoscaler, including node-template label and taint tags so scale-from-zero works."""

from __future__ import annotations

from datetime import timedelta

from kubestep import naming
from kubestep.errors import BootstrapFailed
from kubestep.flow.steps import Poll, step
from kubestep.models import AWSNodePool
from kubestep.resources import images, instance_roles, instances, placement, user_data
from kubestep.resources.context import ClusterContext
from kubestep.store import NodePoolRecord, Resource

HEALTH = Poll(deadline=timedelta(minutes=15), interval=10, backoff=1.2, max_delay=20)


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


def _pool(ctx: ClusterContext, name: str) -> NodePoolRecord:
    return ctx.store.node_pools.require(ctx.name, name)


def pool_tags(ctx: ClusterContext, pool: AWSNodePool) -> dict[str, str]:
    tags = dict(pool.spec.tags)
    tags.update(
        ctx.tags(
            Name=naming.node_pool(ctx.uid, pool.name),
            **{naming.TAG_ROLE: naming.ROLE_NODE, naming.TAG_NODEPOOL: pool.name},
        )
    )
    return tags


@step
def list_node_pools(ctx: ClusterContext) -> dict:
    """The cluster's node pools, for the Map that creates them."""
    return {"nodePools": sorted(p.name for p in ctx.store.node_pools.list(ctx.name))}


@step(creates=True)
def ensure_node_pool_launch_template(ctx: ClusterContext, node_pool: str) -> dict:
    """The pool's launch template: instance type, image, security groups and user-data."""
    record = _pool(ctx, node_pool)
    spec = record.spec.spec
    tags = pool_tags(ctx, record.spec)
    data = instances.launch_template_data(
        ctx,
        instance_type=spec.instance_type,
        image_id=images.image_for(ctx, spec.instance_type, spec.image_id),
        user_data=user_data.node(ctx, record.spec),
        instance_profile_arn=spec.iam_instance_profile or instance_roles.profile_arn(ctx, naming.ROLE_NODE),
        security_groups=[ctx.resource_id(Resource.SG_NODES), *spec.security_group_ids],
        root_volume=spec.root_volume,
        key_name=spec.key_name,
        tags=tags,
    )
    template_id = instances.ensure_launch_template(ctx, naming.node_pool(ctx.uid, node_pool), data, tags)
    if record.launch_template_id != template_id:
        ctx.store.node_pools.record_resource(
            ctx.name, node_pool, Resource.LAUNCH_TEMPLATE, template_id, ctx.operation_id
        )
        ctx.store.node_pools.update(ctx.name, node_pool, launch_template_id=template_id)
    return {"launchTemplateId": template_id}


@step(creates=True)
def ensure_node_pool_group(ctx: ClusterContext, node_pool: str) -> dict:
    """The pool's Auto Scaling group, min..max, with the cluster autoscaler's tags."""
    record = _pool(ctx, node_pool)
    assert record.launch_template_id, "the launch template step runs first"
    zone, subnet = placement.node_pool_subnet(ctx, record.spec)
    asg_name = naming.node_pool(ctx.uid, node_pool)
    group = instances.ensure_group(
        ctx,
        asg_name,
        launch_template_id=record.launch_template_id,
        subnets=[subnet],
        min_size=record.spec.spec.min_node_count,
        max_size=record.spec.spec.max_node_count,
        desired=record.spec.spec.min_node_count,
        target_groups=[],
        tags={**pool_tags(ctx, record.spec), **autoscaler_tags(ctx.uid, record.spec)},
    )
    if record.asg_name != asg_name:
        ctx.store.node_pools.record_resource(ctx.name, node_pool, Resource.ASG, asg_name, ctx.operation_id)
        ctx.store.node_pools.update(ctx.name, node_pool, asg_name=asg_name, zone=zone, subnet_id=subnet)
    return {"asg": group["AutoScalingGroupName"]}


@step(poll=HEALTH)
def check_node_pool_health(ctx: ClusterContext, node_pool: str) -> dict:
    """A pool is RUNNING when at least minNodeCount nodes are in service and bootstrapped."""
    record = _pool(ctx, node_pool)
    wanted = record.spec.spec.min_node_count
    group = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[record.asg_name])["AutoScalingGroups"]
    in_service = [
        i["InstanceId"] for i in (group[0]["Instances"] if group else []) if i["LifecycleState"] == "InService"
    ]
    reports = ctx.store.reports.nodes(ctx.uid)
    failed = [(i, reports[i]) for i in in_service if i in reports and reports[i].failed_phase]
    if failed:
        instance, report = failed[0]
        raise BootstrapFailed(
            f"node pool {node_pool}: instance {instance} failed bootstrap phase {report.failed_phase}"
        )
    # Ready means the node's own report says so: bootstrapped, and the node Ready in the cluster.
    ready = [i for i in in_service if i in reports and reports[i].ok and reports[i].checks.get("nodeReady") is True]
    if len(ready) < wanted:
        ctx.pending(f"node pool {node_pool} has {len(ready)}/{wanted} nodes ready")
    ctx.store.node_pools.update(ctx.name, node_pool, phase="RUNNING", ready_nodes=len(ready))
    return {"nodePool": node_pool, "readyNodes": len(ready)}
