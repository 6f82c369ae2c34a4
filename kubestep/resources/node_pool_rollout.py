"""Rolling a node pool to a new spec within `updateSettings` (GKE's surge upgrade, kOps'
rolling update), without the Lambdas reaching into the cluster:

1. the pool's group launches its new template version (`gke:spec` tells new instances from old);
2. surge: desired capacity grows to at most `desired + maxSurge` instances;
3. once new nodes are ready (their own latest report: bootstrapped, `Ready`, initialised by the
   cloud controller manager), old ones
   are terminated through Auto Scaling, so the termination lifecycle hook holds each until the
   AWS Node Termination Handler has drained it (kubestep.resources.termination);
4. repeat until no old instance is left, never fewer than `desired - maxUnavailable` ready nodes
   and never more than `desired + maxSurge` instances.

The step acts once per invocation and raises ResourcePending (the state machine retries it):
each call observes the group, decides, acts, and records its progress on the pool record, so a
retried or re-run invocation converges. A drain that outlasts its deadline gets a Warning event
and the lifecycle action is completed by the workflow itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kubestep import naming
from kubestep.errors import BootstrapFailed
from kubestep.flow.steps import Poll, step
from kubestep.resources import instances
from kubestep.resources import reports as node_reports
from kubestep.resources.context import ClusterContext
from kubestep.store import NodePoolRecord, iso, now, parse_iso

ROLL = Poll(deadline=timedelta(minutes=90), interval=10, backoff=1.2, max_delay=20)
DRAIN_DEADLINE = timedelta(minutes=10)


def _ready(ctx: ClusterContext, ids: list[str]) -> set[str]:
    reports = ctx.store.reports.nodes(ctx.uid, instances.instance_arns(ctx, ids))
    failed = [(i, reports[i]) for i in ids if i in reports and reports[i].failed_phase]
    if failed:
        instance, report = failed[0]
        raise BootstrapFailed(f"new node {instance} failed bootstrap phase {report.failed_phase}")
    return {i for i in ids if node_reports.node_problem(reports.get(i), ctx.settings.time_scale) is None}


def begin(ctx: ClusterContext, record: NodePoolRecord, target_spec: str) -> dict[str, Any]:
    """The rollout's fixed facts, recorded once: the desired size to keep and the original max."""
    group = instances.group_named(ctx, record.asg_name)
    desired, max_size = (group["DesiredCapacity"], group["MaxSize"]) if group else (0, 0)
    target = record.target_spec or record.spec
    rollout = record.rollout or {}
    if rollout.get("spec") != target_spec:
        rollout = {
            "spec": target_spec,
            "desired": max(desired, target.spec.min_node_count),
            "maxSize": max_size,
            "startedAt": iso(),
            "terminating": {},
            "warned": [],
            "replaced": 0,
        }
        ctx.store.node_pools.update(ctx.name, record.name, rollout=rollout)
    return rollout


@step(poll=ROLL)
def roll_node_pool(ctx: ClusterContext, node_pool: str) -> dict:
    """One tick of the pool's rolling update (see the module docstring)."""
    record = ctx.store.node_pools.require(ctx.name, node_pool)
    rollout = dict(record.rollout or {})
    target = rollout.get("spec")
    assert target and record.asg_name, "ApplyNodePoolUpdate starts the rollout"
    settings = (record.target_spec or record.spec).spec.update_settings
    desired, surge, unavailable = int(rollout["desired"]), settings.max_surge, settings.max_unavailable
    members = instances.group_instances(ctx, record.asg_name)
    alive = [m for m in members if not instances.going_away(m["state"])]
    leaving = [m for m in members if instances.going_away(m["state"])]
    new = [m["id"] for m in alive if m["spec"] == target]
    old = [m["id"] for m in alive if m["spec"] != target]
    ready_new = _ready(ctx, new)
    ready_old = _ready(ctx, old) if old else set()
    involved = f"AWSNodePool/{node_pool}"

    _watch_drains(ctx, record, rollout, leaving, involved)

    if not old and not leaving and len(ready_new) >= desired:
        # Done: back to the pool's own bounds.
        ctx.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=record.asg_name, MaxSize=int(rollout["maxSize"]), DesiredCapacity=desired
        )
        ctx.store.node_pools.update(ctx.name, node_pool, rollout={**rollout, "finishedAt": iso()})
        return {"replaced": rollout.get("replaced", 0), "ready": len(ready_new)}

    # Surge: at most desired + maxSurge instances, counting those still draining.
    capacity = (desired + surge - len(leaving)) if old else desired
    group = instances.existing_group(ctx, record.asg_name)
    if group["DesiredCapacity"] != capacity:
        ctx.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=record.asg_name,
            MaxSize=max(int(rollout["maxSize"]), desired + surge),
            DesiredCapacity=max(capacity, 0),
        )

    # Terminate old instances while at least desired - maxUnavailable nodes stay ready
    # (not-ready old instances never count as ready: they go first).
    ready = len(ready_new) + len(ready_old)
    budget = ready - (desired - unavailable)
    victims = [i for i in old if i not in ready_old] + [i for i in old if i in ready_old]
    chosen: list[str] = []
    for instance in victims:
        counts = instance in ready_old
        if counts and budget <= 0:
            break
        chosen.append(instance)
        if counts:
            budget -= 1
    for instance in chosen:
        instances.terminate_in_group(ctx, instance, decrement=True)
        rollout["terminating"][instance] = iso()
        rollout["replaced"] = int(rollout.get("replaced", 0)) + 1
        ctx.event(
            "Normal", "Draining", f"node {instance} of pool {node_pool} is draining and will be replaced", involved
        )
    if chosen:
        ctx.store.node_pools.update(ctx.name, node_pool, rollout=rollout)
    ctx.pending(
        f"node pool {node_pool}: {len(ready_new)}/{desired} new nodes ready, {len(old)} old, {len(leaving)} draining"
    )


def _watch_drains(
    ctx: ClusterContext, record: NodePoolRecord, rollout: dict, leaving: list[dict], involved: str
) -> None:
    """A drain past its deadline: a Warning event, then the workflow completes the lifecycle
    action itself (Auto Scaling would anyway at the hook's heartbeat timeout)."""
    limit = DRAIN_DEADLINE * ctx.settings.time_scale
    for member in leaving:
        started = rollout.get("terminating", {}).get(member["id"])
        draining = member["state"] == instances.LifecycleState.TERMINATING_WAIT
        if not draining or started is None or member["id"] in rollout["warned"]:
            continue
        if now() - parse_iso(started) < limit:
            continue
        ctx.event(
            "Warning",
            "DrainTimedOut",
            f"node {member['id']} of pool {record.name} was not drained within {DRAIN_DEADLINE}; terminating it anyway",
            involved,
        )
        ctx.autoscaling.complete_lifecycle_action(
            LifecycleHookName=naming.DRAIN_HOOK,
            AutoScalingGroupName=record.asg_name,
            InstanceId=member["id"],
            LifecycleActionResult="CONTINUE",
        )
        rollout["warned"].append(member["id"])
        ctx.store.node_pools.update(ctx.name, record.name, rollout=rollout)
