"""Auto Scaling: groups read as plain data; group deletion and instance launch that take time,
as on AWS; and termination lifecycle hooks, which moto 5.2.5 ignores."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubestep_local.moto_compat.core import PatchSet, iter_backends
from kubestep_local.moto_compat.latency import LatencyHooks, Later, settle

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


@dataclass(frozen=True)
class AutoScalingGroupInfo:
    name: str
    account: str
    region: str
    tags: dict[str, str]
    instance_ids: list[str]


def autoscaling_groups() -> list[AutoScalingGroupInfo]:
    from moto.autoscaling.models import autoscaling_backends

    groups = []
    for account, region, backend in iter_backends(autoscaling_backends):
        for group in list(backend.autoscaling_groups.values()):
            tags = {t.get("Key") or t.get("key"): t.get("Value") or t.get("value") for t in group.tags}
            groups.append(
                AutoScalingGroupInfo(
                    name=group.name,
                    account=account,
                    region=region,
                    tags=tags,
                    instance_ids=[state.instance.id for state in list(group.instance_states)],
                )
            )
    return groups


# ---------------------------------------------------------------- latency


def group_instances_take_time(patches: PatchSet, later: Later) -> None:
    """An Auto Scaling instance is ``Pending`` while its EC2 instance is ``pending`` (Auto
    Scaling user guide, "Amazon EC2 Auto Scaling instance lifecycle"); moto puts it InService at
    once. It follows the instance's own launch (``ec2.instances_take_time``)."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    original_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_replace(self, *args, **kwargs)
        for state in list(self.instance_states):
            due = getattr(state.instance, "_kubestep_running_at", None)
            if due and state.lifecycle_state == "InService" and state.instance.state == "pending":
                state.lifecycle_state = "Pending"
                later(
                    max(0.0, due - time.time()),
                    lambda s=state: settle(s, "lifecycle_state", "Pending", "InService"),
                    "auto-scaling-instance-pending",
                )
        return result

    patches.set(FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace_instances)


def groups_take_time_to_delete(patches: PatchSet, hooks: LatencyHooks, later: Later) -> None:
    """A deleted group is ``Delete in progress`` until its instances are gone (Auto Scaling API
    reference, AutoScalingGroup.Status); moto removes it at once. A force delete terminates the
    instances at once ("deletes the group along with all instances associated with the group,
    without waiting for all instances to be terminated", DeleteAutoScalingGroup's ForceDelete):
    they shut down while the group is being deleted, not after it."""
    from moto.autoscaling.models import AutoScalingBackend

    original_delete_group = AutoScalingBackend.delete_auto_scaling_group

    def delete_auto_scaling_group(self: Any, group_name: str) -> None:
        group = self.autoscaling_groups.get(group_name)
        delay = hooks.delay("auto-scaling-group-deleting")
        if group is None or not delay:
            return original_delete_group(self, group_name)
        if getattr(group, "status", None) == "Delete in progress":
            return None

        def finish() -> None:
            if self.autoscaling_groups.get(group_name) is group:
                group.instance_states = []  # terminated when the delete began
                original_delete_group(self, group_name)

        ids = [state.instance.id for state in group.instance_states]
        if ids:
            self.ec2_backend.terminate_instances(ids)
        group.status = "Delete in progress"
        later(delay, finish, "auto-scaling-group-deleting")
        return None

    patches.set(AutoScalingBackend, "delete_auto_scaling_group", delete_auto_scaling_group)


# ---------------------------------------------------------------- termination lifecycle hooks


@dataclass
class PendingLifecycleAction:
    """An instance in Terminating:Wait until its lifecycle action completes (or times out)."""

    token: str
    account: str
    region: str
    group: str
    hook: str
    instance_id: str
    heartbeat_timeout: int
    default_result: str
    started: float


_LIFECYCLE: dict[str, PendingLifecycleAction] = {}
_LIFECYCLE_LOCK = threading.Lock()


def pending_lifecycle_actions() -> list[PendingLifecycleAction]:
    with _LIFECYCLE_LOCK:
        return list(_LIFECYCLE.values())


def _finish_termination(action: PendingLifecycleAction) -> None:
    from moto.autoscaling.models import autoscaling_backends

    backend = autoscaling_backends[action.account][action.region]
    group = backend.autoscaling_groups.get(action.group)
    if group is not None:
        group.instance_states = [s for s in group.instance_states if s.instance.id != action.instance_id]
    with contextlib.suppress(Exception):
        backend.ec2_backend.terminate_instances([action.instance_id])


def complete_lifecycle_action_for(token_or_instance: str, result: str = "CONTINUE") -> bool:
    """Complete a pending termination (what CompleteLifecycleAction does); True if one matched."""
    with _LIFECYCLE_LOCK:
        action = _LIFECYCLE.pop(token_or_instance, None)
        if action is None:
            match = [t for t, a in _LIFECYCLE.items() if a.instance_id == token_or_instance]
            action = _LIFECYCLE.pop(match[0]) if match else None
    if action is None:
        return False
    _finish_termination(action)
    return True


def expire_lifecycle_actions(now: float, real_seconds: Callable[[float], float]) -> list[str]:
    """Auto Scaling's heartbeat timeout: past it, the default result applies (for a terminating
    hook, CONTINUE and ABANDON both terminate the instance)."""
    expired = []
    for action in pending_lifecycle_actions():
        due = now - action.started >= real_seconds(action.heartbeat_timeout)
        if due and complete_lifecycle_action_for(action.token, action.default_result):
            expired.append(action.instance_id)
    return expired


def emulate_lifecycle_hooks(patches: PatchSet) -> None:
    """moto 5.2.5 ignores lifecycle hooks and has no CompleteLifecycleAction: an instance of a
    group with a termination hook goes to `Terminating:Wait`, Auto Scaling sends the
    `EC2 Instance-terminate Lifecycle Action` event to EventBridge (rules route it on, e.g. to a
    queue), and the instance terminates when its action completes or its heartbeat times out
    (Auto Scaling user guide, "Amazon EC2 Auto Scaling lifecycle hooks")."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.autoscaling.responses import AutoScalingResponse

    original_terminate = AutoScalingBackend.terminate_instance

    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        state, group = _managed_instance(self, instance_id)
        hook = _terminating_hook(self, group)
        if hook is None:
            return original_terminate(self, instance_id, should_decrement)
        return _wait_for_lifecycle_action(self, state, group, hook, should_decrement)

    patches.set(AutoScalingBackend, "terminate_instance", terminate_instance)

    def complete_lifecycle_action(self: Any) -> str:
        token = self._get_param("LifecycleActionToken") or self._get_param("InstanceId")
        complete_lifecycle_action_for(token, self._get_param("LifecycleActionResult") or "CONTINUE")
        return (
            '<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
            "<CompleteLifecycleActionResult/><ResponseMetadata><RequestId>"
            f"{uuid.uuid4()}</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>"
        )

    patches.set(AutoScalingResponse, "complete_lifecycle_action", complete_lifecycle_action)
    patches.on_undo(lambda: _LIFECYCLE.clear())


def _managed_instance(backend: Any, instance_id: str) -> tuple[Any, Any]:
    """(the instance's state in its group, the group); moto's own lookup of an instance no group
    holds raises StopIteration (a 500): AWS answers a ValidationError, e.g. to a resent terminate
    whose first call already took the instance out of its group (Auto Scaling API reference,
    TerminateInstanceInAutoScalingGroup)."""
    from moto.autoscaling.exceptions import ValidationError

    groups = backend.autoscaling_groups.values()
    state = next((s for g in groups for s in g.instance_states if s.instance.id == instance_id), None)
    if state is None:
        raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
    return state, getattr(state.instance, "autoscaling_group", None)


def _terminating_hook(backend: Any, group: Any) -> Any:
    """The group's first termination hook, or None."""
    hooks = backend.describe_lifecycle_hooks(group.name) if group is not None else []
    return next((h for h in hooks if h.lifecycle_transition == TERMINATING), None)


def _wait_for_lifecycle_action(backend: Any, state: Any, group: Any, hook: Any, should_decrement: bool) -> Any:
    """The instance to ``Terminating:Wait`` until its action completes (once: a resent terminate
    finds it waiting), the group's capacity as AWS counts it, and the hook's event sent."""
    from moto.autoscaling.models import TerminateInstanceActivity

    if state.lifecycle_state == "Terminating:Wait":
        return TerminateInstanceActivity(state.instance, group.desired_capacity)
    original_size = group.desired_capacity
    state.lifecycle_state = "Terminating:Wait"
    action = PendingLifecycleAction(
        token=str(uuid.uuid4()),
        account=backend.account_id,
        region=backend.region_name,
        group=group.name,
        hook=hook.name,
        instance_id=state.instance.id,
        heartbeat_timeout=int(hook.heartbeat_timeout or 3600),
        default_result=hook.default_result or "ABANDON",
        started=time.monotonic(),
    )
    with _LIFECYCLE_LOCK:
        _LIFECYCLE[action.token] = action
    if should_decrement:
        group.desired_capacity = (group.desired_capacity or 0) - 1
    # Only InService instances count for moto's capacity: without a decrement, a
    # replacement launches while this one waits (as on AWS).
    group.set_desired_capacity(group.desired_capacity)
    _send_lifecycle_event(group, action)
    return TerminateInstanceActivity(state.instance, original_size)


def _send_lifecycle_event(group: Any, action: PendingLifecycleAction) -> None:
    """The ``EC2 Instance-terminate Lifecycle Action`` event, on the default bus."""
    from moto.events.models import events_backends

    detail = {
        "LifecycleActionToken": action.token,
        "AutoScalingGroupName": group.name,
        "LifecycleHookName": action.hook,
        "EC2InstanceId": action.instance_id,
        "LifecycleTransition": TERMINATING,
    }
    event = {
        "Source": "aws.autoscaling",
        "DetailType": "EC2 Instance-terminate Lifecycle Action",
        "Detail": json.dumps(detail),
        "Resources": [group.arn],
    }
    with contextlib.suppress(Exception):
        events_backends[action.account][action.region].put_events([event])
