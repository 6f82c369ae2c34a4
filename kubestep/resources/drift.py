"""Drift: what a cluster's AWS resources look like against what kubestep made, after people
changed or deleted things by hand, and what runs against what the spec says.

`detect` compares every resource the cluster's records name with what AWS has: the three
security groups and their rules, the NLB, its target group and listener, the secrets, the
instance roles and profiles, each replica's etcd volume, launch template and Auto Scaling group
(its launch template, size limits and target group), each node pool's launch template and
group, and the live instances of each (their type, launch template version and reports, and the
instances the records name). It changes nothing. `RepairCluster` records what it found on the cluster record
(`drift`, shown by `kubestep describe`), runs the create steps again (they recreate what is
missing and reconcile what changed), rolls the instances whose launch template changed, and
reports what it changed."""

from __future__ import annotations

from kubestep import naming
from kubestep.aws.errors import Kind, is_not_found
from kubestep.errors import KubestepError
from kubestep.flow.steps import step
from kubestep.resources import instances, security_groups
from kubestep.resources.context import ClusterContext
from kubestep.store import EtcdMember, NodePoolRecord, Resource

MISSING = "missing"


def _exists(call: object, kind: Kind) -> bool:
    try:
        call()  # type: ignore[operator]
        return True
    except Exception as exc:
        if is_not_found(exc, kind):
            return False
        raise


def _security_groups(ctx: ClusterContext) -> dict[str, str]:
    found: dict[str, str] = {}
    names = {naming.security_group(ctx.uid, p): p for p in security_groups.PURPOSES}
    groups = ctx.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [ctx.vpc_id]}, {"Name": "group-name", "Values": list(names)}]
    )["SecurityGroups"]
    by_purpose = {names[g["GroupName"]]: g for g in groups}
    for purpose in security_groups.PURPOSES:
        if purpose not in by_purpose:
            found[security_groups.LOGICAL[purpose].value] = MISSING
    if len(by_purpose) < len(security_groups.PURPOSES):
        return found  # the rules name the missing group: the repair makes both
    ids = {purpose: g["GroupId"] for purpose, g in by_purpose.items()}
    wanted = security_groups.rules(ids, ctx.vpc_cidr, ctx.spec.spec.networking.node_port_range)
    for purpose, permissions in wanted.items():
        group = by_purpose[purpose]
        present = {key for p in group.get("IpPermissions", []) for key in security_groups.rule_keys(p)}
        lost = [
            key for permission in permissions for key in security_groups.rule_keys(permission) if key not in present
        ]
        if lost:
            rules = ", ".join(f"{proto} {low}-{high} from {source}" for proto, low, high, source in lost)
            found[security_groups.LOGICAL[purpose].value] = f"rules missing: {rules}"
    return found


def _load_balancer(ctx: ClusterContext) -> dict[str, str]:
    found: dict[str, str] = {}
    lb_name, tg_name = naming.load_balancer(ctx.uid), naming.target_group(ctx.uid)
    lbs: list[dict] = []
    try:
        lbs = ctx.elbv2.describe_load_balancers(Names=[lb_name])["LoadBalancers"]
    except Exception as exc:
        if not is_not_found(exc, Kind.LOAD_BALANCER):
            raise
    tgs: list[dict] = []
    try:
        tgs = ctx.elbv2.describe_target_groups(Names=[tg_name])["TargetGroups"]
    except Exception as exc:
        if not is_not_found(exc, Kind.TARGET_GROUP):
            raise
    if not lbs:
        found[Resource.NLB.value] = MISSING
    if not tgs:
        found[Resource.TARGET_GROUP.value] = MISSING
    if lbs:
        listeners = ctx.elbv2.describe_listeners(LoadBalancerArn=lbs[0]["LoadBalancerArn"])["Listeners"]
        listener = next((li for li in listeners if li["Port"] == 443), None)
        if listener is None:
            found[Resource.LISTENER.value] = MISSING
        elif tgs and [a.get("TargetGroupArn") for a in listener["DefaultActions"]] != [tgs[0]["TargetGroupArn"]]:
            found[Resource.LISTENER.value] = "forwards to another target group"
    return found


def _secrets_and_roles(ctx: ClusterContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for logical, name in (
        (Resource.CONTROL_PLANE_SECRET, naming.control_plane_secret(ctx.uid)),
        (Resource.NODE_SECRET, naming.node_secret(ctx.uid)),
    ):
        try:
            secret = ctx.secretsmanager.describe_secret(SecretId=name)
            if secret.get("DeletedDate"):
                found[logical.value] = "scheduled for deletion (restore it: aws secretsmanager restore-secret)"
        except Exception as exc:
            if not is_not_found(exc, Kind.SECRET):
                raise
            found[logical.value] = MISSING
    from kubestep.resources.instance_roles import _iam

    iam = _iam(ctx)
    for role, (role_logical, profile_logical) in (
        (naming.ROLE_CONTROL_PLANE, (Resource.CONTROL_PLANE_ROLE, Resource.CONTROL_PLANE_PROFILE)),
        (naming.ROLE_NODE, (Resource.NODE_ROLE, Resource.NODE_PROFILE)),
    ):
        name = naming.instance_role(ctx.uid, role)
        if not _exists(lambda n=name: iam.get_role(RoleName=n), Kind.IAM_ENTITY):
            found[role_logical.value] = MISSING
        if not _exists(lambda n=name: iam.get_instance_profile(InstanceProfileName=n), Kind.IAM_ENTITY):
            found[profile_logical.value] = MISSING
    return found


def _template_exists(ctx: ClusterContext, template_id: str | None) -> bool:
    if not template_id:
        return False
    return _exists(lambda: ctx.ec2.describe_launch_templates(LaunchTemplateIds=[template_id]), Kind.LAUNCH_TEMPLATE)


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


def _instances(ctx: ClusterContext, target_group: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    members = ctx.store.etcd.members(ctx.name)
    pools = ctx.store.node_pools.list(ctx.name)
    names = [m.asg_name for m in members if m.asg_name] + [p.asg_name for p in pools if p.asg_name]
    groups: dict[str, dict] = {}
    for start in range(0, len(names), 50):
        page = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names[start : start + 50])
        groups.update({g["AutoScalingGroupName"]: g for g in page["AutoScalingGroups"]})
    volume_ids = [m.volume_id for m in members if m.volume_id]
    volumes = set()
    if volume_ids:
        described = ctx.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": volume_ids}])["Volumes"]
        volumes = {v["VolumeId"] for v in described}
    for member in members:
        where = f"replica-{member.index}"
        if member.volume_id and member.volume_id not in volumes:
            found[f"{where}/etcd-volume"] = f"{MISSING} ({member.volume_id})"
        if member.launch_template_id and not _template_exists(ctx, member.launch_template_id):
            found[f"{where}/launch-template"] = f"{MISSING} ({member.launch_template_id})"
        if member.asg_name:
            tgs = [target_group] if target_group else []
            drift = _group_drift(groups.get(member.asg_name), member.launch_template_id, (1, 1), tgs)
            if drift:
                found[f"{where}/asg"] = drift
    for pool in pools:
        where = f"nodepool-{pool.name}"
        if pool.launch_template_id and not _template_exists(ctx, pool.launch_template_id):
            found[f"{where}/launch-template"] = f"{MISSING} ({pool.launch_template_id})"
        if pool.asg_name:
            limits = (pool.spec.spec.min_node_count, pool.spec.spec.max_node_count)
            drift = _group_drift(groups.get(pool.asg_name), pool.launch_template_id, limits, [])
            if drift:
                found[f"{where}/asg"] = drift
    return found


# Drift in what runs (an instance of another type, a failed report, the record naming an instance
# that is gone): what an update's roll and its health gate put right themselves.
INSTANCE_DRIFT_SUFFIXES = ("/instance", "/instances")


def _replica_running(ctx: ClusterContext, member: EtcdMember) -> str:
    """What differs between a replica's spec and record and its live instance."""
    live = [m for m in instances.group_instances(ctx, member.asg_name or "") if "Terminat" not in m["state"]]
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
    in_service = sorted(m["id"] for m in live if m["state"] == "InService")
    if member.instance_id and member.instance_id not in in_service:
        serving = ", ".join(in_service) or "none"
        changes.append(f"the record names {member.instance_id}, which is not in service ({serving} is)")
    report = ctx.store.reports.replica(ctx.uid, member.index)
    if report and report.failed_phase and report.instance_id in in_service:
        changes.append(f"{report.instance_id} reported {report.status}")
    return "; ".join(changes)


def _pool_running(ctx: ClusterContext, pool: NodePoolRecord) -> str:
    live = [m for m in instances.group_instances(ctx, pool.asg_name or "") if "Terminat" not in m["state"]]
    wanted = pool.spec.spec.instance_type
    others = sorted({m["type"] for m in live if m["type"] != wanted})
    stale = [m["id"] for m in live if pool.launch_spec and m["spec"] != pool.launch_spec]
    changes = [f"runs {', '.join(others)} where the spec says {wanted}"] if others else []
    if stale:
        changes.append(f"{', '.join(stale)} launched from another launch template version than the pool's")
    return "; ".join(changes)


def _running(ctx: ClusterContext, present: dict[str, str]) -> dict[str, str]:
    """Compare the spec with what runs: each replica's and node pool's live instances (their type,
    the launch template version they came from, their reports, the instances the records name).
    Groups already found missing or changed are skipped: the repair makes them again first."""
    found: dict[str, str] = {}
    for member in ctx.store.etcd.members(ctx.name):
        if member.asg_name and f"replica-{member.index}/asg" not in present:
            drift = _replica_running(ctx, member)
            if drift:
                found[f"replica-{member.index}/instance"] = drift
    for pool in ctx.store.node_pools.list(ctx.name):
        if pool.asg_name and f"nodepool-{pool.name}/asg" not in present and not pool.target_spec:
            drift = _pool_running(ctx, pool)
            if drift:
                found[f"nodepool-{pool.name}/instances"] = drift
    return found


def detect(ctx: ClusterContext) -> dict[str, str]:
    """Logical resource -> what differs ("missing", "rules missing: ...", "size 0..0 ...", "runs
    m5.xlarge where the spec says m5.large"); {} when everything kubestep made is there as it
    made it and runs what the spec says."""
    found = _security_groups(ctx)
    found.update(_load_balancer(ctx))
    found.update(_secrets_and_roles(ctx))
    tg = ctx.resource_id(Resource.TARGET_GROUP)
    found.update(_instances(ctx, tg if Resource.TARGET_GROUP.value not in found else None))
    found.update(_running(ctx, found))
    return dict(sorted(found.items()))


class DriftDetected(KubestepError):
    """What an operation needs was deleted or changed by hand: `kubestep repair cluster` first."""


@step
def check_for_drift(ctx: ClusterContext) -> dict:
    """Before an update changes anything: every resource it works with is there as kubestep made
    it (a replica group deleted by hand would fail the roll half-way). What runs may differ (an
    instance of another type, a failed one): the roll and its gate put that right."""
    drift = {k: v for k, v in detect(ctx).items() if not k.endswith(INSTANCE_DRIFT_SUFFIXES)}
    if drift:
        ctx.store.clusters.set_drift(ctx.name, drift)
        raise DriftDetected(
            f"cluster {ctx.name} differs from what kubestep made ({summary(drift)}): run `kubestep repair cluster "
            f"{ctx.name}` to restore it, then this update again; nothing was changed"
        )
    return {"drift": {}}


def summary(drift: dict[str, str]) -> str:
    return "; ".join(f"{key}: {what}" for key, what in drift.items())


class RepairImpossible(KubestepError):
    """What is lost cannot be made again without breaking the cluster (its CA keys)."""


@step
def detect_drift(ctx: ClusterContext) -> dict:
    """Compare the cluster's AWS resources with its records; record what differs on the cluster
    record (`drift`) and in a Warning event. Changes nothing in AWS. A lost control-plane
    secret stops the repair: new CA keys would make every instance's certificates worthless."""
    drift = detect(ctx)
    ctx.store.clusters.set_drift(ctx.name, drift)
    if drift:
        ctx.event(
            "Warning", "DriftDetected", f"{len(drift)} resources differ from what kubestep made: {summary(drift)}"
        )
    else:
        ctx.event("Normal", "NoDrift", "every resource kubestep made is there as it made it")
    lost = drift.get(Resource.CONTROL_PLANE_SECRET.value)
    if lost:
        raise RepairImpossible(
            f"the control-plane secret {naming.control_plane_secret(ctx.uid)} is {lost}: it holds the cluster's CA "
            "keys, which cannot be made again; restore it, or delete the cluster and create it anew"
        )
    return {"found": drift}
