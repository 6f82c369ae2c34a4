"""The operation-level steps of the lifecycle workflows (CreateNodePool, UpdateNodePool,
DeleteNodePool, UpdateCluster): validate against the running cluster, prove the execution's
identity and take the cluster's lock, record the target spec, finish. The resource steps live
in `kubestep.resources` (node_pools, node_pool_rollout, control_plane_rollout)."""

from __future__ import annotations

from typing import Any

from kubestep import lifecycle, preflight, recovery, upgrades
from kubestep.errors import AlreadyExists, ClusterNotReady, InvalidSpec, LockHeld, NotFound
from kubestep.flow.context import StepInput
from kubestep.flow.steps import step
from kubestep.models import CreateNodePoolRequest, DeleteNodePoolRequest, UpdateClusterRequest, UpdateNodePoolRequest
from kubestep.resources import control_plane
from kubestep.resources.context import ClusterContext
from kubestep.store import ClusterRecord, NodePoolRecord, Store
from kubestep.validation import (
    capacity_problems,
    node_pool_problems,
    parse,
    refuse_identity_fields,
    tag_budget_problems,
)
from kubestep.workflows.identity import execution_running, own_operation

# Phases in which a cluster takes lifecycle operations (not while it is created or deleted).
OPERABLE = ("RUNNING", "DEGRADED", "RECONCILING")


def _operable(store: Store, name: str) -> ClusterRecord:
    record = store.clusters.require(name)
    if record.phase not in OPERABLE:
        lock = store.locks.get(name)
        if lock is not None:
            raise LockHeld(f"cluster {name}", lock.to_item())
        failed = record.last_error.operation_id if record.last_error else None
        operation = store.operations.get(failed) if failed else None
        hint = recovery.advice(name, record.phase, operation.kind if operation else None)
        raise ClusterNotReady(f"cluster {name!r} is {record.phase}: {hint}")
    return record


def _lock(ctx: StepInput, kind: str, cluster: str, **parameters: Any) -> ClusterRecord:
    record = ctx.store.clusters.require(cluster)
    own_operation(ctx, kind, cluster, uid=record.uid, parameters=parameters)
    ctx.store.locks.acquire(cluster, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    return record


def _event(ctx: StepInput, cluster: str, reason: str, message: str, involved: str | None = None) -> None:
    ctx.store.events.record(cluster, "Normal", reason, message, involved or f"AWSCluster/{cluster}", ctx.operation_id)


# ---------------------------------------------------------------- node pools: create


def parse_create_node_pool(ctx: StepInput | Any, data: Any) -> CreateNodePoolRequest:
    """Every rule a new node pool must keep against its running cluster and the other pools."""
    refuse_identity_fields(data)
    request = parse(CreateNodePoolRequest, data)
    record = _operable(ctx.store, request.cluster_name)
    pool = request.node_pool
    if ctx.store.node_pools.get(request.cluster_name, pool.name) is not None:
        raise AlreadyExists(f"node pool {pool.name!r} of cluster {request.cluster_name!r} already exists")
    others = [p.spec for p in ctx.store.node_pools.list(request.cluster_name)]
    field = "nodePool"
    problems = [(f"{field}{f}", r) for f, r in node_pool_problems(ctx.settings.service, record.spec, pool, "")]
    problems += capacity_problems(
        ctx.settings.service, record.spec, [(field, pool)], existing_pools=others, launching_pools=[(field, pool)]
    )
    problems += tag_budget_problems(ctx.settings.service, record.spec, [(field, pool)])
    if problems:
        raise InvalidSpec(problems)
    network = ctx.store.network.ready(ctx.settings.service_name)
    launches = preflight.launches_for(0, None, [(field, pool)])
    found = preflight.reference_problems(ctx.settings, network.vpc_id, None, [(field, pool)], launches, record.uid)
    if found:
        raise InvalidSpec(found)
    return request


@step
def validate_create_node_pool(ctx: StepInput) -> dict:
    """First state: the pool fits its cluster; nothing is created on bad input."""
    request = parse_create_node_pool(ctx, ctx.event.get("request"))
    return {
        "clusterName": request.cluster_name,
        "nodePool": request.node_pool.name,
        "rollbackOnFailure": request.rollback_on_failure,
    }


@step
def acquire_create_node_pool_lock(ctx: StepInput, cluster_name: str) -> dict:
    """Identity, the cluster's lock, the pool's record."""
    request = parse(CreateNodePoolRequest, ctx.event.get("request"))
    pool = request.node_pool
    _lock(ctx, "CreateNodePool", cluster_name, nodePool=pool.name)
    try:
        added = ctx.store.node_pools.add(
            NodePoolRecord(
                name=pool.name, cluster=cluster_name, spec=pool, version=pool.spec.version, created_by=ctx.operation_id
            )
        )
        existing = ctx.store.node_pools.require(cluster_name, pool.name)
        if not added and existing.created_by != ctx.operation_id:
            raise AlreadyExists(f"node pool {pool.name!r} of cluster {cluster_name!r} already exists")
        ctx.store.clusters.update(cluster_name, phase="RECONCILING", current_operation=ctx.operation_id)
    except Exception:
        # This step runs outside the workflow's Catch: a record it added, with nothing made yet,
        # would otherwise refuse the next attempt ("already exists").
        try:
            mine = ctx.store.node_pools.get(cluster_name, pool.name)
            if mine is not None and mine.created_by == ctx.operation_id and not mine.asg_name:
                ctx.store.node_pools.delete(cluster_name, pool.name)
        finally:
            ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    _event(ctx, cluster_name, "NodePoolCreating", f"operation {ctx.operation_id} is adding node pool {pool.name}")
    return {"nodePool": pool.name}


def _phase_now(ctx: ClusterContext) -> str:
    """RUNNING only when the control plane is healthy now (its replicas' live instances and
    reports): a node-pool operation does not make a DEGRADED cluster well."""
    return "DEGRADED" if control_plane.control_plane_problems(ctx) else "RUNNING"


@step
def forget_node_pool(ctx: ClusterContext, node_pool: str) -> dict:
    """Compensation's last word: the record of a pool this operation created goes."""
    record = ctx.store.node_pools.get(ctx.name, node_pool)
    if record is not None and record.created_by == ctx.operation_id:
        ctx.store.node_pools.delete(ctx.name, node_pool)
    ctx.store.clusters.update(ctx.name, phase=_phase_now(ctx), current_operation=None)
    return {"forgotten": record is not None}


@step
def finish_node_pool_operation(ctx: ClusterContext) -> dict:
    """The cluster is back as it was (RUNNING if its control plane is healthy now), the
    operation SUCCEEDED, the lock released."""
    phase = _phase_now(ctx)
    fields: dict[str, Any] = {"phase": phase, "current_operation": None}
    if phase == "RUNNING":
        fields["last_error"] = None
    ctx.store.clusters.update(ctx.name, **fields)
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    return {"released": ctx.store.locks.release(ctx.name, ctx.operation_id)}


# ---------------------------------------------------------------- node pools: update


def plan_node_pool_update(ctx: StepInput | Any, data: Any) -> tuple[UpdateNodePoolRequest, lifecycle.PoolPlan]:
    refuse_identity_fields(data)
    request = parse(UpdateNodePoolRequest, data)
    record = _operable(ctx.store, request.cluster_name)
    pool = ctx.store.node_pools.require(request.cluster_name, request.node_pool)
    others = [p.spec for p in ctx.store.node_pools.list(request.cluster_name) if p.name != pool.name]
    plan = lifecycle.plan_node_pool_change(
        ctx.settings.service, record.spec, record.version, pool.spec, request.changes, others
    )
    _check_new_references(ctx, record, pool=request.changes, prefix="changes")
    return request, plan


@step
def validate_update_node_pool(ctx: StepInput) -> dict:
    """First state: the change keeps every rule (skew, ranges, tags); nothing changes otherwise."""
    request, plan = plan_node_pool_update(ctx, ctx.event.get("request"))
    return {"clusterName": request.cluster_name, "nodePool": request.node_pool, "rolls": plan.rolls}


@step
def acquire_update_node_pool_lock(ctx: StepInput, cluster_name: str) -> dict:
    """Identity, the cluster's lock, the pool's target spec."""
    request, plan = plan_node_pool_update(ctx, ctx.event.get("request"))
    _lock(ctx, "UpdateNodePool", cluster_name, nodePool=request.node_pool)
    try:
        ctx.store.node_pools.update(cluster_name, request.node_pool, target_spec=plan.target, phase="RECONCILING")
        ctx.store.clusters.update(cluster_name, phase="RECONCILING", current_operation=ctx.operation_id)
    except Exception:
        ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    what = "rolling it" if plan.rolls else "in place"
    _event(
        ctx,
        cluster_name,
        "NodePoolUpdating",
        f"operation {ctx.operation_id} is changing node pool {request.node_pool} ({what}): "
        + "; ".join(c.line() for c in plan.changes[:10]),
        f"AWSNodePool/{request.node_pool}",
    )
    return {"nodePool": request.node_pool}


# ---------------------------------------------------------------- node pools: delete


def parse_delete_node_pool(ctx: StepInput | Any, data: Any) -> DeleteNodePoolRequest:
    refuse_identity_fields(data)
    request = parse(DeleteNodePoolRequest, data)
    _operable(ctx.store, request.cluster_name)
    ctx.store.node_pools.require(request.cluster_name, request.node_pool)
    return request


@step
def validate_delete_node_pool(ctx: StepInput) -> dict:
    request = parse_delete_node_pool(ctx, ctx.event.get("request"))
    return {"clusterName": request.cluster_name, "nodePool": request.node_pool}


@step
def acquire_delete_node_pool_lock(ctx: StepInput, cluster_name: str, node_pool: str) -> dict:
    _lock(ctx, "DeleteNodePool", cluster_name, nodePool=node_pool)
    try:
        ctx.store.node_pools.update(cluster_name, node_pool, phase="STOPPING")
        ctx.store.clusters.update(cluster_name, phase="RECONCILING", current_operation=ctx.operation_id)
    except NotFound:
        ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    _event(ctx, cluster_name, "NodePoolDeleting", f"operation {ctx.operation_id} is deleting node pool {node_pool}")
    return {"nodePool": node_pool}


@step
def delete_node_pool_record(ctx: ClusterContext, node_pool: str) -> dict:
    ctx.store.node_pools.delete(ctx.name, node_pool)
    ctx.event("Normal", "NodePoolDeleted", f"node pool {node_pool} and its AWS resources are deleted")
    return {"deleted": node_pool}


# ---------------------------------------------------------------- the control plane


def plan_cluster_update(ctx: StepInput | Any, data: Any) -> tuple[UpdateClusterRequest, lifecycle.ClusterPlan]:
    refuse_identity_fields(data)
    request = parse(UpdateClusterRequest, data)
    record = _operable(ctx.store, request.cluster_name)
    pools = [p.spec for p in ctx.store.node_pools.list(request.cluster_name)]
    plan = lifecycle.plan_cluster_change(
        ctx.settings.service, record.spec, pools, request, resume=record.phase == "DEGRADED"
    )
    _check_new_references(ctx, record, control_plane=request.control_plane, prefix="controlPlane")
    return request, plan


def _check_new_references(ctx: StepInput | Any, record: ClusterRecord, **changes: Any) -> None:
    """What an update introduces passes the create's preflight: it exists, and it is the
    account's own or this cluster incarnation's (never another cluster's profile or group)."""
    network = ctx.store.network.ready(ctx.settings.service_name)
    found = preflight.change_reference_problems(ctx.settings, network.vpc_id, record.uid, **changes)
    if found:
        raise InvalidSpec(found)


@step
def validate_update_cluster(ctx: StepInput) -> dict:
    """First state: the change keeps every rule (one minor at a time, never down, pools within
    two minors and never newer); nothing changes otherwise. A one-off schedule's run whose
    cluster is gone, is another incarnation of the name, or no longer fits records why on the
    schedule and does nothing."""
    data = ctx.event.get("request")
    schedule = upgrades.scheduled_run(ctx.store, ctx.operation_id, data)
    stale = upgrades.stale_schedule(ctx.store, schedule) if schedule else None
    try:
        if stale:
            raise ClusterNotReady(stale)
        request, plan = plan_cluster_update(ctx, data)
    except (InvalidSpec, NotFound, LockHeld, ClusterNotReady) as exc:
        if schedule is None:
            raise
        ctx.store.schedules.record_outcome(schedule.schedule_id, f"skipped: {exc}", None)
        return {"skip": True, "reason": str(exc)[:500]}
    return {
        "skip": False,
        "clusterName": request.cluster_name,
        "rolls": plan.rolls,
        "nodePools": plan.node_pools,
    }


@step
def acquire_update_cluster_lock(ctx: StepInput, cluster_name: str) -> dict:
    """Identity, the cluster's lock, the target spec on the record."""
    data = ctx.event.get("request")
    schedule = upgrades.scheduled_run(ctx.store, ctx.operation_id, data)
    stale = upgrades.stale_schedule(ctx.store, schedule) if schedule else None
    if schedule is not None and stale:  # the cluster changed since the first state: still nothing
        ctx.store.schedules.record_outcome(schedule.schedule_id, f"skipped: {stale}", None)
        raise ClusterNotReady(stale)
    request, plan = plan_cluster_update(ctx, data)
    version = plan.target.spec.control_plane.version
    try:
        _lock(ctx, "UpdateCluster", cluster_name, version=version, nodePools=plan.node_pools)
    except Exception as exc:
        if schedule is not None:
            ctx.store.schedules.record_outcome(schedule.schedule_id, f"skipped: {exc}", None)
        raise
    try:
        ctx.store.clusters.update(
            cluster_name, target_spec=plan.target, phase="RECONCILING", current_operation=ctx.operation_id
        )
    except Exception:
        ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    if schedule is not None:
        ctx.store.schedules.record_outcome(schedule.schedule_id, "started", ctx.operation_id)
    _event(
        ctx,
        cluster_name,
        "Updating",
        f"operation {ctx.operation_id} is updating cluster {cluster_name}: "
        + ("; ".join(c.line() for c in plan.changes[:10]) or "node pools only")
        + (f"; then node pools {', '.join(plan.node_pools)}" if plan.node_pools else ""),
    )
    return {"version": version}


@step
def prepare_node_pool_upgrade(ctx: ClusterContext, node_pool: str) -> dict:
    """After the control plane: the pool's target is its spec at the control plane's version."""
    record = ctx.store.node_pools.require(ctx.name, node_pool)
    target = record.spec.model_copy(
        update={"spec": record.spec.spec.model_copy(update={"version": ctx.record.version})}
    )
    ctx.store.node_pools.update(ctx.name, node_pool, target_spec=target, phase="RECONCILING")
    return {"nodePool": node_pool, "version": ctx.record.version}
