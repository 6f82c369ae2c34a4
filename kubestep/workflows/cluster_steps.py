"""The operation-level steps of cluster workflows: validate the input, prove the execution's
identity and take the cluster's lock, record success or failure, release the lock. The
resource steps live with their AWS resource kind in `kubestep.resources`."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from typing import Any

from kubestep import backup_deletion, preflight, recovery
from kubestep.aws import client
from kubestep.errors import AlreadyExists, BootstrapFailed, InvalidSpec, NotFound, ResourceTimeout
from kubestep.flow.context import StepInput
from kubestep.flow.steps import Poll, step
from kubestep.resources import control_plane, instances, subnet_tags
from kubestep.resources.context import ClusterContext
from kubestep.store import ClusterRecord, NetworkRecord, NodePoolRecord, Operation, iso, now, parse_iso
from kubestep.validation import admins_problems, parse_create_request, parse_delete_request, replica_count
from kubestep.workflows.identity import execution_running, own_operation

# ---------------------------------------------------------------- create


@step
def validate_create_request(ctx: StepInput) -> dict:
    """First state: nothing is created on bad input, or on input naming what does not exist."""
    request = parse_create_request(ctx.settings.service, ctx.event.get("request"))
    problems = admins_problems(request)
    if problems:
        raise InvalidSpec(problems)
    network = ctx.store.network.ready(ctx.settings.service_name)
    check_references(ctx.settings, network, request)
    return {"clusterName": request.cluster.name, "rollbackOnFailure": request.rollback_on_failure}


def check_references(settings: Any, network: NetworkRecord, request: Any) -> None:
    """Everything the request names exists, what it launches fits the vCPU quota, and the
    subnets it tags have room for its tag."""
    pools = [(f"nodePools[{i}]", p) for i, p in enumerate(request.node_pools)]
    replicas = replica_count(settings.service, request.cluster)
    launches = preflight.launches_for(replicas, request.cluster, pools)
    problems = preflight.reference_problems(settings, network.vpc_id, request.cluster, pools, launches)
    if not problems:
        subnets = subnet_tags.tagged_subnet_ids(request.cluster.spec.networking.service_load_balancer_subnet_ids)
        problems = preflight.subnet_tag_room_problems(
            client("ec2", settings.region), subnets, "spec.networking.serviceLoadBalancerSubnetIDs"
        )
    if problems:
        raise InvalidSpec(problems)


@step
def acquire_create_lock(ctx: StepInput) -> dict:
    """Prove who this execution is, take the cluster's lock, create (or resume) its record."""
    request = parse_create_request(ctx.settings.service, ctx.event.get("request"))
    name = request.cluster.name
    operation = own_operation(ctx, "CreateCluster", name)
    lock = ctx.store.locks.acquire(name, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    try:
        record = _register(ctx, request, operation)
    except Exception:
        ctx.store.locks.release(name, ctx.operation_id)
        raise
    if record.uid != operation.uid:
        ctx.store.operations.set(ctx.operation_id, uid=record.uid)
    involved = f"AWSCluster/{name}"
    if lock.took_over_from:
        ctx.store.events.record(
            name,
            "Normal",
            "LockTakenOver",
            f"operation {ctx.operation_id} took over the lock of {lock.took_over_from}, "
            "whose execution is no longer running",
            involved,
            ctx.operation_id,
        )
    ctx.store.events.record(
        name,
        "Normal",
        "Provisioning",
        f"operation {ctx.operation_id} is creating cluster {name} (uid {record.uid})",
        involved,
        ctx.operation_id,
    )
    return {"uid": record.uid, "tookOverFrom": lock.took_over_from}


def _register(ctx: StepInput, request: Any, operation: Operation) -> ClusterRecord:
    name = request.cluster.name
    existing = ctx.store.clusters.get(name)
    if existing is None:
        assert operation.uid
        record = ClusterRecord(
            name=name,
            uid=operation.uid,
            spec=request.cluster,
            version=request.cluster.spec.control_plane.version,
            created_by=ctx.operation_id,
            # Who asked the API for it (the operation record the API wrote; a console start has none).
            creator=operation.parameters.get("caller"),
            current_operation=ctx.operation_id,
        )
        pools = [
            NodePoolRecord(name=p.name, cluster=name, spec=p, version=p.spec.version, created_by=ctx.operation_id)
            for p in request.node_pools
        ]
        try:
            return ctx.store.clusters.create(record, pools)
        except AlreadyExists:
            existing = ctx.store.clusters.require(name)
    if existing.spec != request.cluster:
        raise AlreadyExists(
            f"cluster {name!r} already exists (phase {existing.phase}) with a different spec; "
            "delete it first, or re-run with the same manifest to resume"
        )
    # Same spec: resume or re-run. New node pools are added; existing ones are kept.
    for pool in request.node_pools:
        ctx.store.node_pools.add(
            NodePoolRecord(
                name=pool.name, cluster=name, spec=pool, version=pool.spec.version, created_by=ctx.operation_id
            )
        )
    phase = "RECONCILING" if existing.phase == "RUNNING" else "PROVISIONING"
    return ctx.store.clusters.update(name, phase=phase, current_operation=ctx.operation_id, last_error=None)


@step
def mark_cluster_running(ctx: ClusterContext) -> dict:
    """The cluster passed every health gate: RUNNING, with its API endpoint; the lock goes. The
    replicas' live state is looked at once more (an instance that failed since its gate makes
    the operation fail instead: RUNNING is never a record's memory)."""
    problems = control_plane.control_plane_problems(ctx)
    if problems:
        raise BootstrapFailed(f"the control plane is not healthy: {'; '.join(problems)}")
    record = ctx.store.clusters.update(ctx.name, phase="RUNNING", current_operation=None, last_error=None)
    ctx.event("Normal", "ClusterRunning", f"cluster {ctx.name} is RUNNING; API endpoint https://{record.endpoint}:443")
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    ctx.store.locks.release(ctx.name, ctx.operation_id)
    return {"phase": "RUNNING", "endpoint": record.endpoint}


def error_message(error: Any) -> tuple[str, str]:
    """(error name, message) from a Catch's `{Error, Cause}`; a Lambda's Cause is JSON."""
    error = error if isinstance(error, dict) else {}
    name = str(error.get("Error") or "Unknown")
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        cause = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    except (ValueError, TypeError):
        pass
    return name, str(cause)


@step
def record_failure(ctx: StepInput, cluster_name: str, error: dict) -> dict:
    """A step failed after the lock was taken: a Warning event naming the cause, and the phase
    the workflow declares (`failurePhase`: ERROR for a create, DEGRADED for an update of a
    running cluster, whose other parts keep working). With compensation to come, the operation
    stays RUNNING (rolling back) until it ends."""
    name, message = error_message(error)
    phase = ctx.event.get("failurePhase") or "ERROR"
    pool = ctx.event.get("nodePool")
    involved = f"AWSNodePool/{pool}" if pool else f"AWSCluster/{cluster_name}"
    cluster_phase = phase if not pool or phase != "ERROR" else "DEGRADED"
    operation = ctx.store.operations.get(ctx.operation_id)
    hint = recovery.advice(cluster_name, cluster_phase, operation.kind if operation else None)
    ctx.store.events.record(cluster_name, "Warning", name, f"{message} ({hint})", involved, ctx.operation_id)
    last_error = {"error": name, "message": message, "operationId": ctx.operation_id, "hint": hint}
    with contextlib.suppress(NotFound):
        if pool:
            ctx.store.node_pools.update(cluster_name, pool, phase=phase)
        ctx.store.clusters.update(
            cluster_name,
            phase=cluster_phase,
            current_operation=None if phase != "ERROR" else ctx.operation_id,
            last_error=last_error,
        )
    compensating = ctx.event.get("rollbackOnFailure") is True or None
    ctx.store.operations.set(
        ctx.operation_id, compensating=compensating, error=name, cause=message[:4000], progress={"failedAt": iso()}
    )
    return {"error": name}


# How long a task invocation can outlive the Map iteration that started it: the ClusterTasks
# function's timeout (infra/functions.py). A failed Map stops its other iterations, but a Lambda
# invocation already running goes on and may still create something after compensation passed.
IN_FLIGHT_LIMIT = timedelta(minutes=5, seconds=30)
MAX_ROLLBACK_ROUNDS = 3
ROLLBACK_SETTLE = Poll(deadline=timedelta(minutes=10), interval=20, backoff=1.5, max_delay=60)


@step(poll=ROLLBACK_SETTLE)
def verify_rollback(ctx: ClusterContext, scope: str) -> dict:
    """After compensation: nothing of the cluster's uid is left, also once every task invocation
    that was still running when the create failed has ended (they cannot outlive the function's
    timeout). Anything found sends compensation round again (at most MAX_ROLLBACK_ROUNDS)."""
    from kubestep import inventory
    from kubestep.aws import client

    left = inventory.cluster_resources(
        ctx.uid, lambda service: client(service, ctx.settings.region), ctx.store, ctx.settings.backup_bucket or None
    )
    found = {kind: [r["id"] for r in items] for kind, items in left.items() if items}
    operation = ctx.store.operations.get(ctx.operation_id)
    progress = dict((operation.progress if operation else None) or {})
    if found:
        rounds = int(progress.get("rollbackRounds", 0)) + 1
        if rounds > MAX_ROLLBACK_ROUNDS:
            raise ResourceTimeout(f"compensation left {found} after {MAX_ROLLBACK_ROUNDS} rounds")
        ctx.store.operations.set(ctx.operation_id, progress={**progress, "rollbackRounds": rounds})
        ctx.store.events.record(
            ctx.name, "Normal", "RollbackAgain", f"still there after compensation: {found}; deleting again",
            f"AWSCluster/{ctx.name}", ctx.operation_id,
        )  # fmt: skip
        return {"clean": False, "found": found}
    failed_at = parse_iso(operation.progress.get("failedAt")) if operation and operation.progress else None
    settle_until = (failed_at or now()) + IN_FLIGHT_LIMIT * ctx.settings.time_scale
    if now() < settle_until:
        ctx.pending(f"nothing left; waiting until {settle_until:%H:%M:%S} for task invocations still running to end")
    return {"clean": True}


@step
def record_rollback(ctx: StepInput, cluster_name: str) -> dict:
    """Compensation finished: everything this operation created is gone."""
    ctx.store.events.record(
        cluster_name,
        "Normal",
        "RolledBack",
        f"operation {ctx.operation_id} deleted the resources it had created",
        f"AWSCluster/{cluster_name}",
        ctx.operation_id,
    )
    return {"rolledBack": True}


@step
def record_compensation_failure(ctx: StepInput, cluster_name: str, compensation_error: dict) -> dict:
    """Compensation itself failed: say so (the operation still reports the original error)."""
    error, message = error_message(compensation_error)
    ctx.store.events.record(
        cluster_name,
        "Warning",
        "RollbackFailed",
        f"deleting what operation {ctx.operation_id} created failed ({error}: {message}); "
        f"`kubestep delete cluster {cluster_name}` removes what is left",
        f"AWSCluster/{cluster_name}",
        ctx.operation_id,
    )
    return {"error": error}


@step
def finish_failure(ctx: StepInput, cluster_name: str, error: dict) -> dict:
    """Last state of a failed run: release the lock, then report the operation FAILED with its
    original error (not a compensation error)."""
    name, message = error_message(error)
    cancelled = name == "OperationCancelled"
    operation = ctx.store.operations.get(ctx.operation_id)
    record = ctx.store.clusters.get(cluster_name)
    if cancelled and operation and operation.compensating and record and record.created_by == ctx.operation_id:
        # A cancelled create that deleted what it made leaves nothing behind: the name is free
        # again at once (its events stay, for the record of what happened).
        ctx.store.clusters.delete_everything(cluster_name, record.uid)
        ctx.store.events.record(
            cluster_name, "Normal", "Cancelled", message, f"AWSCluster/{cluster_name}", ctx.operation_id
        )
    released = ctx.store.locks.release(cluster_name, ctx.operation_id)
    ctx.store.operations.finish(ctx.operation_id, "ABORTED" if cancelled else "FAILED", name, message)
    return {"released": released}


# ---------------------------------------------------------------- delete


@step
def validate_delete_request(ctx: StepInput) -> dict:
    """First state: the cluster must exist."""
    request = parse_delete_request(ctx.event.get("request"))
    ctx.store.clusters.require(request.cluster_name)
    return {
        "clusterName": request.cluster_name,
        "keepEtcdVolumes": request.keep_etcd_volumes,
        "deleteBackups": request.delete_backups,
    }


@step
def acquire_delete_lock(ctx: StepInput, cluster_name: str) -> dict:
    """Prove who this execution is, take the cluster's lock, mark it STOPPING."""
    record = ctx.store.clusters.require(cluster_name)
    own_operation(ctx, "DeleteCluster", cluster_name, uid=record.uid)
    ctx.store.locks.acquire(cluster_name, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    try:
        record = ctx.store.clusters.update(cluster_name, phase="STOPPING", current_operation=ctx.operation_id)
    except NotFound:
        ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    ctx.store.events.record(
        cluster_name,
        "Normal",
        "Deleting",
        f"operation {ctx.operation_id} is deleting cluster {cluster_name}",
        f"AWSCluster/{cluster_name}",
        ctx.operation_id,
    )
    return {"uid": record.uid}


@step
def delete_cluster_record(ctx: ClusterContext) -> dict:
    """Last step: the record, node pools, etcd items, uid claim and the lock go; events stay, and
    so do backups not deleted with it, findable by the cluster's name."""
    backup_deletion.keep_with_deleted_cluster(
        ctx.store, ctx.name, ctx.uid, ctx.record.created_at, iso(), ctx.operation_id
    )
    ctx.store.reports.delete_all(ctx.uid, instances.node_instances_ever(ctx))
    ctx.store.clusters.delete_everything(ctx.name, ctx.uid)
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    ctx.event("Normal", "Deleted", f"cluster {ctx.name} (uid {ctx.uid}) and its AWS resources are deleted")
    return {"deleted": ctx.name}
