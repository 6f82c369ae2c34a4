"""Rolling the control plane to a new spec (version, instance type, image, …) one replica at a
time, unhealthy replicas first (kOps' and GKE on AWS's way: never move on before a replaced
replica is healthy, or etcd's quorum is at risk). Each replica keeps its Auto Scaling group, its etcd
volume and its stable name: its group launches the new template version, the new instance
attaches the same volume and takes the same name, and rejoins as the same etcd member with its
data. The health gate (`check_replica_health`) is the same as a create's, for the new instance.

A replica whose gate fails stops the roll (the workflow marks the cluster DEGRADED, naming the
replica and the check); the replicas after it are untouched. The next update replaces only
replicas not running the target spec healthily: it resumes where this one stopped, and still
passes every replica through the gate."""

from __future__ import annotations

from kubestep.flow.steps import step
from kubestep.resources import control_plane, instances
from kubestep.resources.context import ClusterContext


@step(creates=True)
def plan_control_plane_roll(ctx: ClusterContext) -> dict:
    """A new launch template version per replica for the target spec, and every replica in the
    roll, those not healthy on the target first: each is replaced unless an instance of the
    target spec that has not failed is there already, and each passes the health gate over its
    live instance. A replica's record (a spec it once passed with) never stands in for the gate:
    RUNNING comes only from gates over what runs now."""
    assert ctx.record.target_spec is not None, "AcquireLock records the target spec"
    members = []
    for member in ctx.store.etcd.members(ctx.name):
        template = control_plane.replica_launch_template(ctx, member.index)
        assert member.asg_name
        instances.set_group_spec(ctx, member.asg_name, template.spec)
        members.append(ctx.store.etcd.require_member(ctx.name, member.index))
    members.sort(key=lambda m: (control_plane.replica_problem(ctx, m) is None, m.index))
    order = [m.index for m in members]
    ctx.event("Normal", "RollingControlPlane", f"checking replicas {order} one at a time, unhealthy first")
    return {"replicas": order}


@step
def replace_replica(ctx: ClusterContext, replica: int) -> dict:
    """Replace the replica's instance unless one of its target spec is already there (and has
    not reported a failure): Auto Scaling launches the replacement from the new version."""
    member = ctx.store.etcd.require_member(ctx.name, replica)
    assert member.asg_name and member.launch_spec
    members = instances.group_instances(ctx, member.asg_name)
    report = ctx.store.reports.replica(ctx.uid, replica)
    failed = report.instance_id if report and report.failed_phase else None
    current = [
        m for m in members if m["spec"] == member.launch_spec and m["id"] != failed and "Terminat" not in m["state"]
    ]
    replaced = []
    if not current:
        for old in members:
            if "Terminat" in old["state"]:
                continue
            instances.terminate_in_group(ctx, old["id"], decrement=False)
            replaced.append(old["id"])
        ctx.event(
            "Normal", "ReplacingReplica", f"replica {replica}: replacing instance(s) {replaced} with the new spec"
        )
    return {"replica": replica, "replaced": replaced}


@step
def adopt_control_plane_spec(ctx: ClusterContext) -> dict:
    """Every replica passed its gate on the target spec: it is the cluster's spec now."""
    target = ctx.record.target_spec or ctx.spec
    version = target.spec.control_plane.version
    ctx.store.clusters.update(ctx.name, spec=target, version=version, target_spec=None)
    ctx.event("Normal", "ControlPlaneUpdated", f"the control plane runs its new spec (Kubernetes {version})")
    return {"version": version}
