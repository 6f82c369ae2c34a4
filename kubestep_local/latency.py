"""A latency model of AWS for the local runtime: resources stay in their real intermediate states.

moto settles everything at once, so the polling paths of kubestep's steps (a NAT gateway
``pending``, an NLB ``provisioning``, a volume ``creating``, targets ``initial`` then
``unhealthy``, ...) never run. A *profile* says how long, in AWS's own seconds ("modelled
time"), each intermediate state lasts; the runtime's time scale compresses them like every other
wait (``realistic`` at time scale 0.02 keeps a NAT gateway ``pending`` for 3.6 real seconds).

Profiles (modelled seconds; sources: AWS documentation and timings users of kOps, eksctl
and Cluster API AWS publish):

- ``instant``: moto's own behaviour (everything settles at once). The default.
- ``realistic``: what AWS typically takes.
- ``slow``: a bad day within what AWS documents (NAT gateways up to 10 minutes, instances 48 s).

The patches live in ``moto_compat.model_latency``; this module holds the profiles, the clock of
pending transitions, who serves its health check (the instance simulator says when an instance
reported its bootstrap), and what the model did (``report()``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubestep_local import moto_compat
from kubestep_local.time_scale import TimeScale

LOG = logging.getLogger(__name__)

# Intermediate states the model knows (moto_compat.model_latency asks for these by name).
STATES = (
    "nat-gateway-pending",  # CreateNatGateway: pending -> available
    "nat-gateway-deleting",  # DeleteNatGateway: deleting -> deleted
    "load-balancer-provisioning",  # CreateLoadBalancer: provisioning -> active
    "load-balancer-interfaces-linger",  # an NLB's network interfaces after DeleteLoadBalancer
    "volume-creating",  # CreateVolume: creating -> available
    "instance-pending",  # RunInstances (and Auto Scaling launches): pending -> running
    "instance-shutting-down",  # TerminateInstances: shutting-down -> terminated
    "auto-scaling-group-deleting",  # DeleteAutoScalingGroup: "Delete in progress" -> gone
    "target-health",  # NLB targets: initial -> (unhealthy until the instance serves) -> healthy
)


@dataclass(frozen=True)
class BootModel:
    """Modelled seconds from an instance's ``running`` to its bootstrap report, phase by phase,
    as the bootstrap script runs them (docs/architecture.md, "First boot, in order").

    A cluster's first replica runs ``kubeadm init``; every other replica joins after it, one at a
    time (etcd takes one learner at a time and refuses a second while one is pending, so joins
    queue behind each other); a node joins once the control plane answers (its ``kubeadm join``
    retries discovery until then)."""

    os_boot: float
    """``running`` until cloud-init runs the bootstrap (kernel, systemd, cloud-init's stages)."""
    packages: float
    """AWS CLI, kernel modules, containerd and kubelet/kubeadm/kubectl from the package mirrors."""
    init: float
    """The first replica: etcd volume, ``kubeadm init`` (image pulls, static pods up, the API
    server answering), the add-ons."""
    control_plane_join: float
    """One joining replica: kubeadm's join phases, its etcd learner added, caught up, promoted."""
    node_join: float
    """A node, once the control plane answers: ``kubeadm join`` (TLS bootstrap, kubelet Ready)."""

    def ready_to_bootstrap(self) -> float:
        """Every role: until the packages are installed (nothing before waits for the cluster)."""
        return self.os_boot + self.packages

    def first_replica(self) -> float:
        return self.ready_to_bootstrap() + self.init

    def replicas(self, count: int) -> float:
        """Until the last of `count` replicas launched together has reported: the first's init,
        then each join in turn."""
        return self.first_replica() + max(count - 1, 0) * self.control_plane_join

    def node(self, control_plane_up: float = 0.0) -> float:
        """A node launched at 0, the control plane answering at `control_plane_up`."""
        return max(self.ready_to_bootstrap(), control_plane_up) + self.node_join


# What the boot phases take. Published figures: EC2's pending -> running is ~16 s and a cold
# launch reaches SSH in ~26 s (github.com/brevdev/ec2-coldboot-research, "Key Findings"), so
# cloud-init starts ~10 s after `running`; kubeadm's own limit for the control plane to come up
# is 4 min (`kubeadm init`, phase wait-control-plane: "This can take up to 4m0s"). Estimates
# (no published measurement; what kubeadm-on-EC2 runs of kOps/Cluster API users report): the
# packages ~45 s from a regional mirror, `kubeadm init` with image pulls and add-ons ~75 s, a
# control-plane join ~60 s, a node's join ~20 s. `slow`: each about twice to three times that.
REALISTIC_BOOT = BootModel(os_boot=10.0, packages=45.0, init=75.0, control_plane_join=60.0, node_join=20.0)
SLOW_BOOT = BootModel(os_boot=30.0, packages=120.0, init=180.0, control_plane_join=150.0, node_join=60.0)


@dataclass(frozen=True)
class Profile:
    name: str
    seconds: dict[str, float] = field(default_factory=dict)
    """Modelled seconds per intermediate state; "target-health" is a switch (its windows come
    from each target group's own health check interval and thresholds, as on AWS)."""
    boot: BootModel | None = None
    """How long an instance boots, per role; None: the instance simulator's fixed boot delay
    (quick, for tests)."""

    def __post_init__(self) -> None:
        unknown = set(self.seconds) - set(STATES)
        if unknown:
            raise ValueError(f"profile {self.name}: unknown states {sorted(unknown)}")


PROFILES: dict[str, Profile] = {
    "instant": Profile("instant"),
    "realistic": Profile(
        "realistic",
        {
            "nat-gateway-pending": 180.0,  # "a few minutes"
            "nat-gateway-deleting": 60.0,
            "load-balancer-provisioning": 150.0,
            "load-balancer-interfaces-linger": 60.0,
            "volume-creating": 10.0,
            "instance-pending": 30.0,  # EC2 instances are running in 25-48 s
            "instance-shutting-down": 30.0,
            "auto-scaling-group-deleting": 45.0,
            "target-health": 1.0,
        },
        REALISTIC_BOOT,
    ),
    "slow": Profile(
        "slow",
        {
            "nat-gateway-pending": 600.0,  # NAT gateways: up to 10 min pending -> available
            "nat-gateway-deleting": 300.0,
            "load-balancer-provisioning": 300.0,
            "load-balancer-interfaces-linger": 300.0,
            "volume-creating": 60.0,
            "instance-pending": 48.0,
            "instance-shutting-down": 120.0,
            "auto-scaling-group-deleting": 180.0,
            "target-health": 1.0,
        },
        SLOW_BOOT,
    ),
}
PROFILE_NAMES = tuple(PROFILES)


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"latency profile: must be one of {', '.join(PROFILES)} (got {name!r})") from None


@dataclass(order=True)
class _Transition:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    what: str = field(compare=False)


class LatencyModel:
    """The clock of intermediate states (``moto_compat.LatencyHooks``).

    ``set_profile`` may be called at any time; patches are installed on the first profile that
    is not ``instant`` and stay (with ``instant`` every delay is 0, so moto's own behaviour is
    back, and transitions still pending settle at once)."""

    def __init__(self, time_scale: TimeScale, profile_name: str = "instant") -> None:
        self.time_scale = time_scale
        self.profile = profile(profile_name)
        self._patches = moto_compat.PatchSet()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[_Transition] = []
        self._seq = itertools.count()
        self._serving: dict[str, float] = {}
        self._imposed: dict[str, list[float]] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- control ------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._stopped = False
        if self.profile.seconds:
            self._install()

    def set_profile(self, name: str) -> Profile:
        new = profile(name)
        with self._lock:
            self.profile = new
            if not new.seconds:  # instant: what is still pending settles now
                for transition in self._heap:
                    transition.due = 0.0
                heapq.heapify(self._heap)
            self._wake.notify_all()
        if new.seconds:
            self._install()
        return new

    def _install(self) -> None:
        with self._lock:
            if self._patches or self._stopped:
                return
            moto_compat.model_latency(self._patches, self)
            self._thread = threading.Thread(target=self._run, name="kubestep-latency", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._patches.undo()

    # -- moto_compat.LatencyHooks ---------------------------------------------------------------
    def delay(self, what: str) -> float:
        modelled = self.profile.seconds.get(what, 0.0)
        if not modelled:
            return 0.0
        with self._lock:
            self._imposed.setdefault(what, []).append(modelled)
        return self.time_scale.seconds(modelled)

    def models(self, what: str) -> bool:
        return bool(self.profile.seconds.get(what))

    def real(self, modelled_seconds: float) -> float:
        return self.time_scale.seconds(modelled_seconds)

    def later(self, seconds: float, action: Callable[[], None], what: str) -> None:
        with self._lock:
            heapq.heappush(self._heap, _Transition(time.monotonic() + seconds, next(self._seq), action, what))
            self._wake.notify_all()

    def serving_since(self, instance_id: str) -> float | None:
        with self._lock:
            return self._serving.get(instance_id)

    # -- what the instance simulator tells ------------------------------------------------------
    def mark_serving(self, instance_id: str) -> None:
        """The instance answers its health check from now on (it reported a good bootstrap)."""
        with self._lock:
            self._serving.setdefault(instance_id, time.time())

    # -- reading ----------------------------------------------------------------------------------
    def pending(self) -> int:
        """Transitions not yet due."""
        with self._lock:
            return len(self._heap)

    def report(self) -> dict[str, dict[str, float]]:
        """Per intermediate state the model imposed: how many times, and the modelled seconds."""
        with self._lock:
            return {
                what: {"count": len(values), "modelledSeconds": sum(values), "eachSeconds": max(values)}
                for what, values in sorted(self._imposed.items())
            }

    def reset_report(self) -> None:
        with self._lock:
            self._imposed.clear()

    # -- the clock ----------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopped and (not self._heap or self._heap[0].due > time.monotonic()):
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                transition = heapq.heappop(self._heap)
            try:
                transition.action()
            except Exception:  # noqa: BLE001 - one transition must not stop the clock
                LOG.exception("latency model: transition %s failed", transition.what)
