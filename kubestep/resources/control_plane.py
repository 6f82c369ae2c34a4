"""Control-plane replicas: each with its etcd EBS volume (same zone, survives instance
replacement), its launch template and its own Auto Scaling group (min = max = desired = 1)
registered in the NLB's target group; and the health gate that decides RUNNING."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from kubestep import naming
from kubestep.aws.errors import Kind, is_in_use, is_not_found
from kubestep.bootstrap import stable_replica_name
from kubestep.errors import BootstrapFailed
from kubestep.flow.steps import Poll, step
from kubestep.resources import images, instance_roles, instances, load_balancer, placement, reports, user_data
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import KEEP_ETCD_VOLUMES, MISSING, SCOPE, DeleteStep, Found, ResourceKind, Scope
from kubestep.store import EtcdConfig, EtcdMember, Resource

VOLUME = Poll(deadline=timedelta(minutes=5))
# Instance boot + packages + kubeadm join + NLB health checks (an NLB target takes 3-5 min to turn healthy).
HEALTH = Poll(deadline=timedelta(minutes=20), interval=10, backoff=1.2, max_delay=20, first=reports.BOOT_REPORT_FIRST)
VOLUMES_DELETED = Poll(deadline=timedelta(minutes=10))
ETCD_DATA_DIR = "/var/lib/etcd"


@step(creates=True)
def plan_replicas(ctx: ClusterContext) -> dict:
    """One etcd member item per replica plus the cluster-level etcd item. Re-planning keeps
    what an earlier run recorded."""
    replicas = placement.replicas(ctx)
    ctx.store.etcd.put_config(
        ctx.name,
        EtcdConfig(
            # The token keeps a member from joining another cluster's etcd by mistake.
            initial_cluster_token=f"gke-{ctx.uid}-etcd",
            data_dir=ETCD_DATA_DIR,
            control_plane_secret=naming.control_plane_secret(ctx.uid),
            node_secret=naming.node_secret(ctx.uid),
            members=len(replicas),
        ),
    )
    for replica in replicas:
        ctx.store.etcd.plan_member(
            ctx.name,
            EtcdMember(
                index=replica.index,
                zone=replica.zone,
                subnet_id=replica.subnet_id,
                name=naming.replica(ctx.uid, replica.index),
                # Stable identity (survives instance replacement): the replica's A record in the
                # service's private hosted zone, which the instance itself keeps current.
                peer_name=stable_replica_name(ctx.uid, replica.index, _domain(ctx)),
            ),
        )
    return {"replicas": [r.index for r in replicas]}


def _domain(ctx: ClusterContext) -> str:
    domain = ctx.network.dns_domain
    assert domain, "ProvisionNetwork records the service's private hosted zone"
    return domain


def _volume_tags(ctx: ClusterContext, index: int) -> dict[str, str]:
    return ctx.tags(
        Name=naming.etcd_volume(ctx.uid, index), **{naming.TAG_ROLE: "etcd", naming.TAG_REPLICA: str(index)}
    )


@step(creates=True, poll=VOLUME)
def ensure_etcd_volume(ctx: ClusterContext, replica: int) -> dict:
    """The replica's etcd volume, in its zone; it outlives every instance of the replica."""
    member = ctx.store.etcd.require_member(ctx.name, replica)
    volume_id = member.resources.get(Resource.ETCD_VOLUME)
    volume = None
    if volume_id:
        try:
            volume = ctx.ec2.describe_volumes(VolumeIds=[volume_id.id])["Volumes"][0]
        except Exception as exc:
            if not is_not_found(exc, Kind.VOLUME):
                raise
    if volume is None:
        found = ctx.ec2.describe_volumes(
            Filters=ctx.ec2_filters(**{naming.TAG_ROLE: "etcd", naming.TAG_REPLICA: str(replica)})
        )
        volume = found["Volumes"][0] if found["Volumes"] else None
    if volume is None:
        spec = ctx.spec.spec.control_plane.etcd.main_volume
        ebs = instances.ebs(spec, ctx.settings.service.spec.kms_key_arn)
        kwargs = {k: v for k, v in ebs.items() if k not in ("VolumeSize", "DeleteOnTermination")}
        volume = ctx.ec2.create_volume(
            AvailabilityZone=ctx.zone_name(member.zone),
            Size=spec.size_gib,
            ClientToken=naming.client_token(ctx.operation_id, naming.etcd_volume(ctx.uid, replica)),
            TagSpecifications=naming.tag_specifications("volume", _volume_tags(ctx, replica)),
            **kwargs,
        )
    if member.volume_id != volume["VolumeId"]:
        ctx.store.etcd.record_resource(
            ctx.name, replica, Resource.ETCD_VOLUME, volume["VolumeId"], ctx.operation_id, volume_id=volume["VolumeId"]
        )
    if volume["State"] not in ("available", "in-use"):
        ctx.pending(f"etcd volume {volume['VolumeId']} of replica {replica} is {volume['State']}")
    return {"volumeId": volume["VolumeId"], "zone": volume["AvailabilityZone"]}


def replica_tags(ctx: ClusterContext, index: int) -> dict[str, str]:
    return ctx.tags(
        Name=naming.replica(ctx.uid, index),
        **{naming.TAG_ROLE: naming.ROLE_CONTROL_PLANE, naming.TAG_REPLICA: str(index)},
    )


def replica_launch_template(ctx: ClusterContext, replica: int) -> instances.TemplateVersion:
    """Replica `replica`'s launch template with a version that launches the cluster's target
    spec (while an update rolls) or its spec; recorded on the etcd member."""
    member = ctx.store.etcd.require_member(ctx.name, replica)
    cluster = ctx.record.target_spec or ctx.spec
    cp = cluster.spec.control_plane
    tags = replica_tags(ctx, replica)
    assert member.volume_id, "the etcd volume step runs first"
    data = instances.launch_template_data(
        ctx,
        instance_type=cp.instance_type,
        image_id=images.image_for(ctx, cp.instance_type, cp.image_id),
        user_data=user_data.control_plane(ctx, replica, member.volume_id, cluster),
        instance_profile_arn=cp.iam_instance_profile or instance_roles.profile_arn(ctx, naming.ROLE_CONTROL_PLANE),
        security_groups=[ctx.resource_id(Resource.SG_CONTROL_PLANE), *cp.security_group_ids],
        root_volume=cp.root_volume,
        key_name=cp.key_name,
        tags=tags,
    )
    template = instances.ensure_launch_template(ctx, naming.replica(ctx.uid, replica), data, tags)
    fields = {
        "launch_template_id": template.template_id,
        "launch_template_version": template.version,
        "launch_spec": template.spec,
    }
    if member.launch_template_id != template.template_id:
        ctx.store.etcd.record_resource(
            ctx.name, replica, Resource.LAUNCH_TEMPLATE, template.template_id, ctx.operation_id, **fields
        )
    elif (member.launch_template_version, member.launch_spec) != (template.version, template.spec):
        ctx.store.etcd.update_member(ctx.name, replica, **fields)
    return template


@step(creates=True)
def ensure_replica_launch_template(ctx: ClusterContext, replica: int) -> dict:
    """The replica's launch template: its instance type, image, security groups and user-data."""
    template = replica_launch_template(ctx, replica)
    return {"launchTemplateId": template.template_id, "version": template.version}


@step(creates=True)
def ensure_replica_group(ctx: ClusterContext, replica: int) -> dict:
    """The replica's own Auto Scaling group (1/1/1), registered in the NLB's target group."""
    member = ctx.store.etcd.require_member(ctx.name, replica)
    assert member.launch_template_id, "the launch template step runs first"
    name = naming.replica(ctx.uid, replica)
    group = instances.ensure_group(
        ctx,
        name,
        launch_template_id=member.launch_template_id,
        subnets=[member.subnet_id],
        min_size=1,
        max_size=1,
        desired=1,
        target_groups=[ctx.resource_id(Resource.TARGET_GROUP)],
        tags={**replica_tags(ctx, replica), naming.TAG_SPEC: member.launch_spec or ""},
    )
    if member.asg_name != name:
        ctx.store.etcd.record_resource(ctx.name, replica, Resource.ASG, name, ctx.operation_id, asg_name=name)
    return {"asg": group["AutoScalingGroupName"]}


@step(poll=HEALTH)
def check_replica_health(ctx: ClusterContext, replica: int) -> dict:
    """RUNNING means: the instance's own bootstrap report says ok, its latest periodic report
    says every etcd member is there and healthy and its API server ready, the ASG has it
    InService, and the NLB target (HTTPS /readyz on AWS) is healthy. A failed bootstrap fails at
    once; anything else is waited for until the step's deadline (a slow join is not a failure),
    then the timeout names the check that never held."""
    member, config, report = ctx.store.replica_with_report(ctx.name, ctx.uid, replica)
    where = f"replica {replica} ({member.zone}, {member.asg_name})"
    assert member.asg_name
    members = instances.group_instances(ctx, member.asg_name)
    # A failed report counts only for an instance of the replica's current spec (a replaced
    # instance's old report is history).
    live = {m["id"] for m in members if m["spec"] == member.launch_spec}
    if report and report.failed_phase and report.instance_id in live:
        raise BootstrapFailed(f"{where} instance {report.instance_id} failed bootstrap phase {report.failed_phase}")
    in_service = [m["id"] for m in members if m["state"] == "InService"]
    if not in_service:
        ctx.pending(f"{where} has no instance in service")
    current = [i for i in in_service if i in live]
    if not current:
        ctx.pending(f"{where} has no instance of its current spec in service yet")
    instance_id = current[0]
    if not report or report.instance_id != instance_id:
        ctx.pending(f"{where} instance {instance_id} has not reported its bootstrap yet")
    stale = reports.staleness(report, ctx.settings.time_scale)
    if stale:
        ctx.pending(f"{where} instance {instance_id}: {stale}")
    failed_check = replica_check_failure(report.checks, config)
    if failed_check:
        ctx.pending(f"{where} instance {instance_id} reported ok but {failed_check}")
    state = load_balancer.load_balancer_state(ctx)
    if state != "active":
        ctx.pending(f"the load balancer is {state or 'not visible yet'}")
    health = load_balancer.target_health(ctx).get(instance_id)
    if health != "healthy":
        ctx.pending(f"{where} instance {instance_id} is {health or 'not registered'} in the NLB target group")
    ctx.store.etcd.update_member(
        ctx.name, replica, instance_id=instance_id, bootstrap="ok", healthy_spec=member.launch_spec
    )
    instance_roles.seal_init_claim(ctx)
    return {"replica": replica, "instanceId": instance_id}


def replica_problem(ctx: ClusterContext, member: EtcdMember) -> str | None:
    """What keeps a replica from being healthy right now, from live state (no waiting): an
    instance of its current launch template in service, whose own bootstrap report says ok.
    None when it is healthy."""
    if not member.asg_name:
        return f"replica {member.index} has no Auto Scaling group"
    live = instances.group_instances(ctx, member.asg_name)
    current = {m["id"] for m in live if m["state"] == "InService" and m["spec"] == member.launch_spec}
    if not current:
        running = ", ".join(f"{m['id']} ({m['state']})" for m in live) or "none"
        return f"replica {member.index} has no instance of its current launch template in service ({running})"
    report = ctx.store.reports.replica(ctx.uid, member.index)
    if report is None or report.instance_id not in current:
        return f"replica {member.index} instance {', '.join(sorted(current))} has not reported its bootstrap"
    if not report.ok:
        return f"replica {member.index} instance {report.instance_id} reported {report.status}"
    return None


def control_plane_problems(ctx: ClusterContext) -> list[str]:
    """Every replica's `replica_problem`: [] means the control plane is healthy now."""
    found = [replica_problem(ctx, member) for member in ctx.store.etcd.members(ctx.name)]
    return [problem for problem in found if problem]


def replica_check_failure(checks: dict, config: EtcdConfig | None) -> str | None:
    """What a replica's latest report must say it checked (docs/contracts.md, "Replica
    reports"): every etcd member started and etcd healthy, its API server ready. None when all
    hold; else the check that does not, in words."""
    wanted = config.members if config else None
    if checks.get("etcdMembers") != wanted:
        return f"its etcd has {checks.get('etcdMembers')} of {wanted} members (etcdMembers)"
    if checks.get("etcdHealthy") is not True:
        return "its etcd is not healthy (etcdHealthy)"
    if checks.get("apiserverReady") is not True:
        return "its API server is not ready (/readyz, apiserverReady)"
    return None


# ---------------------------------------------------------------- delete


@step(poll=VOLUMES_DELETED)
def delete_etcd_volumes(ctx: ClusterContext, scope: str, keep_etcd_volumes: bool) -> dict:
    """Delete the replicas' etcd volumes (unless asked to keep them for a restore). A volume an
    earlier delete kept (`gke:retained-by`) stays whoever deletes later, a sweep included:
    retained means retained, until a person deletes it."""
    volumes = ctx.ec2.describe_volumes(Filters=ctx.ec2_filters(scope, **{naming.TAG_ROLE: "etcd"}))["Volumes"]
    retained = [v["VolumeId"] for v in volumes if naming.TAG_RETAINED_BY in naming.tags_dict(v.get("Tags"))]
    if keep_etcd_volumes:
        kept = [v["VolumeId"] for v in volumes if v["VolumeId"] not in retained]
        if kept:  # kept on purpose (a restore): the orphan sweeper must not take them
            ctx.ec2.create_tags(Resources=kept, Tags=[{"Key": naming.TAG_RETAINED_BY, "Value": ctx.operation_id}])
        return {"kept": kept + retained}
    deleted = []
    for volume in (v for v in volumes if v["VolumeId"] not in retained):
        if volume["State"] == "in-use":
            ctx.pending(f"etcd volume {volume['VolumeId']} is still attached")
        try:
            ctx.ec2.delete_volume(VolumeId=volume["VolumeId"])
            deleted.append(volume["VolumeId"])
        except Exception as exc:
            if is_in_use(exc):
                ctx.pending(f"etcd volume {volume['VolumeId']} is busy")
            if not is_not_found(exc, Kind.VOLUME):
                raise
    return {"deleted": deleted, "kept": retained}


# ---------------------------------------------------------------- the kind: etcd volumes


def find_volumes(scope: Scope, uid: str | None) -> Iterator[Found]:
    """Every volume this service tagged: the etcd volumes, also those a delete kept
    (`gke:retained-by`), which the sweep reports and never deletes."""
    for v in scope.clients("ec2").describe_volumes(Filters=scope.ec2_filters(uid))["Volumes"]:
        tags = naming.tags_dict(v.get("Tags"))
        found = scope.found(
            uid,
            v["VolumeId"],
            tags,
            v.get("CreateTime"),
            zone=v["AvailabilityZone"],
            size=v["Size"],
            type=v["VolumeType"],
            encrypted=v["Encrypted"],
            state=v["State"],
            role=tags.get(naming.TAG_ROLE),
        )
        if found:
            yield found


def volume_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """Each replica's etcd volume the records name, gone."""
    members = [m for m in ctx.store.etcd.members(ctx.name) if m.volume_id]
    if not members:
        return {}
    ids = [m.volume_id for m in members]
    described = ctx.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": ids}])["Volumes"]
    present = {v["VolumeId"] for v in described}
    return {
        f"replica-{m.index}/etcd-volume": f"{MISSING} ({m.volume_id})" for m in members if m.volume_id not in present
    }


VOLUMES = ResourceKind(
    "volumes",
    label="EBS volume",
    find=find_volumes,
    ensure=("EnsureEtcdVolume",),
    delete=(DeleteStep(delete_etcd_volumes, args=(SCOPE, KEEP_ETCD_VOLUMES)),),
    drift=volume_drift,
)
