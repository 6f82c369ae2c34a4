"""Elastic Load Balancing v2: load balancers, target groups and listeners, where moto 5.2.5
answers a resent create differently from AWS, activates a load balancer at once, or reports a
target healthy the moment it is registered."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from kubestep_local.moto_compat.core import PatchSet, iter_backends
from kubestep_local.moto_compat.latency import LatencyHooks, Later

# ---------------------------------------------------------------- a resent call meets AWS's answer


def create_load_balancer_once(patches: PatchSet) -> None:
    """CreateLoadBalancer makes a second load balancer of the same name in moto: AWS returns the
    one it has when the settings are the same, else ``DuplicateLoadBalancerName`` (ELBv2 API
    reference, CreateLoadBalancer: "This operation is idempotent")."""
    from moto.elbv2.exceptions import DuplicateLoadBalancerName
    from moto.elbv2.models import ELBv2Backend

    original_create_lb = ELBv2Backend.create_load_balancer

    def create_load_balancer(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        existing = next((lb for lb in self.load_balancers.values() if lb.name == name), None)
        if existing is None:
            return original_create_lb(self, name, *args, **kwargs)
        same = (kwargs.get("scheme") or "internet-facing") == existing.scheme and (
            kwargs.get("loadbalancer_type") or "application"
        ) == existing.type
        if not same:
            raise DuplicateLoadBalancerName()
        return existing

    patches.set(ELBv2Backend, "create_load_balancer", create_load_balancer)


def create_target_group_once(patches: PatchSet) -> None:
    """CreateTargetGroup answers ``DuplicateTargetGroupName`` for the same settings in moto: AWS
    returns the existing group (ELBv2 API reference, CreateTargetGroup: "This operation is
    idempotent")."""
    from moto.elbv2.models import ELBv2Backend

    original_create_tg = ELBv2Backend.create_target_group

    def create_target_group(self: Any, name: str, **kwargs: Any) -> Any:
        existing = next((tg for tg in self.target_groups.values() if tg.name == name), None)
        if existing is not None and (kwargs.get("protocol"), str(kwargs.get("port")), kwargs.get("vpc_id")) == (
            existing.protocol,
            str(existing.port),
            existing.vpc_id,
        ):
            return existing
        return original_create_tg(self, name, **kwargs)

    patches.set(ELBv2Backend, "create_target_group", create_target_group)


def create_listener_once(patches: PatchSet) -> None:
    """CreateListener never sees a listener on the same port in moto (it looks the port up among
    ARNs): AWS returns the same listener for the same settings, ``DuplicateListener`` otherwise
    (ELBv2 API reference, CreateListener: "This operation is idempotent")."""
    from moto.elbv2.exceptions import DuplicateListenerError
    from moto.elbv2.models import ELBv2Backend

    original_create_listener = ELBv2Backend.create_listener

    def create_listener(self: Any, load_balancer_arn: str, protocol: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        balancer = self.load_balancers.get(load_balancer_arn)
        for listener in list(balancer.listeners.values()) if balancer is not None else []:
            if str(listener.port) != str(port):
                continue
            wanted = [(a.get("Type"), a.get("TargetGroupArn")) for a in kwargs.get("actions") or []]
            have = [(a.type, a.data.get("TargetGroupArn")) for a in listener.default_actions]
            if listener.protocol == protocol and wanted == have:
                return listener
            raise DuplicateListenerError()
        return original_create_listener(self, load_balancer_arn, protocol, port, *args, **kwargs)

    patches.set(ELBv2Backend, "create_listener", create_listener)


# ---------------------------------------------------------------- latency


def load_balancers_take_time(patches: PatchSet, hooks: LatencyHooks, later: Later) -> None:
    """An NLB is ``provisioning`` for minutes (ELBv2 API reference, LoadBalancerState); moto
    activates it on the first describe. It has a network interface per subnet, which lingers
    after the NLB is deleted (Elastic Load Balancing: "Network interfaces for your Network Load
    Balancer"), so deleting its security group answers ``DependencyViolation`` meanwhile. Wraps
    the create that answers a resent call (``create_load_balancer_once``)."""
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer

    original_create_lb = vars(ELBv2Backend)["create_load_balancer"]
    original_delete_lb = ELBv2Backend.delete_load_balancer
    original_activate = FakeLoadBalancer.activate

    def create_load_balancer(self: Any, *args: Any, **kwargs: Any) -> Any:
        known = set(self.load_balancers)
        balancer = original_create_lb(self, *args, **kwargs)
        if balancer.arn in known:
            return balancer  # an idempotent repeat (match_aws_semantics)
        delay = hooks.delay("load-balancer-provisioning")
        if delay:
            balancer._kubestep_active_at = time.time() + delay
        if balancer.type == "network" and hooks.models("load-balancer-interfaces-linger"):
            lb_id = balancer.arn.rsplit("/", 1)[-1]
            balancer._kubestep_enis = [
                self.ec2_backend.create_network_interface(
                    subnet,
                    private_ip_address=None,
                    group_ids=list(balancer.security_groups or []),
                    description=f"ELB net/{balancer.name}/{lb_id}",
                ).id
                for subnet in balancer.subnets
            ]
        return balancer

    def activate(self: Any) -> None:
        if time.time() >= getattr(self, "_kubestep_active_at", 0):
            original_activate(self)

    def delete_load_balancer(self: Any, arn: str) -> None:
        balancer = self.load_balancers.get(arn)
        original_delete_lb(self, arn)
        enis = list(getattr(balancer, "_kubestep_enis", ()))
        if not enis:
            return
        ec2 = self.ec2_backend

        def release() -> None:
            for eni_id in enis:
                with contextlib.suppress(Exception):
                    ec2.delete_network_interface(eni_id)

        delay = hooks.delay("load-balancer-interfaces-linger")
        if delay:
            later(delay, release, "load-balancer-interfaces-linger")
        else:
            release()

    patches.set(ELBv2Backend, "create_load_balancer", create_load_balancer)
    patches.set(ELBv2Backend, "delete_load_balancer", delete_load_balancer)
    patches.set(FakeLoadBalancer, "activate", activate)


def targets_take_time(patches: PatchSet, hooks: LatencyHooks) -> None:
    """An NLB target is ``initial`` for its health check's threshold, then ``unhealthy`` until the
    instance serves its health check (here: its bootstrap report, ``hooks.serving_since``) for
    that long (ELBv2 API reference, TargetHealth); moto reports it healthy once registered, and
    refuses to register an instance that is still pending (Auto Scaling registers it as it
    launches)."""
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original_register = FakeTargetGroup.register
    original_health_for = FakeTargetGroup.health_for

    def register(self: Any, targets: list[dict[str, Any]]) -> None:
        # Auto Scaling registers an instance as it launches (pending); moto accepts only running.
        launching = [
            t for t in targets if getattr(self.ec2_backend.get_instance_by_id(t["Id"]), "state", "") == "pending"
        ]
        original_register(self, [t for t in targets if t not in launching])
        for target in launching:
            self.targets[target["Id"]] = {"Id": target["Id"], "Port": target.get("Port", self.port)}
            self.deregistered_targets.pop(target["Id"], None)
        stamps = self.__dict__.setdefault("_kubestep_registered", {})
        for target in targets:
            stamps.setdefault(target["Id"], time.time())

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        health = original_health_for(self, target, ec2_backend)
        registered = getattr(self, "_kubestep_registered", {}).get(target["Id"])
        if health.status != "healthy" or registered is None or not hooks.models("target-health"):
            return health
        interval = float(self.health_check_interval_seconds or 30)
        healthy_after = hooks.real(interval * int(self.healthy_threshold_count or 5))
        unhealthy_after = hooks.real(interval * int(self.unhealthy_threshold_count or 2))
        now = time.time()
        # AWS runs a target's health checks only once its load balancer is active: a target
        # registered while the NLB provisions stays `initial` (Elb.RegistrationInProgress) until then.
        checks_from = max(registered, _load_balancers_active_at(self))
        serving = hooks.serving_since(target["Id"])
        if serving is not None and now >= max(serving, checks_from) + healthy_after:
            return health
        port, check_port = health.port, health.health_check_port
        if now < checks_from + unhealthy_after:
            reason = ("Elb.RegistrationInProgress", "Target registration is in progress")
            return FakeHealthStatus(target["Id"], port, check_port, "initial", *reason)
        return FakeHealthStatus(
            target["Id"], port, check_port, "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
        )

    patches.set(FakeTargetGroup, "register", register)
    patches.set(FakeTargetGroup, "health_for", health_for)


def _load_balancers_active_at(target_group: Any) -> float:
    """When the target group's last load balancer became (or becomes) active; 0 if unmodelled."""
    from moto.elbv2.models import elbv2_backends

    backend = elbv2_backends[target_group.account_id][target_group.region_name]
    balancers = (backend.load_balancers.get(arn) for arn in target_group.load_balancer_arns)
    return max((getattr(lb, "_kubestep_active_at", 0.0) for lb in balancers if lb is not None), default=0.0)


def keep_load_balancers_provisioning(seconds: float) -> int:
    """Every load balancer the latency model still has provisioning stays so for at least
    `seconds` more (a test that must see it provisioning, whatever the machine's load); returns
    how many were held."""
    from moto.elbv2.models import elbv2_backends

    held = 0
    for _account, _region, backend in iter_backends(elbv2_backends):
        for balancer in list(backend.load_balancers.values()):
            active_at = getattr(balancer, "_kubestep_active_at", 0.0)
            if active_at > time.time():
                balancer._kubestep_active_at = max(active_at, time.time() + seconds)
                held += 1
    return held
