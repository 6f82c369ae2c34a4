"""`ResourcePending` with a deadline: the state machine retries a pending step (cheaper in
state transitions than Wait/Choice loops), and a step past its deadline fails distinctly."""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from kubestep.errors import ResourcePending, ResourceTimeout
from kubestep.registry import Registry, now


def pending(
    registry: Registry,
    operation_id: str,
    step: str,
    deadline: timedelta,
    message: str,
    time_scale: float = 1.0,
) -> NoReturn:
    started = registry.step_started(step, operation_id)
    if now() - started > deadline * time_scale:
        raise ResourceTimeout(f"{message} (still not ready after {deadline})")
    raise ResourcePending(message)
