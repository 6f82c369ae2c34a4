"""The steps of RepairCluster that the create does not have: its input, identity and lock; the
replacement of instances whose launch template a repair changed (a recreated etcd volume or
load balancer changes what an instance is told at boot); and the report of what it changed."""

from __future__ import annotations

from pydantic import Field

from kubestep.errors import NotFound
from kubestep.flow.context import StepInput
from kubestep.flow.steps import step
from kubestep.models import Model, Name
from kubestep.resources import drift, replacement
from kubestep.resources.context import ClusterContext
from kubestep.store import Resource
from kubestep.validation import parse, refuse_identity_fields
from kubestep.workflows.identity import execution_running, own_operation

KIND = "RepairCluster"


class RepairClusterRequest(Model):
    """`RepairCluster` execution input."""

    cluster_name: Name = Field(alias="clusterName")
    detect_only: bool = Field(default=False, alias="detectOnly")


def parse_repair_request(data: object) -> RepairClusterRequest:
    refuse_identity_fields(data)
    return parse(RepairClusterRequest, data)


@step
def validate_repair_request(ctx: StepInput) -> dict:
    """First state: the cluster must exist."""
    request = parse_repair_request(ctx.event.get("request"))
    ctx.store.clusters.require(request.cluster_name)
    return {"clusterName": request.cluster_name, "detectOnly": request.detect_only}


@step
def acquire_repair_lock(ctx: StepInput, cluster_name: str) -> dict:
    """Prove who this execution is, take the cluster's lock (a busy cluster is refused), mark it
    RECONCILING (detecting only puts the phase back)."""
    record = ctx.store.clusters.require(cluster_name)
    phase = record.phase
    own_operation(ctx, KIND, cluster_name, uid=record.uid)
    ctx.store.locks.acquire(cluster_name, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    try:
        record = ctx.store.clusters.update(cluster_name, phase="RECONCILING", current_operation=ctx.operation_id)
    except NotFound:
        ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    ctx.store.events.record(
        cluster_name,
        "Normal",
        "Repairing",
        f"operation {ctx.operation_id} is repairing cluster {cluster_name}",
        f"AWSCluster/{cluster_name}",
        ctx.operation_id,
    )
    return {"uid": record.uid, "phase": phase}


@step
def finish_detection(ctx: ClusterContext, phase: str, found: dict) -> dict:
    """Detecting only changes nothing: the drift is recorded (`kubestep describe` shows it), the phase
    is what it was, the lock goes."""
    ctx.store.clusters.update(ctx.name, phase=phase, current_operation=None)
    ctx.store.operations.set(ctx.operation_id, progress={"drift": found, "detectOnly": True})
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    ctx.store.locks.release(ctx.name, ctx.operation_id)
    return {"drift": sorted(found)}


@step
def replace_stale_nodes(ctx: ClusterContext, node_pool: str) -> dict:
    """The pool's nodes whose launch template the repair changed (e.g. a new API endpoint:
    they could not reach the control plane any more) are replaced."""
    pool = ctx.store.node_pools.require(ctx.name, node_pool)
    if not pool.asg_name or not pool.launch_spec:
        return {"replaced": []}
    return {"replaced": replacement.replace_stale(ctx, pool.asg_name, pool.launch_spec, f"node pool {node_pool}")}


@step
def record_repair(ctx: ClusterContext, found: dict) -> dict:
    """Compare again: report what the repair changed (and anything it could not), keep what
    still differs on the record."""
    remaining = drift.detect(ctx)
    ctx.store.clusters.set_drift(ctx.name, remaining)
    repaired = {key: what for key, what in found.items() if key not in remaining}
    notes = []
    if Resource.NLB.value in repaired:
        endpoint = ctx.reload().endpoint
        notes.append(f"the API endpoint is now https://{endpoint}:443 (`kubestep get-credentials` again)")
    if any(key.endswith("/etcd-volume") for key in repaired):
        notes.append("a replica with a new etcd volume joined etcd again as a new member")
    if repaired:
        changed = "; ".join(
            f"{key} ({what}): {'made again' if what.startswith(drift.MISSING) else 'restored'}"
            for key, what in repaired.items()
        )
        notes_text = f". {'; '.join(notes)}" if notes else ""
        ctx.event("Normal", "Repaired", f"repaired {len(repaired)}: {changed}{notes_text}")
    if remaining:
        ctx.event("Warning", "RepairIncomplete", f"still different after the repair: {drift.summary(remaining)}")
    else:
        ctx.event("Normal", "NoDrift", "every resource kubestep made is there as it made it")
    ctx.store.operations.set(ctx.operation_id, progress={"repaired": repaired, "remaining": remaining})
    return {"repaired": sorted(repaired), "remaining": sorted(remaining)}
