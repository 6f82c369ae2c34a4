"""The steps of PlanRepairs (which clusters have a member to repair now; each repair started the
way the API starts an operation: lock reserved, operation record, execution named by it) and of
AutoRepair (one cluster's repair: a replica replaced through the one replacement path, keeping
its etcd volume, behind the health gate; or nodes marked Unhealthy in their Auto Scaling group,
which drains them through the termination hook and launches their successors)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from kubestep import auto_repair
from kubestep.errors import AlreadyExists, InvalidSpec, LockHeld, NotFound
from kubestep.flow.context import StepInput
from kubestep.flow.steps import Poll, step
from kubestep.models import Model, Name
from kubestep.resources import instances, load_balancer, replacement, reports
from kubestep.resources.context import ClusterContext
from kubestep.store.table import now
from kubestep.validation import parse, refuse_identity_fields
from kubestep.workflows import starts
from kubestep.workflows.identity import execution_running, own_operation

# A page of decisions in the execution's history; the rest are counted (256 KiB state limit).
MAX_LISTED_DECISIONS = 100
# Auto Scaling drains a node (the termination hook: up to its heartbeat timeout) and launches
# its successor, which boots and reports.
NODES_REPLACED = Poll(deadline=timedelta(minutes=30), interval=10, backoff=1.2, max_delay=30)
INSTANCE_ID = r"^i-[0-9a-f]{8,17}$"


# ---------------------------------------------------------------- PlanRepairs


@step
def find_repairs(ctx: StepInput) -> dict:
    """Every running cluster's decision now (`kubestep.auto_repair.decide`); one cluster's
    trouble is its own skip, never the others'."""
    moment = now()
    decisions: list[auto_repair.Decision] = []
    for record in ctx.store.clusters.all():
        try:
            # The index's copy is enough to leave a cluster being created or deleted alone (one
            # that has just become RUNNING is seen next round): only a cluster that may need
            # repair is read again, consistently, with everything its decision needs.
            repaired = record.phase in auto_repair.REPAIRED_PHASES
            decision = None if repaired else auto_repair.not_repaired(ctx.store, record)
            if decision is None:
                cluster = ClusterContext(ctx.settings, ctx.store, record.name, ctx.operation_id)
                decision = auto_repair.decide(cluster, moment)
            decisions.append(decision)
        except NotFound:
            continue  # deleted since it was listed
        except Exception as exc:  # noqa: BLE001 - one cluster must not keep the others from repair
            decisions.append(auto_repair.Decision(record.name, "skip", f"could not check: {type(exc).__name__}: {exc}"))
    repairs = [d.as_dict() for d in decisions if d.action == "repair"]
    others = [d.as_dict() for d in decisions if d.action != "repair"]
    return {"repairs": repairs, "others": others[:MAX_LISTED_DECISIONS], "othersCount": len(others)}


@step
def start_repair(ctx: StepInput, request: dict, repair_id: str, uid: str) -> dict:
    """The cluster's AutoRepair under the planner's deterministic operation id: started once
    however often the rule fires, and never while another operation holds the cluster."""
    cluster = str(request.get("clusterName"))
    try:
        operation = starts.start_execution(
            ctx.settings,
            ctx.store,
            workflow=auto_repair.WORKFLOW,
            cluster=cluster,
            operation_id=repair_id,
            execution_input=request,
            uid=uid,
            parameters={"instanceIds": request.get("instanceIds", [])},
        )
    except (LockHeld, AlreadyExists, NotFound, InvalidSpec) as exc:
        # Another operation took the cluster since the plan, or it is gone: next time.
        return {"clusterName": cluster, "started": False, "reason": str(exc)[:500]}
    return {"clusterName": cluster, "started": True, "operationId": operation.operation_id}


# ---------------------------------------------------------------- AutoRepair


class UnhealthyNode(Model):
    node_pool: Name = Field(alias="nodePool")
    instance_id: str = Field(alias="instanceId", pattern=INSTANCE_ID)


class AutoRepairRequest(Model):
    """`AutoRepair` execution input (PlanRepairs writes it): one replica, or nodes."""

    cluster_name: Name = Field(alias="clusterName")
    replica: int | None = Field(default=None, ge=0, le=6)
    nodes: list[UnhealthyNode] = Field(default_factory=list, max_length=100)
    instance_ids: list[str] = Field(alias="instanceIds", min_length=1, max_length=100)
    problem: str = Field(default="", max_length=2000)

    @property
    def kind(self) -> Literal["replica", "nodes"]:
        return "replica" if self.replica is not None else "nodes"


def parse_auto_repair_request(data: object) -> AutoRepairRequest:
    refuse_identity_fields(data)
    request = parse(AutoRepairRequest, data)
    if (request.replica is None) == (not request.nodes):
        raise InvalidSpec([("replica", "name one replica, or nodes, not both and not neither")])
    named = [request.instance_ids[0]] if request.replica is not None else [n.instance_id for n in request.nodes]
    if sorted(named) != sorted(request.instance_ids):
        raise InvalidSpec([("instanceIds", "must be the instances of the replica or of the nodes named")])
    return request


@step
def validate_auto_repair_request(ctx: StepInput) -> dict:
    """First state: the cluster must exist and, for a repair PlanRepairs started, be the
    incarnation it was planned for (its operation record's uid; never the input's word). The
    instances named are checked against the cluster's own groups before anything is done."""
    request = parse_auto_repair_request(ctx.event.get("request"))
    record = ctx.store.clusters.require(request.cluster_name)
    planned = ctx.store.operations.get(ctx.operation_id)
    if planned is not None and planned.uid and planned.uid != record.uid:
        raise InvalidSpec(
            [
                (
                    "clusterName",
                    f"cluster {record.name!r} is uid {record.uid}, but this repair was planned for uid {planned.uid}, "
                    "an earlier cluster of that name; nothing is repaired",
                )
            ]
        )
    return {"clusterName": request.cluster_name, "kind": request.kind}


@step
def acquire_auto_repair_lock(ctx: StepInput, cluster_name: str) -> dict:
    """Prove who this execution is, take the cluster's lock (PlanRepairs reserved it; anyone
    else's holds it: refused), mark the cluster RECONCILING."""
    record = ctx.store.clusters.require(cluster_name)
    own_operation(ctx, auto_repair.WORKFLOW, cluster_name, uid=record.uid)
    ctx.store.locks.acquire(cluster_name, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    try:
        record = ctx.store.clusters.update(cluster_name, phase="RECONCILING", current_operation=ctx.operation_id)
    except NotFound:
        ctx.store.locks.release(cluster_name, ctx.operation_id)
        raise
    request = ctx.event.get("request") or {}
    ctx.store.events.record(
        cluster_name,
        "Normal",
        "AutoRepairing",
        f"operation {ctx.operation_id} repairs {', '.join(request.get('instanceIds') or [])}: "
        f"{str(request.get('problem') or '')[:800]}",
        f"AWSCluster/{cluster_name}",
        ctx.operation_id,
    )
    return {"uid": record.uid}


@step
def replace_unhealthy_replica(ctx: ClusterContext, replica: int, instance_ids: list[str]) -> dict:
    """The replica's instance is replaced if it is still the one found unhealthy and still is so
    (looked at again under the lock); its etcd volume and stable name stay the replica's."""
    instance_id = instance_ids[0]
    member = ctx.store.etcd.require_member(ctx.name, replica)
    if member.instance_id != instance_id:
        ctx.event("Normal", "AutoRepairNotNeeded", f"replica {replica} runs instance {member.instance_id} now")
        return {"replaced": []}
    report = ctx.store.reports.replica(ctx.uid, replica)
    target = load_balancer.target_health(ctx).get(instance_id)
    live = {m["id"]: m["state"] for m in instances.group_instances(ctx, member.asg_name or "")}
    problem = auto_repair.replica_problem(member, report, target, ctx.settings.time_scale)
    if problem is None and live.get(instance_id) == "InService":
        ctx.event("Normal", "AutoRepairNotNeeded", f"replica {replica} ({instance_id}) is healthy again")
        return {"replaced": []}
    replaced = replacement.replace_replica(ctx, replica, unhealthy=instance_id)
    ctx.store.etcd.update_member(ctx.name, replica, unhealthy=None)  # its successor is judged afresh
    return {"replaced": replaced}


@step
def mark_nodes_unhealthy(ctx: ClusterContext, nodes: list[dict]) -> dict:
    """Each node, if it is still its pool's and still silent, marked Unhealthy in its Auto Scaling
    group: Auto Scaling terminates it through the drain hook and launches its successor."""
    moment, marked, skipped = now(), [], []
    for node in nodes:
        pool = ctx.store.node_pools.require(ctx.name, node["nodePool"])
        instance_id = node["instanceId"]
        live = {m["id"]: m["state"] for m in instances.group_instances(ctx, pool.asg_name or "")}
        if instances.going_away(live.get(instance_id, "")):
            # Marked by an earlier attempt of this step (its answer lost), or leaving anyway: its
            # successor is waited for all the same.
            marked.append(instance_id)
            continue
        if live.get(instance_id) != "InService":
            skipped.append(f"{instance_id}: {live.get(instance_id) or 'not in the group'}")
            continue
        report = ctx.store.reports.nodes(ctx.uid, instances.instance_arns(ctx, [instance_id])).get(instance_id)
        if auto_repair.node_problem(report, moment, ctx.settings.time_scale) is None:
            skipped.append(f"{instance_id}: reports again")
            continue
        # Not respecting the group's grace period: it keeps health checks off instances still
        # booting, and this one finished its boot, reported, and then fell silent.
        ctx.autoscaling.set_instance_health(
            InstanceId=instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False
        )
        marked.append(instance_id)
    if marked:
        ctx.event(
            "Normal", "MarkedUnhealthy", f"marked {', '.join(marked)} Unhealthy: Auto Scaling drains and replaces them"
        )
    if skipped:
        ctx.event("Normal", "AutoRepairNotNeeded", f"left alone: {'; '.join(skipped)}")
    return {"marked": marked, "skipped": skipped}


@step(poll=NODES_REPLACED)
def wait_for_node_replacements(ctx: ClusterContext, nodes: list[dict], marked: list[str]) -> dict:
    """The marked nodes are gone from their groups (drained, terminated), and each group has its
    desired count of nodes in service that are ready, or silent themselves (another node still
    silent is the next check's concern, not this repair's): the successors have booted."""
    moment = now()
    for name in sorted({n["nodePool"] for n in nodes}):
        pool = ctx.store.node_pools.require(ctx.name, name)
        group = ctx.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[pool.asg_name])["AutoScalingGroups"]
        if not group:
            continue
        members = {i["InstanceId"]: i["LifecycleState"] for i in group[0]["Instances"]}
        leaving = [i for i in marked if i in members]
        if leaving:
            ctx.pending(f"node pool {name}: {', '.join(f'{i} ({members[i]})' for i in leaving)} still leaving")
        in_service = [i for i, state in members.items() if state == "InService"]
        found = ctx.store.reports.nodes(ctx.uid, instances.instance_arns(ctx, in_service))
        scale = ctx.settings.time_scale
        ready = [i for i in in_service if reports.node_problem(found.get(i), scale) is None]
        silent = [i for i in in_service if auto_repair.node_problem(found.get(i), moment, scale) is not None]
        wanted = group[0]["DesiredCapacity"]
        if len(ready) + len(silent) < wanted:
            ctx.pending(f"node pool {name} has {len(ready)}/{wanted} nodes ready after the repair")
    return {"replaced": marked}


@step
def record_auto_repair(ctx: ClusterContext, replaced: list[str]) -> dict:
    """An `AutoRepaired` event naming what was replaced; the operation's progress says so too."""
    if replaced:
        ctx.event("Normal", "AutoRepaired", f"replaced {', '.join(replaced)}; every member is healthy")
    ctx.store.operations.set(ctx.operation_id, progress={"replaced": replaced})
    return {"replaced": replaced}
