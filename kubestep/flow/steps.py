"""Steps: the Python functions Task states run, declared once with their properties.

    @step(creates=True)                                  # waits out eventual consistency
    def ensure_security_groups(ctx: ClusterContext) -> dict: ...

    @step(poll=Poll(deadline=timedelta(minutes=10), interval=10))   # polls AWS with a deadline
    def check_load_balancer_active(ctx: ClusterContext) -> dict: ...

The decorator registers the step under its CamelCase name. Its first parameter's type says
which context the dispatcher builds from the event (`ClusterContext`, `NetworkContext`, or
`StepInput` for the raw event); further parameters are read from the event by their camelCase
name (`replica` from `"replica"`, `node_pool` from `"nodePool"`). The state machines' retry
budget for `ResourcePending` is derived from the step's `Poll`, so the Python deadline and the
ASL retry policy can never disagree (a test checks the budget is never shorter)."""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

# The interpreter waits at least this much longer than the Python deadline before giving up
# (Lambda run time and clock skew eat into the budget).
BUDGET_MARGIN = 1.2


@dataclass(frozen=True)
class Poll:
    """How a waiting step is retried: `ResourcePending` → Retry every `interval` seconds,
    growing by `backoff` up to `max_delay`, until the step's `deadline` has passed; then the
    step itself raises `ResourceTimeout`.

    `first`: for a resource AWS takes a known while over (a NAT gateway pending, a load
    balancer's interfaces released), the step's first wait of an operation raises
    `ResourceSettling` instead, retried once after `first` seconds (when the resource could
    plausibly be ready), so the short intervals after it poll only near the end; 0: none."""

    deadline: timedelta
    interval: int = 5
    backoff: float = 1.5
    max_delay: int = 30
    first: int = 0

    def delays(self, attempts: int) -> list[float]:
        return [min(self.interval * self.backoff**k, self.max_delay) for k in range(attempts)]

    @property
    def max_attempts(self) -> int:
        """The fewest retries whose waits add up to the deadline (with margin)."""
        wanted = self.deadline.total_seconds() * BUDGET_MARGIN
        attempts, total = 0, 0.0
        while total < wanted:
            total += min(self.interval * self.backoff**attempts, self.max_delay)
            attempts += 1
        return max(attempts, 1)

    @property
    def budget_seconds(self) -> float:
        return self.first + sum(self.delays(self.max_attempts))


# Steps that create something and use it at once wait out EC2's eventual consistency (a new id
# answered "not found" for a few seconds) this long.
VISIBILITY = Poll(deadline=timedelta(minutes=3), interval=2, backoff=1.5, max_delay=20)


@dataclass(frozen=True)
class Param:
    name: str  # Python parameter
    key: str  # event key
    kind: type


@dataclass(frozen=True)
class StepSpec:
    name: str
    fn: Callable[..., dict]
    creates: bool
    poll: Poll | None
    description: str = ""
    _hints: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def waits(self) -> bool:
        """Does the state machine retry `ResourcePending` for this step?"""
        return self.creates or self.poll is not None

    @property
    def pending_policy(self) -> Poll:
        if self.poll is None:
            return VISIBILITY
        if self.creates and VISIBILITY.deadline > self.poll.deadline:
            return VISIBILITY
        return self.poll

    @cached_property
    def signature(self) -> tuple[type, tuple[Param, ...]]:
        """(context type, event parameters), resolved on first use (annotations are strings)."""
        hints = typing.get_type_hints(self.fn)
        names = list(inspect.signature(self.fn).parameters)
        context = hints[names[0]]
        params = tuple(Param(n, camel(n), _plain_type(hints.get(n, str))) for n in names[1:])
        return context, params


def _plain_type(hint: Any) -> type:
    origin = typing.get_origin(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if args else str
    if origin is not None:
        return origin if isinstance(origin, type) else str
    return hint if isinstance(hint, type) else str


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


STEPS: dict[str, StepSpec] = {}


def step(name: str | Callable | None = None, *, creates: bool = False, poll: Poll | None = None) -> Callable:
    """Register a step function (see the module docstring); `@step` or `@step(...)`."""
    if callable(name):
        return step()(name)

    def register(fn: Callable[..., dict]) -> Callable[..., dict]:
        step_name = name or pascal(fn.__name__)
        existing = STEPS.get(step_name)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"step {step_name} is declared twice ({existing.fn.__module__}, {fn.__module__})")
        doc = (fn.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        spec = StepSpec(step_name, fn, creates, poll, doc)
        STEPS[step_name] = spec
        fn.step = spec  # type: ignore[attr-defined]
        return fn

    return register


def spec_of(fn: Callable | StepSpec) -> StepSpec:
    if isinstance(fn, StepSpec):
        return fn
    spec = getattr(fn, "step", None)
    if spec is None:
        raise TypeError(f"{fn!r} is not a step (decorate it with @step)")
    return spec


def human(delta: timedelta | float) -> str:
    """15m, 1h30m, 45s: how the CLI and messages show durations."""
    seconds = int(math.ceil(delta.total_seconds() if isinstance(delta, timedelta) else delta))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
