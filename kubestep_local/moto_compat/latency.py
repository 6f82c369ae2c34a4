"""What the latency model's patches share: the questions they ask the model
(``LatencyHooks``, answered by ``kubestep_local.latency``), a transition scheduled under the
state gate, and the conditional moves out of an intermediate state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kubestep_local.moto_compat.core import GATE, REQUEST_LOCK

# (real seconds, the transition, what it models): run the transition then.
Later = Callable[[float, Callable[[], None], str], None]


class LatencyHooks(Protocol):
    """What ``model_latency``'s patches ask the latency model (``kubestep_local.latency``)."""

    def delay(self, what: str) -> float:
        """Real seconds ``what`` stays in its intermediate state (0: settles at once)."""
        ...

    def models(self, what: str) -> bool:
        """Whether the profile models ``what`` at all (nothing is imposed by asking)."""
        ...

    def real(self, modelled_seconds: float) -> float:
        """Real seconds for modelled AWS seconds (the time scale)."""
        ...

    def later(self, seconds: float, action: Callable[[], None], what: str) -> None:
        """Run ``action`` (a state transition) after ``seconds`` real seconds."""
        ...

    def serving_since(self, instance_id: str) -> float | None:
        """Since when (``time.time()``) the instance answers its health check; None: not yet."""
        ...


def gated(hooks: LatencyHooks) -> Later:
    """``hooks.later``, the transition run under the state gate: a snapshot sees a transition
    whole or not at all, and no request sees it half done."""

    def later(seconds: float, action: Callable[[], None], what: str) -> None:
        def run() -> None:
            with GATE.shared(), REQUEST_LOCK:
                action()

        hooks.later(seconds, run, what)

    return later


def settle(obj: Any, attribute: str, intermediate: str, final: str) -> None:
    """``obj.attribute = final`` unless something else changed it meanwhile."""
    if getattr(obj, attribute, None) == intermediate:
        setattr(obj, attribute, final)


def instance_to(instance: Any, intermediate: str, name: str, code: int) -> None:
    """An EC2 instance from ``intermediate`` to state ``name`` (``code``), unless it moved on."""
    if instance._state.name == intermediate:
        instance._state.name, instance._state.code = name, code
