"""The steps of RestoreCluster (etcd's disaster recovery, `kubestep.restore`): its input,
identity and lock; the restore request the replicas read at boot; the control plane stopped
(every replica's group scaled to 0, the etcd volumes kept) and started again; the wait for
every replica to say it restored the snapshot; the request cleared; the nodes whose Node
objects the snapshot does not have replaced."""

from __future__ import annotations

from datetime import timedelta

from kubestep import restore
from kubestep.errors import BootstrapFailed, InvalidSpec, NotFound
from kubestep.flow.context import StepInput
from kubestep.flow.steps import Poll, step
from kubestep.resources import instances
from kubestep.resources.context import ClusterContext
from kubestep.store.backups import RestoreRequest
from kubestep.store.table import iso, now, parse_iso
from kubestep.workflows.identity import execution_running, own_operation

KIND = restore.KIND
# Auto Scaling terminates the replicas' instances (no lifecycle hook on a replica's group).
STOPPED = Poll(deadline=timedelta(minutes=15), interval=5, backoff=1.3, max_delay=20)
# Every replica boots, restores the snapshot and reports; the joins are queued one after another.
RESTORED = Poll(deadline=timedelta(minutes=30), interval=10, backoff=1.2, max_delay=20)


@step
def validate_restore_request(ctx: StepInput) -> dict:
    """First state: the cluster exists, is the incarnation the operation was started for (its
    record's uid, never the input's word), and the backup is one of that incarnation's."""
    request = restore.parse_restore_request(ctx.event.get("request"))
    record = ctx.store.clusters.require(request.cluster_name)
    started_for = ctx.store.operations.get(ctx.operation_id)
    if started_for is not None and started_for.uid and started_for.uid != record.uid:
        raise InvalidSpec(
            [
                (
                    "clusterName",
                    f"cluster {record.name!r} is uid {record.uid}, but this restore was started for uid "
                    f"{started_for.uid}, an earlier cluster of that name; nothing is restored",
                )
            ]
        )
    backup = restore.resolve_backup(ctx.store, record, request.backup_id)
    return {"clusterName": request.cluster_name, "backupId": backup.backup_id}


@step
def acquire_restore_lock(ctx: StepInput, cluster_name: str, backup_id: str) -> dict:
    """Prove who this execution is, take the cluster's lock (a busy cluster is refused), check
    the phase and the backup again under the lock, mark the cluster RECONCILING."""
    record = ctx.store.clusters.require(cluster_name)
    own_operation(ctx, KIND, cluster_name, uid=record.uid, parameters={"backupId": backup_id})
    ctx.store.locks.acquire(cluster_name, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    try:
        if record.current_operation != ctx.operation_id:  # a retried step finds its own phase
            restore.require_restorable(record)
        restore.resolve_backup(ctx.store, record, backup_id)
        record = ctx.store.clusters.update(cluster_name, phase="RECONCILING", current_operation=ctx.operation_id)
    except Exception:
        ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    ctx.store.events.record(
        cluster_name,
        "Normal",
        "Restoring",
        f"operation {ctx.operation_id} is restoring cluster {cluster_name}'s etcd from backup {backup_id}",
        f"AWSCluster/{cluster_name}",
        ctx.operation_id,
    )
    return {"uid": record.uid}


def _request(ctx: ClusterContext) -> RestoreRequest:
    found = ctx.store.backups.restore_request(ctx.uid)
    if found is None or found.operation_id != ctx.operation_id:
        raise NotFound(f"cluster {ctx.name}'s restore request of operation {ctx.operation_id} is gone")
    return found


@step
def record_restore_request(ctx: ClusterContext, backup_id: str) -> dict:
    """The request every replica reads at boot (`ACCESS#<uid>` / `RESTORE`, which the control
    plane's role may read): the snapshot, its SHA-256 and a new cluster token. A retried step
    keeps the token it wrote; an earlier restore's request that was never cleared is replaced."""
    backup = ctx.store.backups.get(ctx.uid, backup_id)
    policy = ctx.store.backups.policy(ctx.uid)
    if backup is None or policy is None:
        raise NotFound(f"cluster {ctx.name} (uid {ctx.uid}) has no backup {backup_id} (or no backup policy)")
    existing = ctx.store.backups.restore_request(ctx.uid)
    if existing is not None and existing.operation_id != ctx.operation_id:
        ctx.store.backups.clear_restore_request(ctx.uid)
    wanted = restore.restore_request(backup, policy.bucket, ctx.uid, ctx.operation_id, iso(now()))
    stored = ctx.store.backups.put_restore_request(ctx.uid, wanted)
    return {"backupId": stored.backup_id, "revision": stored.revision, "takenAt": backup.taken_at}


def _set_replica_groups(ctx: ClusterContext, size: int) -> list[int]:
    members = ctx.store.etcd.members(ctx.name)
    for member in members:
        if member.asg_name:
            ctx.autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=member.asg_name, MinSize=size, MaxSize=1, DesiredCapacity=size
            )
    return [member.index for member in members]


@step
def stop_control_plane(ctx: ClusterContext) -> dict:
    """Every replica's group to 0: Auto Scaling terminates the instances; the etcd volumes are
    separate EBS volumes, kept (a replica's next instance attaches its own again)."""
    replicas = _set_replica_groups(ctx, 0)
    ctx.event("Normal", "ControlPlaneStopping", f"stopping the {len(replicas)} control-plane replicas for the restore")
    return {"replicas": replicas}


@step(poll=STOPPED)
def wait_control_plane_stopped(ctx: ClusterContext) -> dict:
    """Every replica's group holds no instance: no member of the old etcd runs (a member still
    running would serve the data the restore replaces)."""
    for member in ctx.store.etcd.members(ctx.name):
        if not member.asg_name:
            continue
        left = instances.group_instances(ctx, member.asg_name)
        if left:
            running = ", ".join(f"{m['id']} ({m['state']})" for m in left)
            ctx.pending(f"replica {member.index}'s group {member.asg_name} still holds {running}")
    return {"stopped": True}


@step
def start_control_plane(ctx: ClusterContext) -> dict:
    """Every replica's group back to 1: each new instance attaches its replica's etcd volume and
    restores the snapshot on it before etcd starts."""
    replicas = _set_replica_groups(ctx, 1)
    ctx.event("Normal", "ControlPlaneStarting", f"starting the {len(replicas)} replicas from the restored snapshot")
    return {"replicas": replicas}


@step(poll=RESTORED)
def wait_replicas_restored(ctx: ClusterContext) -> dict:
    """Every replica's report, from an instance its group runs now, says it restored this
    request's snapshot (the new cluster token); a replica that could not (a bad checksum, no
    object) fails the restore at once, saying why."""
    request = _request(ctx)
    restored: dict[int, str] = {}
    for member in ctx.store.etcd.members(ctx.name):
        assert member.asg_name
        members = instances.group_instances(ctx, member.asg_name)
        live = {m["id"] for m in members if not instances.going_away(m["state"])}
        report = ctx.store.reports.replica(ctx.uid, member.index)
        if report is None or report.instance_id not in live:
            ctx.pending(f"replica {member.index} has not reported from a new instance yet")
        if report.failed_phase:
            raise BootstrapFailed(f"replica {member.index} instance {report.instance_id} failed {report.failed_phase}")
        error = report.checks.get(restore.RESTORE_ERROR)
        if error:
            raise BootstrapFailed(f"replica {member.index} instance {report.instance_id} could not restore: {error}")
        if report.checks.get(restore.RESTORED_TOKEN) != request.cluster_token:
            ctx.pending(f"replica {member.index} instance {report.instance_id} has not restored the snapshot yet")
        restored[member.index] = report.instance_id
    return {"restored": {str(k): v for k, v in restored.items()}}


@step
def clear_restore_request(ctx: ClusterContext) -> dict:
    """Every replica passed the health gate on the restored data: the request goes (a replica
    replaced later joins the running cluster, it does not restore), the new token is the
    cluster's."""
    found = ctx.store.backups.restore_request(ctx.uid)
    if found is not None and found.operation_id == ctx.operation_id:
        ctx.store.etcd.set_cluster_token(ctx.name, found.cluster_token)
        ctx.store.backups.clear_restore_request(ctx.uid)
    return {"cleared": found is not None}


@step
def replace_nodes_after_snapshot(ctx: ClusterContext, node_pool: str, taken_at: str) -> dict:
    """The pool's nodes launched after the snapshot are replaced: their Node objects are not in
    the restored etcd, and a kubelet registers its Node only when it starts. The others keep
    running (their Node objects came back with the snapshot)."""
    pool = ctx.store.node_pools.require(ctx.name, node_pool)
    if not pool.asg_name:
        return {"replaced": []}
    members = [m for m in instances.group_instances(ctx, pool.asg_name) if not instances.going_away(m["state"])]
    if not members:
        return {"replaced": []}
    snapshot = parse_iso(taken_at)
    described = ctx.ec2.describe_instances(InstanceIds=[m["id"] for m in members])
    launched = {i["InstanceId"]: i["LaunchTime"] for r in described["Reservations"] for i in r["Instances"]}
    newer = sorted(i for i, at in launched.items() if restore.launched_after(at, snapshot))
    for instance_id in newer:
        instances.terminate_in_group(ctx, instance_id, decrement=False)
    if newer:
        ctx.event(
            "Normal",
            "ReplacingNodes",
            f"node pool {node_pool}: replacing {', '.join(newer)}, launched after the snapshot ({taken_at})",
        )
    return {"replaced": newer}


@step
def record_restore(ctx: ClusterContext, backup_id: str, revision: int, taken_at: str) -> dict:
    ctx.event(
        "Normal",
        "Restored",
        f"etcd restored from backup {backup_id} (taken {taken_at}, revision {revision}) on every replica",
    )
    ctx.store.operations.set(ctx.operation_id, progress={"backupId": backup_id, "revision": revision})
    return {"backupId": backup_id}


@step
def abandon_restore(ctx: StepInput, cluster_name: str) -> dict:
    """A failed restore: its request goes (a replica booting later must not restore a snapshot
    nobody waits for) and every replica's group is back to 1, so the control plane is not left
    stopped; `kubestep repair cluster` or another restore takes it from there."""
    record = ctx.store.clusters.get(cluster_name)
    if record is None:
        return {"abandoned": False}
    cluster = ClusterContext(ctx.settings, ctx.store, cluster_name, ctx.operation_id)
    found = ctx.store.backups.restore_request(record.uid)
    if found is not None and found.operation_id == ctx.operation_id:
        ctx.store.backups.clear_restore_request(record.uid)
    _set_replica_groups(cluster, 1)
    return {"abandoned": True}
