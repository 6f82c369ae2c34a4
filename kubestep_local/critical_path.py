"""The lower bound of an operation: the longest chain of AWS waits its workflow must sit through.

The workflow's rendered ASL gives the dependency structure (a state after the one before it, a
Map's iterations and a Parallel's branches side by side); the latency profile gives how long
each wait takes. Each Task state is charged only what AWS itself takes (`AWS_WAITS`: the
resources it starts and the ones it waits for); Lambda run time, state transitions and poll
intervals count zero. The result is the fastest the declared workflow could possibly run on
AWS; a run's modelled time over it says what kubestep itself adds (polls that look too late,
Lambda time on the critical path).

Each step also remembers what held it up, so the chain that sets the bound (the critical path)
can be named state by state (`Bound.critical_path`), for the bench's timeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubestep.bootstrap.host import REPORT_SOON_SECONDS
from kubestep_local.latency import BootModel, Profile

# An NLB target is healthy after this many checks this far apart, once its load balancer is
# active and the instance serves (the target group kubestep makes: interval 10 s, threshold 2).
TARGET_HEALTHY_SECONDS = 10.0 * 2
# A node's report says "initialised" once the cloud controller manager (on a booted replica) has
# set its providerID: the instance simulator's `ccm_delay_seconds` after its boot.
NODE_INITIALISED_SECONDS = 10.0


@dataclass(frozen=True)
class Shape:
    """What the operation works on: how many items each Map iterates."""

    replicas: int = 3
    node_pools: int = 2
    zones: int = 3

    def items(self, items_path: str) -> list[Any]:
        counts = {"$.plan.replicas": self.replicas, "$.pools.names": self.node_pools, "$.zones.names": self.zones}
        if items_path not in counts:
            raise ValueError(f"critical path: no item count for a Map over {items_path}")
        return list(range(counts[items_path]))


@dataclass
class StepTime:
    """One Task state (of one Map item) in the bound's schedule, in modelled seconds."""

    state: str
    item: Any
    start: float
    end: float
    after: StepTime | None = None  # the step this one started after (its predecessor)
    held_by: StepTime | None = None  # the step whose AWS resource it waited for, when it waited


@dataclass
class Schedule:
    """What the walk knows: when each AWS resource is ready, and which step started it."""

    profile: Profile
    shape: Shape
    ready: dict[str, float] = field(default_factory=dict)
    started_by: dict[str, StepTime] = field(default_factory=dict)
    steps: list[StepTime] = field(default_factory=list)

    def seconds(self, state: str) -> float:
        return self.profile.seconds.get(state, 0.0)

    @property
    def boot(self) -> BootModel:
        return self.profile.boot or BootModel(0.0, 0.0, 0.0, 0.0, 0.0)

    def start(self, resource: str, step: StepTime, ready_at: float) -> None:
        self.ready[resource] = ready_at
        self.started_by[resource] = step

    def wait(self, step: StepTime, *resources: str) -> None:
        """The step ends when the last of `resources` is ready (those never started: at once)."""
        for resource in resources:
            ready_at = self.ready.get(resource)
            if ready_at is not None and ready_at > step.end:
                starter = self.started_by[resource]
                # Waiting for what it started itself, the step is held up by nothing else.
                step.end, step.held_by = ready_at, (None if starter is step else starter)


# -- what each step does to AWS, and what it waits for ------------------------------------------------
Wait = Callable[[Schedule, StepTime], None]


def _nat_gateway(s: Schedule, step: StepTime) -> None:
    s.start(f"nat:{step.item}", step, step.start + s.seconds("nat-gateway-pending"))


def _nat_gateways_available(s: Schedule, step: StepTime) -> None:
    s.wait(step, *(f"nat:{zone}" for zone in range(s.shape.zones)))


def _load_balancer(s: Schedule, step: StepTime) -> None:
    s.start("nlb", step, step.start + s.seconds("load-balancer-provisioning"))


def _etcd_volume(s: Schedule, step: StepTime) -> None:
    s.start(f"volume:{step.item}", step, step.start + s.seconds("volume-creating"))
    s.wait(step, f"volume:{step.item}")  # it attaches to nothing yet, but the step checks it


def _replica_group(s: Schedule, step: StepTime) -> None:
    """The replica's instance runs, installs its packages, then inits (the first) or joins
    after the replica before it."""
    running = step.start + s.seconds("instance-pending")
    ready = running + s.boot.ready_to_bootstrap()
    before = s.ready.get("joins-end")
    if before is None:
        reported = ready + s.boot.init
        s.start("control-plane-up", step, reported)
    else:
        reported = max(ready, before) + s.boot.control_plane_join
    s.start("joins-end", step, reported)
    s.start(f"replica:{step.item}", step, reported)


def _replica_health(s: Schedule, step: StepTime) -> None:
    # The gate passes once every replica's own report shows the whole control plane and its
    # target is healthy behind the active NLB.
    s.wait(step, *(_whole_control_plane(s, r) for r in range(s.shape.replicas)), "nlb")
    if s.seconds("target-health"):
        step.end += TARGET_HEALTHY_SECONDS


def _whole_control_plane(s: Schedule, replica: int) -> str:
    """The resource "replica `replica`'s report shows every planned member": a replica that
    reported before the last join reports again every REPORT_SOON_SECONDS (its fast report
    timer), so it says so at its first run from the last join on."""
    reported, joins_end = s.ready.get(f"replica:{replica}"), s.ready.get("joins-end")
    if reported is None or joins_end is None or reported >= joins_end:
        return f"replica:{replica}"
    runs = math.ceil((joins_end - reported) / REPORT_SOON_SECONDS)
    s.start(f"whole:{replica}", s.started_by[f"replica:{replica}"], reported + runs * REPORT_SOON_SECONDS)
    return f"whole:{replica}"


def _node_pool_group(s: Schedule, step: StepTime) -> None:
    running = step.start + s.seconds("instance-pending")
    up = s.ready.get("control-plane-up", 0.0)
    reported = max(running + s.boot.ready_to_bootstrap(), up) + s.boot.node_join
    initialised = NODE_INITIALISED_SECONDS if s.profile.boot else 0.0
    s.start(f"pool:{step.item}", step, reported + initialised)


def _node_pool_health(s: Schedule, step: StepTime) -> None:
    s.wait(step, f"pool:{step.item}")


def _delete_groups(kind: str) -> Wait:
    def delete(s: Schedule, step: StepTime) -> None:
        s.start(f"groups:{kind}", step, step.start + s.seconds("auto-scaling-group-deleting"))
        s.start(f"instances:{kind}", step, step.start + s.seconds("instance-shutting-down"))
        s.wait(step, f"groups:{kind}")

    return delete


def _instances_gone(s: Schedule, step: StepTime) -> None:
    s.wait(step, "instances:node-pool", "instances:control-plane")


def _delete_load_balancer(s: Schedule, step: StepTime) -> None:
    s.start("nlb-interfaces", step, step.start + s.seconds("load-balancer-interfaces-linger"))
    s.wait(step, "nlb-interfaces")  # the step polls until they are released


def _delete_security_groups(s: Schedule, step: StepTime) -> None:
    s.wait(step, "nlb-interfaces", "instances:node-pool", "instances:control-plane")


def _delete_nat_gateways(s: Schedule, step: StepTime) -> None:
    s.start("nat-deleted", step, step.start + s.seconds("nat-gateway-deleting"))
    s.wait(step, "nat-deleted")


# Task name (the step's registered name) -> what it does to AWS. A step not listed waits for
# nothing AWS takes time over (a tag, a secret, a launch template: settled in its own call).
AWS_WAITS: dict[str, Wait] = {
    "EnsureNatGateway": _nat_gateway,
    "CheckNatGateways": _nat_gateways_available,
    "EnsureLoadBalancer": _load_balancer,
    "EnsureEtcdVolume": _etcd_volume,
    "EnsureReplicaGroup": _replica_group,
    "CheckReplicaHealth": _replica_health,
    "EnsureNodePoolGroup": _node_pool_group,
    "CheckNodePoolHealth": _node_pool_health,
    "DeleteNodePoolGroups": _delete_groups("node-pool"),
    "DeleteControlPlaneGroups": _delete_groups("control-plane"),
    "TerminateInstances": _instances_gone,
    "DeleteInstanceRoles": _instances_gone,
    "DeleteLoadBalancer": _delete_load_balancer,
    "DeleteSecurityGroups": _delete_security_groups,
    "DeleteNatGateways": _delete_nat_gateways,
}


@dataclass
class Bound:
    workflow: str
    seconds: float
    steps: list[StepTime]
    last: StepTime | None

    def critical_path(self) -> list[StepTime]:
        """The steps that set the bound, first to last: from the last step back through what
        held each up (the step that started the resource it waited for) or, if nothing did, the
        step it followed."""
        path: list[StepTime] = []
        step = self.last
        while step is not None:
            path.append(step)
            step = step.held_by or step.after
        return list(reversed(path))

    def critical_states(self) -> set[str]:
        return {step.state for step in self.critical_path()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "lowerBoundSeconds": round(self.seconds, 1),
            "criticalPath": [
                {"state": s.state, "item": s.item, "start": round(s.start, 1), "end": round(s.end, 1)}
                for s in self.critical_path()
            ],
        }


def lower_bound(definition: dict[str, Any], profile: Profile, shape: Shape | None = None, *, name: str = "") -> Bound:
    """The bound of a rendered workflow (`Workflow.render()`), along its success path (a Choice
    takes its default; Catch edges are failures, not part of it)."""
    schedule = Schedule(profile, shape or Shape())
    end, last = _walk(schedule, definition["States"], definition["StartAt"], 0.0, None, None)
    return Bound(name or definition.get("Comment", "")[:40], end, schedule.steps, last)


def _walk(
    s: Schedule, states: dict[str, Any], name: str | None, t: float, item: Any, last: StepTime | None
) -> tuple[float, StepTime | None]:
    while name is not None:
        body = states[name]
        kind = body["Type"]
        if kind == "Task":
            last = _task(s, name, body, t, item, last)
            t = last.end
        elif kind == "Map":
            t, last = _fork(s, t, last, [(body["ItemProcessor"], i) for i in s.shape.items(body["ItemsPath"])])
        elif kind == "Parallel":
            t, last = _fork(s, t, last, [(branch, item) for branch in body["Branches"]])
        elif kind == "Wait":
            t += float(body.get("Seconds", 0))
        elif kind in ("Succeed", "Fail"):
            return t, last
        name = body.get("Default") if kind == "Choice" else body.get("Next")
    return t, last


def _fork(
    s: Schedule, t: float, last: StepTime | None, branches: list[tuple[dict[str, Any], Any]]
) -> tuple[float, StepTime | None]:
    """Branches (Map items, Parallel branches) start together; the state ends with the last."""
    end, latest = t, last
    for branch, item in branches:
        branch_end, branch_last = _walk(s, branch["States"], branch["StartAt"], t, item, last)
        if branch_end >= end:
            end, latest = branch_end, branch_last
    return end, latest


def _task(s: Schedule, name: str, body: dict[str, Any], t: float, item: Any, last: StepTime | None) -> StepTime:
    step = StepTime(name, item, t, t, after=last)
    task = body.get("Parameters", {}).get("Payload", {}).get("task")
    wait = AWS_WAITS.get(task or "")
    if wait is not None:
        wait(s, step)
    s.steps.append(step)
    return step
