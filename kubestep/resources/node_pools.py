"""Node pools: each its own launch template and Auto Scaling group, tagged for the cluster
autoscaler, including node-template label and taint tags so scale-from-zero works."""

from __future__ import annotations

from datetime import timedelta

from kubestep import naming
from kubestep.aws.errors import Kind, is_not_found
from kubestep.errors import BootstrapFailed
from kubestep.flow.steps import Poll, step
from kubestep.models import AWSNodePool
from kubestep.resources import (
    images,
    instance_roles,
    instances,
    node_pool_rollout,
    placement,
    reports,
    termination,
    user_data,
)
from kubestep.resources.context import TAG_CREATED_BY, ClusterContext
from kubestep.store import NodePoolRecord, Resource

HEALTH = Poll(deadline=timedelta(minutes=15), interval=10, backoff=1.2, max_delay=20, first=reports.BOOT_REPORT_FIRST)


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


def launch_template(ctx: ClusterContext, record: NodePoolRecord, pool: AWSNodePool) -> instances.TemplateVersion:
    """The pool's launch template with a version that launches `pool`'s spec; recorded."""
    spec = pool.spec
    tags = pool_tags(ctx, pool)
    data = instances.launch_template_data(
        ctx,
        instance_type=spec.instance_type,
        image_id=images.image_for(ctx, spec.instance_type, spec.image_id),
        user_data=user_data.node(ctx, pool),
        instance_profile_arn=spec.iam_instance_profile or instance_roles.profile_arn(ctx, naming.ROLE_NODE),
        security_groups=[ctx.resource_id(Resource.SG_NODES), *spec.security_group_ids],
        root_volume=spec.root_volume,
        key_name=spec.key_name,
        tags=tags,
    )
    template = instances.ensure_launch_template(ctx, naming.node_pool(ctx.uid, record.name), data, tags)
    fields = {
        "launch_template_id": template.template_id,
        "launch_template_version": template.version,
        "launch_spec": template.spec,
    }
    if record.launch_template_id != template.template_id:
        ctx.store.node_pools.record_resource(
            ctx.name, record.name, Resource.LAUNCH_TEMPLATE, template.template_id, ctx.operation_id, **fields
        )
    elif (record.launch_template_version, record.launch_spec) != (template.version, template.spec):
        ctx.store.node_pools.update(ctx.name, record.name, **fields)
    return template


@step(creates=True)
def ensure_node_pool_launch_template(ctx: ClusterContext, node_pool: str) -> dict:
    """The pool's launch template: instance type, image, security groups and user-data."""
    record = _pool(ctx, node_pool)
    template = launch_template(ctx, record, record.target_spec or record.spec)
    return {"launchTemplateId": template.template_id, "version": template.version}


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
        tags={
            **pool_tags(ctx, record.spec),
            **autoscaler_tags(ctx.uid, record.spec),
            naming.TAG_SPEC: record.launch_spec or "",
        },
    )
    termination.ensure_drain_hook(ctx, asg_name)
    if record.asg_name != asg_name:
        placed = {"asg_name": asg_name, "zone": zone, "subnet_id": subnet}
        ctx.store.node_pools.record_resource(ctx.name, node_pool, Resource.ASG, asg_name, ctx.operation_id, **placed)
    return {"asg": group["AutoScalingGroupName"]}


def _node_states(ctx: ClusterContext, record: NodePoolRecord, *, fail: bool) -> tuple[list[str], dict[str, str]]:
    """(the pool's in-service instances whose own latest report says bootstrapped, Ready and
    initialised by the cloud controller manager; why each other in-service instance is not);
    with `fail`, an instance that reported a failed bootstrap fails the step."""
    group = instances.group_named(ctx, record.asg_name)
    in_service = [i["InstanceId"] for i in (group["Instances"] if group else []) if i["LifecycleState"] == "InService"]
    found = ctx.store.reports.nodes(ctx.uid, instances.instance_arns(ctx, in_service))
    failed = [(i, found[i]) for i in in_service if i in found and found[i].failed_phase]
    if fail and failed:
        instance, report = failed[0]
        raise BootstrapFailed(
            f"node pool {record.name}: instance {instance} failed bootstrap phase {report.failed_phase}"
        )
    problems = {i: reports.node_problem(found.get(i), ctx.settings.time_scale) for i in in_service}
    return [i for i in in_service if problems[i] is None], {i: p for i, p in problems.items() if p}


def _ready_nodes(ctx: ClusterContext, record: NodePoolRecord, *, fail: bool) -> list[str]:
    return _node_states(ctx, record, fail=fail)[0]


@step(poll=HEALTH)
def check_node_pool_health(ctx: ClusterContext, node_pool: str) -> dict:
    """A pool is RUNNING when at least minNodeCount nodes are in service, bootstrapped, Ready
    and initialised by the cloud controller manager (providerID set, uninitialized taint gone)."""
    record = _pool(ctx, node_pool)
    wanted = record.spec.spec.min_node_count
    ready, problems = _node_states(ctx, record, fail=True)
    if len(ready) < wanted:
        why = "; ".join(f"{instance}: {problem}" for instance, problem in sorted(problems.items())[:3])
        ctx.pending(f"node pool {node_pool} has {len(ready)}/{wanted} nodes ready" + (f" ({why})" if why else ""))
    ctx.store.node_pools.update(ctx.name, node_pool, phase="RUNNING", ready_nodes=len(ready))
    return {"nodePool": node_pool, "readyNodes": len(ready)}


# ---------------------------------------------------------------- updates


def _sync_group_tags(ctx: ClusterContext, record: NodePoolRecord, pool: AWSNodePool, spec_hash: str | None) -> None:
    """The group's tags for `pool`: the pool's own and the cluster autoscaler's node-template
    label and taint tags (scale-from-zero), old ones removed."""
    assert record.asg_name
    wanted = {**pool_tags(ctx, pool), **autoscaler_tags(ctx.uid, pool)}
    if spec_hash:
        wanted[naming.TAG_SPEC] = spec_hash
    wanted.pop(TAG_CREATED_BY, None)  # who created the group does not change
    group = instances.group_named(ctx, record.asg_name)
    present = {t["Key"]: t["Value"] for t in (group["Tags"] if group else [])}
    changed = {k: v for k, v in wanted.items() if present.get(k) != v}
    autoscaler_prefix = "k8s.io/cluster-autoscaler/node-template/"
    user_tags = set(record.spec.spec.tags) - set(pool.spec.tags)
    stale = [k for k in present if (k.startswith(autoscaler_prefix) or k in user_tags) and k not in wanted]
    resource = {"ResourceId": record.asg_name, "ResourceType": "auto-scaling-group"}
    if changed:
        ctx.autoscaling.create_or_update_tags(
            Tags=[{**resource, "Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in changed.items()]
        )
    if stale:
        ctx.autoscaling.delete_tags(Tags=[{**resource, "Key": k} for k in stale])


@step(creates=True)
def apply_node_pool_update(ctx: ClusterContext, node_pool: str) -> dict:
    """What changes in place (bounds, tags, the autoscaler's node-template tags), and for a spec
    that needs new instances, the new launch template version and the start of the roll."""
    record = _pool(ctx, node_pool)
    target = record.target_spec
    assert target is not None and record.asg_name, "AcquireLock records the pool's target spec"
    spec = target.spec
    rolls = any(
        getattr(record.spec.spec, f) != getattr(spec, f)
        for f in (
            "version",
            "instance_type",
            "max_pods_per_node",
            "root_volume",
            "labels",
            "taints",
            "image_id",
            "key_name",
            "iam_instance_profile",
            "security_group_ids",
        )
    )
    spec_hash = record.launch_spec
    if rolls:
        template = launch_template(ctx, record, target)
        spec_hash = template.spec
        record = _pool(ctx, node_pool)
        node_pool_rollout.begin(ctx, record, template.spec)
    else:
        group = instances.existing_group(ctx, record.asg_name)
        desired = min(max(group["DesiredCapacity"], spec.min_node_count), spec.max_node_count)
        ctx.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=record.asg_name,
            MinSize=spec.min_node_count,
            MaxSize=spec.max_node_count,
            DesiredCapacity=desired,
        )
        if record.rollout:  # an earlier roll's facts: this change replaces nothing
            ctx.store.node_pools.update(ctx.name, node_pool, rollout=None)
    _sync_group_tags(ctx, record, target, spec_hash)
    return {"roll": rolls}


@step(poll=HEALTH)
def finish_node_pool_update(ctx: ClusterContext, node_pool: str) -> dict:
    """The pool runs its target spec: its bounds restored and at least minNodeCount nodes ready
    (a scale-up waits for its new nodes as a create waits for its first ones), then RUNNING."""
    record = _pool(ctx, node_pool)
    target = record.target_spec or record.spec
    assert record.asg_name
    group = instances.existing_group(ctx, record.asg_name)
    desired = min(max(group["DesiredCapacity"], target.spec.min_node_count), target.spec.max_node_count)
    if (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) != (
        target.spec.min_node_count,
        target.spec.max_node_count,
        desired,
    ):
        ctx.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=record.asg_name,
            MinSize=target.spec.min_node_count,
            MaxSize=target.spec.max_node_count,
            DesiredCapacity=desired,
        )
    # One source of readiness: the count the pool's status shows is the one this step waited for,
    # so an update that succeeded never leaves the pool showing fewer ready nodes than its minimum.
    ready = _ready_nodes(ctx, record, fail=True)
    if len(ready) < target.spec.min_node_count:
        ctx.pending(f"node pool {node_pool} has {len(ready)}/{target.spec.min_node_count} nodes ready")
    ctx.store.node_pools.update(
        ctx.name,
        node_pool,
        spec=target,
        version=target.spec.version,
        target_spec=None,
        phase="RUNNING",
        ready_nodes=len(ready),
    )
    replaced = (record.rollout or {}).get("replaced", 0)
    ctx.event(
        "Normal",
        "NodePoolUpdated",
        f"node pool {node_pool} runs its new spec ({replaced} nodes replaced)",
        f"AWSNodePool/{node_pool}",
    )
    return {"nodePool": node_pool, "replaced": replaced}


# ---------------------------------------------------------------- one pool's delete


def _pool_filters(ctx: ClusterContext, scope: str, node_pool: str) -> list[dict]:
    return ctx.ec2_filters(scope, **{naming.TAG_ROLE: naming.ROLE_NODE, naming.TAG_NODEPOOL: node_pool})


@step(poll=instances.GROUPS_DELETED)
def delete_node_pool_group(ctx: ClusterContext, node_pool: str, scope: str) -> dict:
    """Force-delete the pool's Auto Scaling group (its instances terminate with it)."""
    name = naming.node_pool(ctx.uid, node_pool)
    group = instances.group_named(ctx, name)
    if group is not None:
        if not ctx.owned({t["Key"]: t["Value"] for t in group["Tags"]}, scope):
            return {"deleted": None}
        instances.force_delete(ctx, group)
    if instances.group_named(ctx, name) is not None:
        ctx.pending(f"Auto Scaling group {name} is being deleted")
    return {"deleted": name}


@step(poll=instances.INSTANCES_GONE)
def terminate_node_pool_instances(ctx: ClusterContext, node_pool: str, scope: str) -> dict:
    """Every instance of the pool gone (also those its group no longer owns)."""
    filters = [*_pool_filters(ctx, scope, node_pool), {"Name": "instance-state-name", "Values": instances.LIVE_STATES}]
    live = {
        i["InstanceId"]: i["State"]["Name"]
        for page in ctx.ec2.get_paginator("describe_instances").paginate(Filters=filters)
        for r in page["Reservations"]
        for i in r["Instances"]
    }
    to_stop = sorted(i for i, state in live.items() if state != "shutting-down")
    if to_stop:
        ctx.ec2.terminate_instances(InstanceIds=to_stop)
    if live:
        ctx.pending(f"waiting for {len(live)} instances of pool {node_pool} to terminate")
    return {"instances": 0}


@step
def delete_node_pool_launch_template(ctx: ClusterContext, node_pool: str, scope: str) -> dict:
    """The pool's launch template (every version)."""
    name = naming.node_pool(ctx.uid, node_pool)
    templates = ctx.ec2.describe_launch_templates(Filters=_pool_filters(ctx, scope, node_pool))["LaunchTemplates"]
    for template in templates:
        if template["LaunchTemplateName"] != name:
            continue
        try:
            ctx.ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
        except Exception as exc:
            if not is_not_found(exc, Kind.LAUNCH_TEMPLATE):
                raise
    return {"deleted": name}
