"""How long an execution would have taken on AWS, from its history in the emulator.

The emulator compresses every AWS wait by the time scale: a Retry's backoff and a Wait state
sleep `scale` times their declared seconds, and the latency model's resources (a NAT gateway
pending, an instance booting) settle on the same compressed clock. A Lambda task's run time is
not compressed: it takes what it takes. So an execution's modelled time is its real time with
its waits stretched back by 1 / scale and its tasks counted as they ran.

Which time is a wait has to be decided per branch: with a Parallel's branches or a Map's
iterations side by side, one branch waits for an NLB while another runs task after task, and
the execution's modelled time is the longest path through them. Each branch (the execution, a
Parallel branch, a Map iteration) is read from the history's `previousEventId` chains; within a
branch:

- a Task state retried (a step polling an AWS resource that is not ready, or a transient
  error's backoff) waits from the end of its first attempt to the start of its last: that
  time runs on the compressed clock, on which the resource it waits for settles, so it counts
  scaled (the failed polls' own run time included: the resource's clock ran on meanwhile);
- a Wait state counts scaled;
- the first and the last attempt of each Task (the one that starts a resource, the one that
  finds it ready) and everything else (transitions) count as they ran;
- a Parallel or Map state counts as its slowest child: the child's modelled time plus the real
  time the fork spent outside that child (starting and collecting the branches).

A chain of waits within one branch therefore reads at least what the latency model imposed
(the bound's `critical_path` adds up the same waits), and a fork never reads below its slowest
branch, however busy the others are. What a history cannot tell is which earlier step started
the resource a poll waits for: a replica's instance started in one Map iteration and waited
for in a later Map keeps booting on the compressed clock while the other iterations' tasks
run, and that run time counts as run time here. On a loaded machine such a chain reads short
by that run time × (1 / scale - 1): a few seconds of a five-minute create.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FORKS = ("Parallel", "Map")
ITERATION_ENDED = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
FORK_ENDED = tuple(f"{kind}State{end}" for kind in FORKS for end in ("Succeeded", "Failed", "Aborted", "Exited"))
ATTEMPT_ENDED = ("TaskFailed", "TaskTimedOut", "TaskSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut")


def _seconds(stamp: Any) -> float:
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    if isinstance(stamp, str):
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return float(stamp)


@dataclass
class Fork:
    """A Parallel or Map state's run: its branches or iterations side by side."""

    kind: str
    name: str
    owner: Lane
    started_event: int = 0
    entered: float = 0.0
    exited: float | None = None
    children: list[Lane] = field(default_factory=list)

    def modelled(self, scale: float, end: float) -> tuple[float, float]:
        """(real seconds, modelled seconds): the slowest child's path through the fork."""
        real = (self.exited if self.exited is not None else end) - self.entered
        paths = [real - child.real(end) + child.modelled(scale, end)[0] for child in self.children]
        return real, max(paths, default=real)


@dataclass
class Lane:
    """One sequence of states: the execution, a Parallel branch or a Map iteration."""

    parent: Fork | None
    index: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    forks: list[Fork] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None

    def see(self, moment: float) -> None:
        self.started = moment if self.started is None else min(self.started, moment)
        self.ended = moment if self.ended is None else max(self.ended, moment)

    def real(self, end: float) -> float:
        if self.started is None:
            return 0.0
        return max((self.ended if self.ended is not None else end) - self.started, 0.0)

    def open_fork(self, kind: str, name: str | None) -> Fork | None:
        for fork in reversed(self.forks):
            if fork.exited is None and fork.kind == kind and (name is None or fork.name == name):
                return fork
        return None

    def scaled(self) -> float:
        """Real seconds of this lane's own waits: each retried Task from the end of its first
        attempt to the start of its last, and each Wait state."""
        total = 0.0
        first_attempt: float | None = None
        last_attempt: float | None = None
        waiting_since: float | None = None
        for event in self.events:
            kind, moment = event["type"], _seconds(event["timestamp"])
            if kind == "TaskStateEntered":
                first_attempt = last_attempt = None
            elif kind in ATTEMPT_ENDED and first_attempt is None:
                first_attempt = moment
            elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
                last_attempt = moment
            elif kind == "TaskStateExited" and first_attempt is not None and last_attempt is not None:
                total += max(last_attempt - first_attempt, 0.0)
                first_attempt = last_attempt = None
            elif kind == "WaitStateEntered":
                waiting_since = moment
            elif kind == "WaitStateExited" and waiting_since is not None:
                total += moment - waiting_since
                waiting_since = None
        return total

    def modelled(self, scale: float, end: float) -> tuple[float, float]:
        """(modelled seconds, of which scaled waits in real seconds) along this lane."""
        real = self.real(end)
        scaled = self.scaled()
        forks_real = forks_modelled = 0.0
        for fork in self.forks:
            fork_real, fork_modelled = fork.modelled(scale, end)
            forks_real += fork_real
            forks_modelled += fork_modelled
        stretched = scaled / scale if scale > 0 else 0.0
        return max(real - scaled - forks_real, 0.0) + stretched + forks_modelled, scaled


def lanes(events: list[dict[str, Any]]) -> Lane:
    """The execution's lane, its forks and their lanes, from the history's event chains."""
    root = Lane(None)
    lane_of: dict[int, Lane] = {}
    fork_started: dict[int, Fork] = {}
    for event in sorted(events, key=lambda e: e["id"]):
        kind, moment = event["type"], _seconds(event["timestamp"])
        here = lane_of.get(event.get("previousEventId") or 0, root)
        lane = _place(event, kind, here, fork_started, event.get("previousEventId") or 0)
        lane_of[event["id"]] = lane
        if kind in ("ParallelStateEntered", "MapStateEntered"):
            lane.forks.append(Fork(kind.removesuffix("StateEntered"), _name(event), lane, entered=moment))
        elif kind in ("ParallelStateStarted", "MapStateStarted") and lane.forks:
            lane.forks[-1].started_event = event["id"]
            fork_started[event["id"]] = lane.forks[-1]
        elif kind.endswith("StateExited") and kind.removesuffix("StateExited") in FORKS:
            fork = lane.open_fork(kind.removesuffix("StateExited"), _name(event))
            if fork is not None:
                fork.exited = moment
        if kind not in FORK_ENDED or kind.endswith("Exited"):
            lane.see(moment)
        lane.events.append(event)
    return root


def _place(event: dict[str, Any], kind: str, here: Lane, fork_started: dict[int, Fork], previous: int) -> Lane:
    """The lane an event belongs to: its predecessor's, unless it starts or ends a branch."""
    if kind == "MapIterationStarted":
        details = event.get("mapIterationStartedEventDetails") or {}
        fork = fork_started.get(previous) or _enclosing(here, "Map", details.get("name"))
        if fork is not None:
            return _child(fork, details.get("index"))
        return here
    if kind in ITERATION_ENDED:
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
        if here.parent is not None and here.index == details.get("index"):
            return here
        fork = _enclosing(here, "Map", details.get("name"))
        return next((c for c in fork.children if c.index == details.get("index")), here) if fork else here
    if kind in FORK_ENDED:
        fork_kind = "Parallel" if kind.startswith("Parallel") else "Map"
        name = _name(event) if kind.endswith("Exited") else None
        fork = _enclosing(here, fork_kind, name)
        return fork.owner if fork is not None else here
    if previous in fork_started:  # a Parallel branch's first state
        return _child(fork_started[previous], None)
    return here


def _child(fork: Fork, index: int | None) -> Lane:
    lane = Lane(fork, index)
    fork.children.append(lane)
    return lane


def _enclosing(lane: Lane | None, kind: str, name: str | None) -> Fork | None:
    """The innermost open fork of `kind` (and `name`) that `lane` is in or owns."""
    while lane is not None:
        fork = lane.open_fork(kind, name)
        if fork is not None:
            return fork
        parent = lane.parent
        if parent is not None and parent.exited is None and parent.kind == kind and name in (None, parent.name):
            return parent
        lane = parent.owner if parent is not None else None
    return None


def _name(event: dict[str, Any]) -> str:
    details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
    return str(details.get("name", ""))


def modelled_time(events: list[dict[str, Any]], time_scale: float, now: float | None = None) -> dict[str, Any]:
    """An execution's modelled AWS time from its history (`GetExecutionHistory`'s events, in any
    order); a running execution's so far (up to `now`)."""
    if not events:
        return {"realSeconds": 0.0, "scaledWaitSeconds": 0.0, "modelledSeconds": 0.0, "timeScale": time_scale}
    root = lanes(events)
    end = max(_seconds(e["timestamp"]) for e in events) if now is None else now
    if now is not None:
        root.ended = now
    modelled, _ = root.modelled(time_scale, end)
    real = root.real(end)
    # The real seconds the path's stretched waits took: what the modelled time adds back.
    scaled = (modelled - real) / (1 / time_scale - 1) if 0 < time_scale < 1 else 0.0
    return {
        "realSeconds": real,
        "scaledWaitSeconds": max(scaled, 0.0),
        "modelledSeconds": modelled,
        "timeScale": time_scale,
    }
