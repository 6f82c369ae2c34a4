"""Auto Scaling's health replacement, which moto lacks: `SetInstanceHealth` with `Unhealthy` only
records the status in moto 5, and its response ignores `ShouldRespectGracePeriod`.

On AWS (Amazon EC2 Auto Scaling API Reference, SetInstanceHealth; User Guide, "Health checks for
instances in an Auto Scaling group" and "Set the health check grace period"), an instance marked
Unhealthy is terminated and replaced: it goes through the group's termination lifecycle hooks
(here moto_compat's lifecycle emulation: `Terminating:Wait`, the lifecycle event to EventBridge,
the instance terminated once its action completes), and the group launches a successor to keep
its desired capacity. A call that respects the grace period (the default) does nothing to an
instance still within the group's `HealthCheckGracePeriod` from its launch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubestep_local.moto_compat.core import PatchSet


def _within_grace(state: Any, real_seconds: Callable[[float], float]) -> bool:
    group = state.auto_scaling_group
    grace = float(getattr(group, "health_check_grace_period", 0) or 0)
    launched = state.instance.launch_time
    if isinstance(launched, str):
        launched = datetime.fromisoformat(launched.replace("Z", "+00:00"))
    if launched.tzinfo is None:
        launched = launched.replace(tzinfo=UTC)
    return (datetime.now(UTC) - launched).total_seconds() < real_seconds(grace)


def emulate_health_replacement(patches: PatchSet, real_seconds: Callable[[float], float]) -> None:
    """Replace instances marked Unhealthy as Auto Scaling does (`real_seconds`: the runtime's
    time scale, applied to the group's grace period like every other AWS duration)."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import EmptyResult

    def set_instance_health(self: Any, instance_id: str, health_status: str, respect_grace: bool = True) -> None:
        state = next(
            (s for g in self.autoscaling_groups.values() for s in g.instance_states if s.instance.id == instance_id),
            None,
        )
        if state is None:
            from moto.autoscaling.exceptions import ValidationError

            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        if health_status == "Unhealthy" and respect_grace and _within_grace(state, real_seconds):
            return  # the grace period protects it from health checks, this one included
        state.health_status = health_status
        if health_status == "Unhealthy" and state.lifecycle_state == "InService":
            # Replaced, not removed: the group keeps its desired capacity.
            self.terminate_instance(instance_id, should_decrement=False)

    def set_instance_health_response(self: Any) -> Any:
        status = self._get_param("HealthStatus")
        if status not in ("Healthy", "Unhealthy"):
            raise ValueError("Valid instance health states are: [Healthy, Unhealthy]")
        respect = self._get_param("ShouldRespectGracePeriod")
        self.autoscaling_backend.set_instance_health(
            self._get_param("InstanceId"), status, respect_grace=str(respect).lower() != "false"
        )
        return EmptyResult()

    patches.set(AutoScalingBackend, "set_instance_health", set_instance_health)
    patches.set(AutoScalingResponse, "set_instance_health", set_instance_health_response)
