"""Automatic repair (`management.autoRepair`): which members of a running cluster are unhealthy,
for how long, and whether to repair one now.

A control-plane replica is unhealthy when the instance that passed its health gate is still in
service but its NLB target is unhealthy, or its own report says its bootstrap failed, its API
server is not ready, or the report stopped (older than the reports' staleness). Since when is
recorded on the replica's etcd member item (`unhealthy`), as the reports keep no history. A node
is unhealthy when its periodic report (its heartbeat) is older than `unhealthyAfter`: that age is
the time it has been silent.

Cluster API's MachineHealthCheck short-circuit: when more members of the control plane, or of one
node pool, are unhealthy at once than `maxUnhealthy` allows, nothing of it is repaired and a
Warning event says why: a network partition or an outage of a zone makes healthy members look
dead, and replacing them would only make it worse. One repair per cluster at a time, replicas
first, each under the cluster's lock (a cluster another operation holds is left alone)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubestep.models import AutoRepair
from kubestep.resources import instances, load_balancer, reports
from kubestep.resources.context import ClusterContext
from kubestep.store import BootstrapReport, ClusterRecord, EtcdMember, Store
from kubestep.store.table import iso, parse_iso

WORKFLOW = "AutoRepair"
OPERATION_PREFIX = "autorepair"
SUPPRESSED = "AutoRepairSuppressed"
# Clusters in these phases are repaired automatically (anything else is an operation's or a person's).
REPAIRED_PHASES = ("RUNNING",)


@dataclass(frozen=True)
class Unhealthy:
    """A member that is unhealthy now, since when, and why."""

    instance_id: str
    problem: str
    since: datetime
    replica: int | None = None
    node_pool: str | None = None

    @property
    def name(self) -> str:
        if self.replica is not None:
            return f"replica {self.replica} ({self.instance_id})"
        return f"node {self.instance_id} of node pool {self.node_pool}"

    def due(self, settings: AutoRepair, now: datetime, time_scale: float) -> bool:
        return now - self.since >= timedelta(seconds=settings.unhealthy_after_seconds * time_scale)


@dataclass
class Decision:
    cluster: str
    action: str  # "repair", "wait", "skip" or "suppressed"
    reason: str
    request: dict[str, Any] | None = None
    operation_id: str | None = None
    suppressed: list[str] = field(default_factory=list)
    uid: str | None = None  # the incarnation the repair is planned for

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"clusterName": self.cluster, "action": self.action, "reason": self.reason[:500]}
        if self.request is not None:
            found["request"] = self.request
            found["operationId"] = self.operation_id
            found["uid"] = self.uid
        return found


# ---------------------------------------------------------------- replicas


def replica_problem(
    member: EtcdMember, report: BootstrapReport | None, target: str | None, time_scale: float
) -> str | None:
    """Why the replica's gated instance is unhealthy now, or None. Only the instance that passed
    the gate counts: a new instance still booting is its operation's concern."""
    if report is not None and report.instance_id == member.instance_id:
        if report.failed_phase:
            return f"it reported {report.status}"
        stale = reports.staleness(report, time_scale)
        if stale:
            return stale
        if report.checks.get("apiserverReady") is False:
            return "its API server is not ready (apiserverReady)"
    elif report is not None:
        return f"its report is from instance {report.instance_id}, not from it"
    if target == "unhealthy":
        return "its NLB target is unhealthy"
    return None


def unhealthy_replicas(ctx: ClusterContext, now: datetime) -> tuple[list[Unhealthy], int]:
    """(the replicas unhealthy now, since when each; how many replicas there are), recording on
    each replica's member item since when it is unhealthy (cleared once it is healthy)."""
    members = ctx.store.etcd.members(ctx.name)
    health = load_balancer.target_health(ctx)
    # Every replica's group, instances and report in three reads, not three per replica: the
    # sweep decides every running cluster each time it runs.
    gated = [m for m in members if m.asg_name and m.instance_id and m.bootstrap == "ok"]
    groups = instances.groups_instances(ctx, [m.asg_name for m in gated if m.asg_name])
    reports_now = ctx.store.reports.replicas(ctx.uid) if gated else {}
    gated_indexes = {m.index for m in gated}
    found = []
    for member in members:
        problem = None
        if member.index in gated_indexes:
            live = {m["id"]: m["state"] for m in groups.get(member.asg_name or "", [])}
            if live.get(member.instance_id) == "InService":
                report = reports_now.get(member.index)
                problem = replica_problem(member, report, health.get(member.instance_id), ctx.settings.time_scale)
        seen = member.unhealthy or {}
        if problem is None:
            if seen:
                ctx.store.etcd.update_member(ctx.name, member.index, unhealthy=None)
            continue
        assert member.instance_id
        if seen.get("instanceId") != member.instance_id:
            seen = {"instanceId": member.instance_id, "since": iso(now), "problem": problem}
            ctx.store.etcd.update_member(ctx.name, member.index, unhealthy=seen)
        found.append(Unhealthy(member.instance_id, problem, parse_iso(seen["since"]), replica=member.index))
    return found, len(members)


# ---------------------------------------------------------------- nodes


# A node counts as unhealthy (towards `maxUnhealthy`) once it missed two reports in a row, and is
# repaired once silent for its pool's `unhealthyAfter` (3 minutes at least): nodes cut off at once
# fall silent within one report interval of each other, so all of them are counted before the
# first is due, and the short-circuit sees them together.
NODE_SILENT_AFTER = 2 * reports.REPORT_INTERVAL


def node_problem(report: BootstrapReport | None, now: datetime, time_scale: float) -> tuple[str, datetime] | None:
    """(why, since when) a node is unhealthy: it booted well and its heartbeat stopped."""
    if report is None or not report.ok or not report.reported_at:
        return None  # still booting, or a failed boot: the operation that launched it decides
    last = parse_iso(report.reported_at)
    if now - last <= NODE_SILENT_AFTER * time_scale:
        return None
    return f"its periodic report stopped at {report.reported_at}", last


def unhealthy_nodes(ctx: ClusterContext, node_pool: str, now: datetime) -> tuple[list[Unhealthy], int]:
    """(the pool's in-service nodes whose heartbeat stopped, since when; how many are in service)."""
    record = ctx.store.node_pools.get(ctx.name, node_pool)
    if record is None or not record.asg_name:
        return [], 0
    in_service = [m["id"] for m in instances.group_instances(ctx, record.asg_name) if m["state"] == "InService"]
    found = ctx.store.reports.nodes(ctx.uid, instances.instance_arns(ctx, in_service))
    unhealthy = []
    for instance_id in in_service:
        problem = node_problem(found.get(instance_id), now, ctx.settings.time_scale)
        if problem is not None:
            unhealthy.append(Unhealthy(instance_id, problem[0], problem[1], node_pool=node_pool))
    return unhealthy, len(in_service)


# ---------------------------------------------------------------- deciding


def operation_id(uid: str, instance_ids: list[str]) -> str:
    """Deterministic per cluster incarnation and set of instances: a rule that fires twice (at
    least once delivery) starts one repair; an instance's failed repair is not retried by itself."""
    digest = hashlib.sha256(",".join(sorted(instance_ids)).encode()).hexdigest()[:12]
    return f"{OPERATION_PREFIX}-{uid}-{digest}"


def _suppressed(ctx: ClusterContext, what: str, unhealthy: list[Unhealthy], total: int, setting: AutoRepair) -> str:
    names = "; ".join(f"{u.name}: {u.problem}" for u in unhealthy[:5])
    message = (
        f"{len(unhealthy)} of {total} {what} are unhealthy at once, more than maxUnhealthy "
        f"{setting.max_unhealthy} allows ({setting.allowed(total)}): nothing is repaired automatically, as a "
        f"network partition or a zone's outage would look the same ({names})"
    )
    ctx.event("Warning", SUPPRESSED, message)
    return message


def _due(
    ctx: ClusterContext, what: str, found: tuple[list[Unhealthy], int], setting: AutoRepair, now: datetime
) -> tuple[list[Unhealthy], str | None]:
    """(the members due for repair; why none may be repaired, when more are unhealthy than allowed)."""
    unhealthy, total = found
    if len(unhealthy) > setting.allowed(total):
        return [], _suppressed(ctx, what, unhealthy, total, setting)
    return [u for u in unhealthy if u.due(setting, now, ctx.settings.time_scale)], None


def not_repaired(store: Store, record: ClusterRecord) -> Decision | None:
    """Why the cluster of `record` is left alone now (an operation holds it, or it is in a phase
    never repaired), or None."""
    lock = store.locks.get(record.name)
    if lock is not None:
        return Decision(record.name, "skip", f"operation {lock.operation_id} holds the cluster")
    if record.phase not in REPAIRED_PHASES:
        return Decision(record.name, "skip", f"cluster is {record.phase}")
    return None


def decide(ctx: ClusterContext, now: datetime) -> Decision:
    """This cluster's decision now: repair one replica, or the due nodes, or why not."""
    record = ctx.record
    skipped = not_repaired(ctx.store, record)
    if skipped is not None:
        return skipped
    base = {"clusterName": ctx.name}
    suppressed: list[str] = []
    control_plane = record.spec.spec.management.auto_repair
    if control_plane.enabled:
        due, why = _due(ctx, "replicas", unhealthy_replicas(ctx, now), control_plane, now)
        if why:
            suppressed.append(why)
        elif due:
            first = due[0]
            request = {**base, "replica": first.replica, "instanceIds": [first.instance_id], "problem": first.problem}
            reason = f"{first.name}: {first.problem} since {iso(first.since)}"
            repair_id = operation_id(ctx.uid, [first.instance_id])
            return Decision(ctx.name, "repair", reason, request, repair_id, uid=ctx.uid)
    nodes: list[Unhealthy] = []
    for pool in ctx.store.node_pools.list(ctx.name):
        setting = pool.spec.spec.management.auto_repair
        if pool.phase != "RUNNING" or not setting.enabled:
            continue
        due, why = _due(ctx, f"nodes of node pool {pool.name}", unhealthy_nodes(ctx, pool.name, now), setting, now)
        if why:
            suppressed.append(why)
        nodes += due
    if nodes:
        request = {
            **base,
            "nodes": [{"nodePool": u.node_pool, "instanceId": u.instance_id} for u in nodes],
            "instanceIds": [u.instance_id for u in nodes],
            "problem": "; ".join(f"{u.name}: {u.problem}" for u in nodes[:5]),
        }
        ids = [u.instance_id for u in nodes]
        repair_id = operation_id(ctx.uid, ids)
        return Decision(ctx.name, "repair", request["problem"], request, repair_id, suppressed, uid=ctx.uid)
    if suppressed:
        return Decision(ctx.name, "suppressed", " | ".join(suppressed), suppressed=suppressed)
    return Decision(ctx.name, "wait", "every member is healthy, or not unhealthy for long enough yet")
