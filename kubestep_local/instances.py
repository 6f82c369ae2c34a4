"""The instance simulator: plays the part of kubestep's EC2 instances in the emulator.

moto makes ASG instances ``InService`` and NLB targets ``healthy`` at once and nothing boots, so
the health gate's last signal -- the instance's own report (docs/contracts.md, "Bootstrap
report") -- would never arrive. For each new instance of an Auto Scaling group tagged
``gke:cluster-uid``, once EC2 has it ``running`` and after a time-scaled boot (the latency
profile's ``BootModel`` per role: a cluster's first replica runs ``kubeadm init``, the other
replicas join one after another, a node joins only once its control plane answers; without a
model, a fixed delay, but a node still waits for its control plane), the simulator does through
boto3 (served by moto in this process: `moto_compat/in_process.py`) what the bootstrap script
does with the instance role: a replica claims initialisation
(unless the cluster is initialised) and marks it done, every instance writes its report under
its own key, with the Kubernetes version its user-data installs (as ``kubelet --version`` tells
the real one); an instance that booted well then rewrites its report every
``report_interval_seconds`` (time-scaled), as its report timer does, with what it would see then
-- a replica every ``report_soon_seconds`` while its report falls short of the whole control
plane (every planned etcd member started, etcd healthy, its API server ready), as its fast
report timer does (`kubestep.bootstrap.host.REPORT_SOON_TIMER`):

- a control-plane replica: the etcd members started (the cluster's replicas that have booted
  and still run; no learner once booted), etcd healthy while they hold a quorum, its API server
  ready, the generation of the cluster's administrators item its authenticator serves (it
  re-reads the item, as the replica's timer does, and keeps the generation it serves when the
  item cannot be read), and its certificates' expiries (leaf
  certificates a year after the replica joined, kubeadm's default; the cluster CA from its
  certificate);
- a node: Ready, and once the cluster's cloud controller manager runs (a booted replica) and
  ``ccm_delay_seconds`` passed, initialised by it (``nodeInitialized``, providerID set).

The periodic reports are written in passes (`report_pass.py`): a pass runs when some report's
timer elapses at the end of its AccuracySec window, and takes every report whose window has
begun, most overdue first, by a small pool of writers (the reporter sleeps until then); what a
cluster's replicas all see is read once per pass (etcd's members) or once per
`report_pass_seconds` (its etcd config, its CA); how late each report runs behind its timer is
counted (`report_lag`), so an overloaded simulator shows as lag, never as reports written
early. Boots are taken on a thread of their own at their due time, each cluster's written in
order by its own booter; while boot reports are written, settled instances' heartbeats wait (at
most an interval).

Each call an instance makes is recorded as its instance role's (``CallRecord.role_name``, with
the instance's ARN), so the IAM check evaluates them against the policy the functions put on
that role; what the simulator only reads to play its part (etcd membership, the cluster CA) is
not recorded. Tests can make chosen instances report ``failed:<phase>``, boot late (a slow
join), hold their boot until released, keep the cloud controller manager from ever
initialising a cluster's nodes, or keep a cluster's replicas from reading its administrators
item; and, after a good boot, stop an instance's periodic report (its heartbeat) or make a
replica's API server stop answering (automatic repair's faults).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from kubestep import backups, naming
from kubestep.aws import errors as aws_errors
from kubestep.bootstrap import bundle
from kubestep.bootstrap.host import REPORT_ACCURACY_SECONDS, REPORT_SOON_ACCURACY_SECONDS, REPORT_SOON_SECONDS
from kubestep.restore import RESTORE_ERROR, RESTORED_BACKUP, RESTORED_TOKEN
from kubestep.store import keys
from kubestep.store.backups import BackupRecord
from kubestep.store.records import ClusterRecord, EtcdConfig
from kubestep_local import moto_compat
from kubestep_local._worker import record_safe
from kubestep_local.latency import BootModel
from kubestep_local.moto_compat import in_process
from kubestep_local.recorder import CallRecord, CallRecorder
from kubestep_local.report_pass import ReportLag, ReportPass
from kubestep_local.time_scale import TimeScale

LOG = logging.getLogger(__name__)

UID_TAG = "gke:cluster-uid"
NAME_TAG = "gke:cluster"
ROLE_TAG = "gke:role"
REPLICA_TAG = "gke:replica"
NODEPOOL_TAG = "gke:nodepool"
# The reporter's longest sleep between passes: it is woken for a new instance, so this bounds
# only what nothing wakes it for.
REPORTER_SLEEP_SECONDS = 1.0


@dataclass
class Match:
    """Which instances an injected behaviour applies to."""

    cluster: str  # uid or name
    role: str = "control-plane"
    replica: int | None = None  # None: every replica of the role
    nodepool: str | None = None
    remaining: int | None = None  # None: every matching instance; else that many times

    def matches(self, boot: PendingBoot) -> bool:
        if self.cluster not in (boot.uid, boot.cluster_name):
            return False
        if self.role != boot.role:
            return False
        if self.replica is not None and boot.replica != self.replica:
            return False
        if self.nodepool is not None and boot.nodepool != self.nodepool:
            return False
        return self.remaining is None or self.remaining > 0

    def use(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


@dataclass
class Failure(Match):
    """An injected bootstrap failure: matching instances report ``failed:<phase>``."""

    phase: str = "kubeadm-join"


@dataclass
class Delay(Match):
    """A slow boot (a join that takes long): matching instances report ``seconds`` later."""

    seconds: float = 0.0


@dataclass(order=True)
class PendingBoot:
    due: float
    seq: int
    instance_id: str = field(compare=False)
    region: str = field(compare=False)
    uid: str = field(compare=False)
    cluster_name: str | None = field(compare=False)
    role: str = field(compare=False)
    replica: int | None = field(compare=False)
    nodepool: str | None = field(compare=False)
    asg_name: str = field(compare=False)


@dataclass
class LiveInstance:
    """A booted instance that reports periodically, with what it knows of itself."""

    boot: PendingBoot
    booted_at: float  # monotonic
    joined_at: datetime  # wall clock: its certificates were signed then
    zone: str | None
    # When its report timer elapses at the latest (monotonic), and how long before that it may
    # (systemd's AccuracySec window): a pass due for another instance takes it along.
    next_report: float = 0.0
    report_window: float = 0.0
    # A replica whose latest report falls short of the whole control plane: its fast report
    # timer runs.
    short: bool = False
    # Its latest report said all a health gate waits for (a replica: the whole control plane; a
    # node: initialised by the cloud controller manager): its next timer report restates it.
    settled: bool = False
    # The administrators generation its authenticator serves (None: no mapping yet).
    admins_generation: int | None = None
    # What its user-data installs; the real instance reports `kubelet --version`.
    version: str | None = None
    # What a replica's boot-time restore reported (the new cluster token, or why it could not).
    restore_checks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    uid: str
    cluster_name: str | None
    role: str
    key: str
    status: str
    instance_id: str
    asg_name: str
    reported_at: str


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=256)
def installed_version(user_data: str | None) -> str | None:
    """The Kubernetes version an instance's bootstrap installs: `KUBERNETES_VERSION` of the
    settings file its cloud-config writes, as the real bootstrap reads it. Every report asks
    again and the replicas of a pool share one user data: parsed once per text."""
    return bundle.instance_settings(user_data).get("KUBERNETES_VERSION") or None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# What `kubeadm certs check-expiration` lists and the script reports (docs/contracts.md,
# `certificates`): leaf certificates and kubeconfigs kubeadm signs for a year (its default
# `certificateValidityPeriod`), per replica, and the kubelet's own client certificate.
LEAF_CERTIFICATES = (
    "admin.conf",
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "controller-manager.conf",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "scheduler.conf",
    "kubelet-client",
)
LEAF_VALIDITY = timedelta(days=365)
# What a pass reads of a cluster (`_read_cluster`): the etcd config's planned membership, the
# record's incarnation and its CA certificate.
CLUSTER_FACTS = (
    EtcdConfig.attribute("members"),
    ClusterRecord.attribute("uid"),
    ClusterRecord.attribute("cluster_ca_certificate"),
)


@functools.lru_cache(maxsize=256)
def ca_expiry(certificate_pem: str | None) -> datetime | None:
    """When the cluster CA (its certificate on the cluster record) expires (parsed once per
    certificate: every replica's every report says it)."""
    if not certificate_pem:
        return None
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(certificate_pem.encode()).not_valid_after_utc
    except ValueError:
        return None


def replica_whole(checks: dict[str, Any], planned_members: int) -> bool:
    """A replica's report shows the whole control plane: every planned etcd member started, etcd
    healthy, its API server ready (what the management service's gate waits for; the script's
    CONTROL_PLANE_WHOLE)."""
    return (
        checks.get("etcdMembers") == planned_members
        and checks.get("etcdHealthy") is True
        and checks.get("apiserverReady") is True
    )


def claim_initialisation(store: Any, boot: PendingBoot) -> None:
    """What a replica's first successful boot does in the registry: unless the cluster is
    initialised, claim initialisation (the conditional put) and, having claimed it, mark it done."""
    if not store.reports.initialized(boot.uid) and store.reports.claim_init(boot.uid, boot.instance_id, boot.replica):
        store.reports.mark_initialized(boot.uid)


class InstanceSimulator:
    """Background thread: watch kubestep ASGs' instances, report their bootstrap when "booted",
    then report periodically while they run."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        table_name: str | None = None,
        time_scale: TimeScale | None = None,
        boot_delay_seconds: float = 20.0,
        poll_interval: float = 0.1,
        on_report: Callable[[Report], None] | None = None,
        recorder: CallRecorder | None = None,
        report_interval_seconds: float = 60.0,
        report_soon_seconds: float = REPORT_SOON_SECONDS,
        ccm_delay_seconds: float = 10.0,
        boot_model: Callable[[], BootModel | None] = lambda: None,
        report_writers: int = 6,
        report_pass_seconds: float = 1.0,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.table_name = table_name
        self.time_scale = time_scale or TimeScale(1.0)
        self.boot_delay_seconds = boot_delay_seconds
        # The latency profile's boot per role (None: every instance boots in `boot_delay_seconds`).
        self.boot_model = boot_model
        # Per cluster uid: when its control plane answered (its first replica initialised it),
        # and when the last join scheduled so far ends (joins queue behind each other).
        self._initialised_at: dict[str, float] = {}
        self._joins_end: dict[str, float] = {}
        self._registry_read: dict[str, float] = {}
        self._scheduling = threading.Lock()
        # Nodes booted up to their join, retrying it until their control plane answers.
        self._awaiting_control_plane: list[tuple[PendingBoot, float]] = []
        self.poll_interval = poll_interval
        # Every booted instance rewrites its report this often (the script's report timer: 60 s).
        self.report_interval_seconds = report_interval_seconds
        # A replica whose report falls short of the whole control plane reports again this soon
        # (the script's fast report timer: 10 s), until its report is whole.
        self.report_soon_seconds = report_soon_seconds
        # How long after a node's boot the cloud controller manager initialises it.
        self.ccm_delay_seconds = ccm_delay_seconds
        self._seen: set[str] = set()
        self._being_scheduled = 0
        self._launching = 0
        self._pending: list[PendingBoot] = []
        self._failures: list[Failure] = []
        # Boots held back (tests: one replica's new instance stays unbooted while others go on).
        self._holds: list[Match] = []
        self._held: list[PendingBoot] = []
        self._delays: list[Delay] = []
        self._ccm_stalled: set[str] = set()
        self._admins_unreadable: set[str] = set()
        self._live: dict[str, LiveInstance] = {}
        self._adopt_checked: set[str] = set()
        self._reports: list[Report] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # boto3 clients and resources per thread (a resource is not thread-safe), made one at a
        # time (nor is making clients from the default session).
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._clients_lock = threading.Lock()
        # Periodic reports are written on their own thread, apart from boots, scans and drains,
        # in passes back to back (a pass's shared facts at most `report_pass_seconds` old), each
        # by a small pool, most overdue first: every request waits its turn at the emulator's one
        # request lock, and one writer's turn came too seldom to keep hundreds of instances'
        # reports within the gates' staleness window.
        self.report_writers = report_writers
        self.report_pass_seconds = report_pass_seconds
        self._writers: ThreadPoolExecutor | None = None
        # What the periodic passes read of each cluster (`_read_cluster`), and when: a pass that
        # starts within `report_pass_seconds` of a read takes it, as a long pass's later reports
        # take its first one's (a cluster's replicas report at different moments, so each would
        # otherwise read it for itself: a fifth of the periodic reports' CPU at rest, by cProfile).
        self._cluster_reads: dict[tuple[str, str, str | None], tuple[float, tuple[int | None, datetime | None]]] = {}
        # How often the simulator has read what a cluster's replicas share (scripts/idle_cpu.py
        # counts them: unlike the instances' own calls, they are not recorded).
        self.cluster_reads = 0
        # Boot reports of different clusters due together are written side by side.
        self._booters: ThreadPoolExecutor | None = None
        self._being_reported = 0  # taken from the queue, report not written yet: still pending
        # Each cluster's boots taken from the queue, written in due order by one booter at a time
        # (its init claim, then its joins); the clusters whose booter runs.
        self._boot_queues: dict[str, collections.deque[tuple[PendingBoot, str]]] = {}
        self._boots_written = threading.Condition(self._lock)  # told when no boot report is left
        # Due boots are taken on their own thread, at their due time: behind the main loop's
        # scans and drains, and behind the last batch's slowest cluster, they waited seconds.
        self._wake_boots = threading.Event()
        self._boot_thread: threading.Thread | None = None
        self._reporter: threading.Thread | None = None
        # Between passes the reporter sleeps until the earliest report is due; a newly booted (or
        # adopted) instance wakes it, as does stop().
        self._wake_reports = threading.Event()
        # Per control-plane replica, when its newest instance booted, and a lock that orders its
        # instances' writes: a replaced instance's report never lands after its successor's.
        self._newest_replica: dict[tuple[str, int], float] = {}
        self._replica_locks: dict[tuple[str, int], threading.Lock] = {}
        # How late reports are written against their due time (the bench prints the largest).
        self.report_lag = ReportLag()
        self._etcd_revisions: dict[str, int] = {}  # each cluster's etcd revision, as its snapshots say
        self.paused = False
        # Told of every report written (the latency model: the instance now serves /readyz).
        self.on_report = on_report
        # The instances' own calls, as their roles' (the IAM check evaluates them).
        self.recorder = recorder
        self._principal = threading.local()
        self._accounts: dict[str, str] = {}
        # The termination handler's part (queue mode): drain, then complete the lifecycle action.
        self.drain_delay_seconds = 20.0
        self._stalled: set[str] = set()
        self.drained: list[tuple[str, str]] = []  # (instance id, lifecycle hook) completed by the "handler"
        # Faults after a good boot (automatic repair): instances whose report timer stopped, and
        # replicas whose API server stopped answering.
        self._silenced: set[str] = set()
        self._unready: set[str] = set()

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        if self.report_writers > 1:
            self._writers = ThreadPoolExecutor(self.report_writers, thread_name_prefix="kubestep-instance-report")
            self._booters = ThreadPoolExecutor(self.report_writers, thread_name_prefix="kubestep-instance-boot")
        self._thread = threading.Thread(target=self._run, name="kubestep-instance-simulator", daemon=True)
        self._thread.start()
        self._boot_thread = threading.Thread(target=self._run_boots, name="kubestep-instance-boots", daemon=True)
        self._boot_thread.start()
        self._reporter = threading.Thread(target=self._run_reports, name="kubestep-instance-reports", daemon=True)
        self._reporter.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake_boots.set()
        self._wake_reports.set()
        for thread in (self._thread, self._boot_thread, self._reporter):
            if thread is not None:
                thread.join(timeout=5)
        self._thread = self._boot_thread = self._reporter = None
        for pool in (self._writers, self._booters):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._writers = self._booters = None
        with self._lock:  # boots taken but not written go back to the queue: a restart writes them
            for boots in self._boot_queues.values():
                for boot, _ in boots:
                    heapq.heappush(self._pending, boot)
                self._being_reported -= len(boots)
            self._boot_queues.clear()
            self._boots_written.notify_all()

    def fail_bootstrap(
        self,
        cluster: str,
        replica: int | None = None,
        phase: str = "kubeadm-join",
        *,
        role: str = "control-plane",
        nodepool: str | None = None,
        times: int | None = None,
    ) -> Failure:
        """Make matching instances (cluster uid or name) report ``failed:<phase>``.

        ``replica=None`` matches every replica of ``role``; ``times`` limits how many instances
        fail (default: all, including replacements).
        """
        if role == "node" and nodepool is None and replica is not None:
            raise ValueError("nodes have no replica index; pass nodepool=")
        failure = Failure(cluster, role, replica, nodepool, times, phase=phase)
        with self._lock:
            self._failures.append(failure)
        return failure

    def hold_boots(
        self, cluster: str, replica: int | None = None, *, role: str = "control-plane", nodepool: str | None = None
    ) -> Match:
        """Matching instances (cluster uid or name) do not boot until `release_boots()`: a roll
        waits at that replica's (or pool's) health gate for as long as a test needs."""
        hold = Match(cluster, role, replica, nodepool)
        with self._lock:
            self._holds.append(hold)
        return hold

    def release_boots(self, hold: Match | None = None) -> None:
        """Boot what `hold` (every hold, by default) held back, at once (their boot delay has
        passed), and hold those no more."""
        with self._lock:
            holds = [hold] if hold is not None else list(self._holds)
            self._holds = [h for h in self._holds if h not in holds]
            released = [boot for boot in self._held if any(h.matches(boot) for h in holds)]
            self._held = [boot for boot in self._held if boot not in released]
            for boot in released:
                boot.due = time.monotonic()
                heapq.heappush(self._pending, boot)
        self._wake_boots.set()

    def awaiting_control_plane(self) -> list[str]:
        """Instance ids of nodes ready to join whose control plane does not answer yet."""
        with self._lock:
            return [boot.instance_id for boot, _ in self._awaiting_control_plane]

    def held(self) -> list[str]:
        """Instance ids held back by `hold_boots`, booted once released."""
        with self._lock:
            return [boot.instance_id for boot in self._held]

    def delay_boot(
        self,
        cluster: str,
        replica: int | None = None,
        seconds: float = 300.0,
        *,
        role: str = "control-plane",
        nodepool: str | None = None,
        times: int | None = None,
    ) -> Delay:
        """Make matching instances (cluster uid or name) finish booting ``seconds`` (modelled,
        time-scaled) later than the others: a replica that joins etcd late."""
        if role == "node" and nodepool is None and replica is not None:
            raise ValueError("nodes have no replica index; pass nodepool=")
        delay = Delay(cluster, role, replica, nodepool, times, seconds=seconds)
        with self._lock:
            self._delays.append(delay)
        return delay

    def stall_cloud_controller(self, cluster: str) -> None:
        """The cloud controller manager of `cluster` (uid or name) never initialises a node: its
        nodes stay Ready with the uninitialized taint and no providerID."""
        with self._lock:
            self._ccm_stalled.add(cluster)

    def resume_cloud_controller(self) -> None:
        with self._lock:
            self._ccm_stalled.clear()

    def refuse_admins(self, cluster: str) -> None:
        """The replicas of `cluster` (uid or name) cannot read its administrators item (as with
        a role missing its grant): they keep serving the generation they had, and say why."""
        with self._lock:
            self._admins_unreadable.add(cluster)

    def allow_admins(self) -> None:
        with self._lock:
            self._admins_unreadable.clear()

    def stall_drains(self, cluster: str) -> None:
        """The termination handler of `cluster` (uid or name) stops completing lifecycle actions,
        so a roll waits for the drain until its deadline (the timeout path)."""
        with self._lock:
            self._stalled.add(cluster)

    def resume_drains(self) -> None:
        with self._lock:
            self._stalled.clear()

    # -- faults after a good boot ----------------------------------------------------------------
    def _live_matching(self, match: Match) -> list[str]:
        """Matching booted instances that still run. A terminated or replaced instance stays in
        `_live` until its next report timer notices; a fault aimed at it would hit nothing."""
        with self._lock:
            found = [live for live in self._live.values() if match.matches(live.boot)]
        return sorted(
            live.boot.instance_id
            for live in found
            if not self._replaced(live) and moto_compat.instance_running(live.boot.region, live.boot.instance_id)
        )

    def stop_heartbeat(
        self,
        cluster: str,
        *,
        role: str = "node",
        nodepool: str | None = None,
        replica: int | None = None,
        count: int | None = None,
        instance_id: str | None = None,
    ) -> list[str]:
        """Matching instances that booted well (cluster uid or name; one, by `instance_id`) stop
        writing their periodic report, as a hung or cut-off instance does; returns their ids (at
        most `count`)."""
        matching = self._live_matching(Match(cluster, role, replica, nodepool))
        chosen = [i for i in matching if instance_id in (None, i)][:count]
        with self._lock:
            self._silenced.update(chosen)
        return chosen

    def live_instances(self, cluster: str, role: str) -> dict[str, int | None]:
        """The cluster's booted instances of `role` that run: instance id -> replica index."""
        running = set(self._live_matching(Match(cluster, role)))
        with self._lock:
            return {i: live.boot.replica for i, live in sorted(self._live.items()) if i in running}

    def fail_after_healthy(self, cluster: str, replica: int) -> list[str]:
        """The replica's running instance, healthy until now, keeps reporting, but its API server
        no longer answers (`apiserverReady: false`); returns its id. Its successor is unaffected."""
        chosen = self._live_matching(Match(cluster, "control-plane", replica))
        with self._lock:
            self._unready.update(chosen)
        return chosen

    def restore_health(self) -> None:
        """Forget the faults of `stop_heartbeat` and `fail_after_healthy`."""
        with self._lock:
            self._silenced.clear()
            self._unready.clear()

    def clear_failures(self) -> None:
        """Forget injected bootstrap failures and slow boots."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    def reports(self) -> list[Report]:
        with self._lock:
            return list(self._reports)

    def pending(self) -> int:
        with self._lock:
            queued = len(self._pending) + len(self._held) + len(self._awaiting_control_plane)
            return queued + self._being_scheduled + self._being_reported + self._launching

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every instance seen so far has reported (or was skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.scan()
            if not self.pending():
                return True
            time.sleep(self.poll_interval)
        return False

    # -- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            # Each phase on its own: one that fails (moto's races) must not starve the others —
            # a scan that keeps failing would otherwise stop every periodic report, and the
            # health gates would read them as stale.
            for phase in (self.scan, self._join_nodes, self._drain_tick):
                try:
                    phase()
                except Exception:  # noqa: BLE001 - the simulator must survive moto's races
                    LOG.exception("instance simulator: %s failed", phase.__name__)
            self._stop.wait(self.poll_interval)

    def _run_boots(self) -> None:
        """Boot reports as they fall due: woken by a newly queued boot, or at the earliest due."""
        while not self._stop.is_set():
            try:
                self._report_due()
            except Exception:  # noqa: BLE001 - the simulator must survive moto's races
                if self._stop.is_set():  # stopped meanwhile: its booters were shut down under it
                    return
                LOG.exception("instance simulator: taking the due boots failed")
            with self._lock:
                earliest = self._pending[0].due if self._pending else None
            wait = self.poll_interval if earliest is None else min(self.poll_interval, earliest - time.monotonic())
            if wait > 0:
                self._wake_boots.wait(wait)
            self._wake_boots.clear()

    def _run_reports(self) -> None:
        """The periodic reports' passes, one after another while reports are due, then asleep
        until the next is (`_until_next_report`)."""
        while not self._stop.is_set():
            self._wake_reports.clear()
            written = 0
            try:
                written = self._report_live()
            except Exception:  # noqa: BLE001 - the simulator must survive moto's races
                if self._stop.is_set():  # stopped meanwhile: its writers were shut down under it
                    return
                LOG.exception("instance simulator: a pass of periodic reports failed")
            if not written:
                self._wake_reports.wait(self._until_next_report())

    def _until_next_report(self) -> float:
        """How long the reporter sleeps after a pass that wrote nothing: until the earliest
        report is due (a settled runtime's instances report seconds apart; waking every
        `poll_interval` to find nothing due cost ~0.1 CPU-s a minute), `poll_interval` while
        one is overdue (the simulator paused, a failed pass), at most REPORTER_SLEEP_SECONDS."""
        with self._lock:
            earliest = min((live.next_report for live in self._live.values()), default=None)
        if earliest is None:
            return REPORTER_SLEEP_SECONDS
        wait = earliest - time.monotonic()
        return min(wait, REPORTER_SLEEP_SECONDS) if wait > 0 else self.poll_interval

    def scan(self) -> None:
        """Schedule a boot for every instance not seen before in a kubestep ASG (late for one a
        test slowed down); take up the periodic reports of instances booted before a restore."""
        now = time.monotonic()
        launching = 0
        for group in moto_compat.autoscaling_groups():
            uid = group.tags.get(UID_TAG)
            if not uid:
                continue
            for instance_id in group.instance_ids:
                with self._lock:
                    seen = instance_id in self._seen
                if seen:
                    self._adopt(group, instance_id)
                    continue
                if moto_compat.instance_state(group.region, instance_id) == "pending":
                    launching += 1
                    continue  # boots once EC2 has it running (the latency model keeps it pending)
                with self._lock:
                    if instance_id in self._seen:
                        continue
                    self._seen.add(instance_id)
                    self._being_scheduled += 1  # seen but not queued yet: still pending
                try:
                    self._schedule(self._boot_of(group, instance_id, now), now)
                finally:
                    with self._lock:
                        self._being_scheduled -= 1
        with self._lock:
            self._launching = launching  # instances EC2 still has pending: not booted, not idle

    def _schedule(self, boot: PendingBoot, now: float) -> None:
        """When the instance, `running` since `now`, reports: a replica after its packages and its
        `kubeadm init`, or its join queued behind the others'; a node waits for its control plane
        (`_join_nodes`)."""
        model = self.boot_model()
        if boot.role == "node":
            ready = model.ready_to_bootstrap() if model else self.boot_delay_seconds
            with self._lock:
                self._awaiting_control_plane.append((boot, now + self.time_scale.seconds(ready)))
            return
        if model is None:
            boot.due = now + self.time_scale.seconds(self.boot_delay_seconds)
        else:
            ready = now + self.time_scale.seconds(model.ready_to_bootstrap())
            with self._scheduling:  # scans run on the loop and in `wait_idle`: one queue per cluster
                joins = self._initialised_or_joining(boot)
                if joins is None:  # the first replica: it claims initialisation
                    boot.due = ready + self.time_scale.seconds(model.init)
                else:
                    boot.due = max(ready, joins) + self.time_scale.seconds(model.control_plane_join)
                with self._lock:
                    self._joins_end[boot.uid] = max(boot.due, self._joins_end.get(boot.uid, 0.0))
        self._queue(boot)

    def _initialised_or_joining(self, boot: PendingBoot) -> float | None:
        """When a new replica of `boot`'s cluster can start its join (the end of the joins before
        it), or None if it is the cluster's first (no replica scheduled, and the registry says
        the cluster was never initialised)."""
        with self._lock:
            joins = self._joins_end.get(boot.uid)
        if joins is not None:
            return joins
        if self.table_name and self._store(boot.region, as_instance=False).reports.initialized(boot.uid):
            return 0.0
        return None

    def _join_nodes(self) -> None:
        """Nodes whose packages are in join once their control plane answers (its first replica
        initialised the cluster): until then `kubeadm join` retries discovery."""
        with self._lock:
            waiting = list(self._awaiting_control_plane)
        if not waiting or not self.table_name:
            return
        model = self.boot_model()
        answered: dict[str, float | None] = {}
        for boot, ready in waiting:
            if boot.uid not in answered:
                answered[boot.uid] = self._control_plane_up(boot)
            up = answered[boot.uid]
            if up is None:
                continue
            boot.due = max(ready, up) + (self.time_scale.seconds(model.node_join) if model else 0.0)
            with self._lock:
                if (boot, ready) not in self._awaiting_control_plane:
                    continue
                self._awaiting_control_plane.remove((boot, ready))
            self._queue(boot)

    def _control_plane_up(self, boot: PendingBoot) -> float | None:
        """When `boot`'s control plane started answering (None: not yet). A replica this
        simulator booted says so at once; otherwise (a runtime restored from a snapshot, a
        cluster initialised outside it) the registry is read, at most once a second per cluster."""
        now = time.monotonic()
        with self._lock:
            up = self._initialised_at.get(boot.uid)
            if up is not None or now - self._registry_read.get(boot.uid, -1.0) < 1.0:
                return up
            self._registry_read[boot.uid] = now
        if self._store(boot.region, as_instance=False).reports.initialized(boot.uid):
            with self._lock:
                return self._initialised_at.setdefault(boot.uid, now)
        with self._lock:
            waiting = [b for b, _ in self._awaiting_control_plane if b.uid == boot.uid]
        gone = {b.instance_id for b in waiting if not moto_compat.instance_running(b.region, b.instance_id)}
        with self._lock:  # instances terminated while they waited never report
            self._awaiting_control_plane = [w for w in self._awaiting_control_plane if w[0].instance_id not in gone]
        return None

    def _queue(self, boot: PendingBoot) -> None:
        with self._lock:
            for delay in self._delays:
                if delay.matches(boot):
                    boot.due += self.time_scale.seconds(delay.seconds)
                    delay.use()
                    break
            heapq.heappush(self._pending, boot)
        self._wake_boots.set()

    def _boot_of(self, group: Any, instance_id: str, due: float) -> PendingBoot:
        tags = group.tags
        role = tags.get(ROLE_TAG) or ("control-plane" if REPLICA_TAG in tags else "node")
        replica = None
        with contextlib.suppress(TypeError, ValueError):
            replica = int(tags.get(REPLICA_TAG))  # type: ignore[arg-type]
        return PendingBoot(
            due=due,
            seq=next(self._seq),
            instance_id=instance_id,
            region=group.region,
            uid=tags[UID_TAG],
            cluster_name=tags.get(NAME_TAG),
            role=role,
            replica=replica,
            nodepool=tags.get(NODEPOOL_TAG),
            asg_name=group.name,
        )

    def _adopt(self, group: Any, instance_id: str) -> None:
        """An instance that booted before a restore (`mark_booted`) and reported ok goes on
        reporting, as its timers would."""
        with self._lock:
            if instance_id in self._live or instance_id in self._adopt_checked or not self.table_name:
                return
            waiting = [b for b, _ in self._awaiting_control_plane]
            if any(b.instance_id == instance_id for b in [*self._pending, *self._held, *waiting]):
                return
            self._adopt_checked.add(instance_id)
        if not moto_compat.instance_running(group.region, instance_id):
            return
        boot = self._boot_of(group, instance_id, time.monotonic())
        store = self._store(group.region, as_instance=False)
        if boot.role == "control-plane" and boot.replica is not None:
            report = store.reports.replica(boot.uid, boot.replica)
        else:
            report = store.reports.node(boot.uid, instance_id, self._instance_arn(group.region, instance_id))
        if report is None or not report.ok or report.instance_id != instance_id:
            return
        live = LiveInstance(
            boot, time.monotonic(), datetime.now(UTC), self._zone(boot), time.monotonic(), version=self._version(boot)
        )
        with self._lock:
            self._add_live(live)

    def _add_live(self, live: LiveInstance) -> None:
        """`live` reports periodically from now on (under `_lock`); a replica's newest instance."""
        boot = live.boot
        self._live[boot.instance_id] = live
        self._wake_reports.set()  # its first report may be due before the reporter would wake
        if boot.role == "control-plane" and boot.replica is not None:
            key = (boot.uid, boot.replica)
            self._newest_replica[key] = max(self._newest_replica.get(key, live.booted_at), live.booted_at)

    def _replaced(self, live: LiveInstance) -> bool:
        """A replica whose successor has booted: its report item is the successor's now (while
        AWS still lists the old instance running, its report would overwrite the new one's and
        the gates would read the replica as not bootstrapped)."""
        boot = live.boot
        if boot.role != "control-plane" or boot.replica is None:
            return False
        with self._lock:
            return self._newest_replica.get((boot.uid, boot.replica), live.booted_at) > live.booted_at

    def _replica_writes(self, boot: PendingBoot) -> Any:
        """Held while a replica's instance writes its report (nothing for a node)."""
        if boot.role != "control-plane" or boot.replica is None:
            return contextlib.nullcontext()
        with self._lock:
            return self._replica_locks.setdefault((boot.uid, boot.replica), threading.Lock())

    # -- the node termination handler (queue mode) ----------------------------------------------
    def _client(self, service: str, region: str) -> Any:
        return self._per_thread((service, region), lambda: self._boto3_client(service, region))

    def _queued_actions(self, region: str, uid: str) -> dict[str, tuple[str, dict]]:
        """The lifecycle messages waiting in the cluster's termination queue: token -> (receipt, detail)."""
        sqs = self._client("sqs", region)
        try:
            url = sqs.get_queue_url(QueueName=f"gke-{uid}-node-termination")["QueueUrl"]
        except Exception:  # noqa: BLE001 - no queue: nothing reaches a handler
            return {}
        found: dict[str, tuple[str, dict]] = {}
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1).get(
            "Messages", []
        ):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(message["Body"])["detail"]
                found[detail["LifecycleActionToken"]] = (message["ReceiptHandle"], {**detail, "QueueUrl": url})
        return found

    def _drain_tick(self) -> None:
        """What aws-node-termination-handler does in queue mode, for each instance in
        Terminating:Wait: read the lifecycle message from its cluster's queue, cordon and drain
        the node (here: `drain_delay_seconds`, scaled), complete the lifecycle action through the
        Auto Scaling API, delete the message. A stalled cluster's handler does nothing, so the
        hook's heartbeat timeout ends the wait (Auto Scaling's own behaviour, emulated)."""
        now = time.monotonic()
        actions = moto_compat.pending_lifecycle_actions()
        if actions:
            groups = {g.name: g for g in moto_compat.autoscaling_groups()}
            queued: dict[tuple[str, str], dict[str, tuple[str, dict]]] = {}
            for action in actions:
                group = groups.get(action.group)
                tags = group.tags if group is not None else {}
                uid, name = tags.get(UID_TAG), tags.get(NAME_TAG)
                with self._lock:
                    stalled = bool({uid, name} & self._stalled)
                if not uid or stalled:
                    continue
                if now - action.started < self.time_scale.seconds(self.drain_delay_seconds):
                    continue
                key = (action.region, uid)
                if key not in queued:
                    queued[key] = self._queued_actions(action.region, uid)
                message = queued[key].pop(action.token, None)
                if message is None:
                    continue  # not delivered (yet): a handler only acts on what reaches its queue
                receipt, detail = message
                self._client("autoscaling", action.region).complete_lifecycle_action(
                    LifecycleHookName=detail["LifecycleHookName"],
                    AutoScalingGroupName=detail["AutoScalingGroupName"],
                    LifecycleActionToken=action.token,
                    LifecycleActionResult="CONTINUE",
                )
                self._client("sqs", action.region).delete_message(QueueUrl=detail["QueueUrl"], ReceiptHandle=receipt)
                with self._lock:
                    self.drained.append((action.instance_id, action.hook))
        moto_compat.expire_lifecycle_actions(now, self.time_scale.seconds)

    def booted(self) -> set[str]:
        """Instances that have booted (reported, or were gone before they could)."""
        with self._lock:
            waiting = [boot for boot, _ in self._awaiting_control_plane]
            return self._seen - {boot.instance_id for boot in [*self._pending, *self._held, *waiting]}

    def mark_booted(self, instance_ids: set[str]) -> None:
        """Known as booted already (restored from a snapshot): they do not boot again."""
        with self._lock:
            self._seen |= set(instance_ids)

    def _store(self, region: str, *, as_instance: bool = True) -> Any:
        """The table as an instance reaches it (its calls recorded as its role's), or, for what
        the simulator only reads to play its part, unrecorded."""
        from kubestep.store import Store

        def make() -> Any:
            resource = in_process.resource("dynamodb", region)
            if as_instance:
                self._record_calls_of(resource.meta.client)
            return Store.for_table(self.table_name, dynamodb=resource)

        return self._per_thread((region, self.table_name, as_instance), make)

    def _record_calls_of(self, client: Any) -> None:
        """Record each call of `client` as the instance role's that the current boot plays."""
        original = client._make_api_call
        service = client.meta.service_model.service_name

        def make_api_call(operation_name: str, api_params: Any) -> Any:
            role, instance_arn = getattr(self._principal, "current", (None, None))
            error = response = None
            try:
                response = original(operation_name, api_params)
                return response
            except ClientError as exc:
                error = exc.response.get("Error", {}).get("Code")
                raise
            finally:
                if self.recorder is not None and role:
                    params = record_safe(api_params)
                    writes = not operation_name.startswith(("Get", "Query", "Describe"))
                    self.recorder.record_calls(
                        [
                            CallRecord(
                                role,
                                None,
                                None,
                                f"{service}:{operation_name}",
                                service,
                                operation_name,
                                client.meta.region_name,
                                params,
                                record_safe(response) if writes and response else None,
                                error,
                                role_name=role,
                                source_instance_arn=instance_arn,
                            )  # fmt: skip
                        ]
                    )

        client._make_api_call = make_api_call

    def _instance_arn(self, region: str, instance_id: str) -> str:
        """The instance's ARN, as AWS puts it in its requests (ec2:SourceInstanceARN)."""
        if region not in self._accounts:
            self._accounts[region] = self._client("sts", region).get_caller_identity()["Account"]
        return f"arn:aws:ec2:{region}:{self._accounts[region]}:instance/{instance_id}"

    def _report_due(self) -> None:
        """Hand every boot whose report is due to its cluster's booter: clusters side by side (the
        boot pool), each cluster's in due order (its init claim and joins keep their order).
        Sixty instances of ten clusters due together took seconds one after another, and a
        create's gates waited on the last; a boot due while another cluster's are written does
        not wait for them."""
        if self.paused or not self.table_name:  # not deployed yet: reports wait
            return
        starting: list[str] = []
        with self._lock:
            while self._pending and self._pending[0].due <= time.monotonic():
                boot = heapq.heappop(self._pending)
                if any(hold.matches(boot) for hold in self._holds):
                    self._held.append(boot)
                    continue
                self.report_lag.note("boot", time.monotonic() - boot.due)
                if boot.uid not in self._boot_queues:
                    self._boot_queues[boot.uid] = collections.deque()
                    starting.append(boot.uid)
                self._boot_queues[boot.uid].append((boot, self._planned_status(boot)))
                self._being_reported += 1
        for uid in starting:
            if self._booters is None:
                self._write_boots(uid)
            else:
                self._booters.submit(self._write_boots, uid)

    def _write_boots(self, uid: str) -> None:
        """A cluster's booter: its queued boots, in order, until none is left."""
        while True:
            with self._lock:
                boots = self._boot_queues.get(uid)
                if not boots:
                    self._boot_queues.pop(uid, None)
                    return
                boot = boots.popleft()
            self._report_boots([boot])

    def _planned_status(self, boot: PendingBoot) -> str:
        """ "ok", or the failure a test planned for this boot (used up; under `_lock`)."""
        for failure in self._failures:
            if failure.matches(boot):
                failure.use()
                return f"failed:{failure.phase}"
        return "ok"

    def _report_boots(self, boots: list[tuple[PendingBoot, str]]) -> None:
        """One cluster's due boots, in order; one that fails to report does not stop the rest."""
        for boot, status in boots:
            try:
                self._report(boot, self._load_bundle(boot) if status == "ok" else status)
            except Exception:  # noqa: BLE001 - the simulator must survive moto's races
                LOG.exception("instance simulator: the boot report of %s failed", boot.instance_id)
            finally:
                with self._lock:
                    self._being_reported -= 1
                    if not self._being_reported:
                        self._boots_written.notify_all()

    def _load_bundle(self, boot: PendingBoot) -> str:
        """What the instance's loader does first (kubestep/bootstrap/scripts/loader.sh): read the
        bundle its user-data names, with its own role, and check its SHA-256; `failed:bundle`
        (the loader's report) if it cannot. User-data naming no bundle is not kubestep's loader's."""
        ref = bundle.reference(moto_compat.instance_user_data(boot.region, boot.instance_id))
        if ref is None:
            return "ok"
        try:
            with self._as_instance(boot):
                s3 = self._instance_client("s3", boot.region)
                data = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        except ClientError as exc:
            LOG.warning("instance %s: cannot read s3://%s/%s (%s)", boot.instance_id, ref.bucket, ref.key, exc)
            return "failed:bundle"
        digest = hashlib.sha256(data).hexdigest()
        if digest != ref.sha256:
            LOG.warning("instance %s: bundle %s has SHA-256 %s, not %s", boot.instance_id, ref.key, digest, ref.sha256)
            return "failed:bundle"
        return "ok"

    @contextlib.contextmanager
    def _as_instance(self, boot: PendingBoot) -> Any:
        """The calls made inside are the instance's own, with its role (recorded as such)."""
        self._principal.current = (
            naming.instance_role(boot.uid, boot.role),
            self._instance_arn(boot.region, boot.instance_id),
        )
        try:
            yield
        finally:
            self._principal.current = (None, None)

    def _report(self, boot: PendingBoot, status: str) -> None:
        """The instance's first report, at the end of its boot; one that booted well goes on
        reporting (`_report_live`), one that failed reports once (it is replaced, not retried)."""
        if not moto_compat.instance_running(boot.region, boot.instance_id):
            return  # terminated before it "booted"
        if boot.role == "control-plane" and boot.replica is None:
            LOG.warning("instance %s of %s has no %s tag; no report", boot.instance_id, boot.asg_name, REPLICA_TAG)
            return
        live = LiveInstance(boot, time.monotonic(), datetime.now(UTC), self._zone(boot), version=self._version(boot))
        # A node reports again as soon as the cloud controller manager may have initialised it.
        first = min(self.report_interval_seconds, self.ccm_delay_seconds) if boot.role == "node" else None
        # Not due before its boot report is written: the report writers never take it mid-boot.
        self._time_next_report(live, time.monotonic(), first or self.report_interval_seconds)
        if status == "ok":
            with self._replica_writes(boot):
                with self._lock:
                    self._add_live(live)
                key = self._write(live, source="boot")
        else:
            replica = boot.replica if boot.role == "control-plane" else None
            with self._as_instance(boot):
                self._store(boot.region).reports.write(
                    boot.uid,
                    status=status,
                    instance_id=boot.instance_id,
                    replica=replica,
                    instance_arn=self._instance_arn(boot.region, boot.instance_id),
                    version=live.version,
                )
            key = f"replica {replica}" if replica is not None else f"node {boot.instance_id}"
        # The fast timer, started by a short report, first runs its interval after that report.
        self._time_next_report(live, time.monotonic(), first or self.report_interval_seconds, soon=live.short)
        report = Report(
            boot.uid,
            boot.cluster_name,
            boot.role,
            key,
            status,
            boot.instance_id,
            boot.asg_name,
            _iso_now(),
        )
        with self._lock:
            self._reports.append(report)
        if self.on_report is not None:
            self.on_report(report)

    # -- periodic reports ------------------------------------------------------------------------
    def _report_live(self) -> int:
        """Every booted instance's periodic report, when due, most overdue first, by the pool of
        report writers for at most `report_pass_seconds` (what is left is the most overdue of the
        next pass); a terminated or replaced instance stops."""
        if self.paused or not self.table_name:
            return 0
        now = time.monotonic()
        with self._lock:
            live = list(self._live.values())
        # A pass runs when a timer's window ends, and takes every report whose window has begun.
        if not any(instance.next_report <= now for instance in live):
            return 0
        due = sorted(
            (instance for instance in live if instance.next_report - instance.report_window <= now),
            key=lambda i: i.next_report,
        )
        facts = ReportPass(live, moto_compat.instance_running, self._read_cluster_recent)
        queue, taking = iter(due), threading.Lock()
        deadline = now + self.report_pass_seconds
        taken = itertools.count()

        def write_due() -> None:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with taking:
                    instance = next(queue, None)
                    if instance is not None:
                        next(taken)
                if instance is None:
                    return
                self._yield_to_boots(instance)
                self._report_periodic(instance, facts)

        if self._writers is None:
            write_due()
        else:
            # No more writers than reports: an idle runtime's pass has one or two.
            for writer in [self._writers.submit(write_due) for _ in range(min(self.report_writers, len(due)))]:
                writer.result()
        return next(taken)

    def _yield_to_boots(self, live: LiveInstance) -> None:
        """A heartbeat waits while boot reports are being written: the report of a settled
        instance restates what the gates already read, and every report takes its turn at the
        emulator's one request lock and this process's one interpreter, where a boot report
        (which a create's gate waits for) ran seconds late behind them. It waits at most until it
        is an interval late (the gates' staleness window is five)."""
        if not live.settled:
            return
        latest = live.next_report + self.time_scale.seconds(self.report_interval_seconds)
        with self._lock:
            self._boots_written.wait_for(
                lambda: not self._being_reported or self._stop.is_set(), timeout=max(latest - time.monotonic(), 0.0)
            )

    def _report_periodic(self, live: LiveInstance, facts: ReportPass) -> None:
        """One instance's report timer: its report, with what it sees now; its lag behind its due
        time and its cost counted."""
        with self._replica_writes(live.boot):
            self._report_timer(live, facts)

    def _report_timer(self, live: LiveInstance, facts: ReportPass) -> None:
        boot, started = live.boot, time.monotonic()
        if self._replaced(live) or not facts.running(boot.region, boot.instance_id):
            with self._lock:
                if self._live.get(boot.instance_id) is live:
                    self._live.pop(boot.instance_id)
            return
        lag = started - live.next_report
        # The next report is due an interval after this one starts (a systemd timer's
        # OnUnitActiveSec): an instance whose write fails is retried on its schedule, never ahead.
        was_short = live.short
        self._time_next_report(live, started, self.report_interval_seconds, soon=was_short)
        with self._lock:
            silenced = boot.instance_id in self._silenced
        if silenced:
            return
        try:
            self._write(live, source="timer", facts=facts)
        except Exception:  # noqa: BLE001 - one instance's failure must not stop the others' reports
            LOG.exception("instance simulator: the periodic report of %s failed", boot.instance_id)
        if live.short != was_short:
            # This report started the fast timer (its first run an interval from now) or stopped
            # it (the minute timer, from this run's start).
            if live.short:
                self._time_next_report(live, time.monotonic(), self.report_interval_seconds, soon=True)
            else:
                self._time_next_report(live, started, self.report_interval_seconds)
        self.report_lag.note("periodic", lag, time.monotonic() - started)

    def _time_next_report(self, live: LiveInstance, start: float, seconds: float, *, soon: bool = False) -> None:
        """`live`'s next report, by the timer that runs it: the fast one (`soon`: every
        `report_soon_seconds`) or the minute one (`seconds` after `start`, time-scaled). systemd
        elapses a timer anywhere in the AccuracySec window after it is due (the script's: 5 s,
        the fast one's 1 s; man systemd.timer), and its next run counts from then: here at the
        window's end, unless a pass due for another instance takes it earlier in its window, so
        the instances' reports share passes (and what a pass reads) instead of one pass each."""
        interval, accuracy = (
            (self.report_soon_seconds, REPORT_SOON_ACCURACY_SECONDS) if soon else (seconds, REPORT_ACCURACY_SECONDS)
        )
        live.report_window = self.time_scale.seconds(accuracy)
        live.next_report = start + self.time_scale.seconds(interval + accuracy)

    def _new_pass(self, live: list[LiveInstance] | None = None) -> ReportPass:
        """The shared facts of a pass over `live` (every booted instance, by default)."""
        if live is None:
            with self._lock:
                live = list(self._live.values())
        return ReportPass(live, moto_compat.instance_running, self._read_cluster)

    def _read_cluster_recent(self, region: str, uid: str, name: str | None) -> tuple[int | None, datetime | None]:
        """`_read_cluster`, or what a read started less than `report_pass_seconds` ago found."""
        key, now = (region, uid, name), time.monotonic()
        with self._lock:
            recent = self._cluster_reads.get(key)
        if recent is not None and now - recent[0] < self.report_pass_seconds:
            return recent[1]
        found = self._read_cluster(region, uid, name)
        with self._lock:
            self._cluster_reads = {
                k: read for k, read in self._cluster_reads.items() if now - read[0] < self.report_pass_seconds
            }
            self._cluster_reads[key] = (now, found)
        return found

    def _read_cluster(self, region: str, uid: str, name: str | None) -> tuple[int | None, datetime | None]:
        """What the simulator reads to play a cluster's replicas (unrecorded): the etcd config's
        planned membership and the cluster CA's expiry (None where the cluster has neither)."""
        if not name:
            return None, None
        self.cluster_reads += 1
        members, record_uid, certificate = CLUSTER_FACTS
        # One read of just these attributes: the cluster record is the table's largest item.
        config, record = self._store(region, as_instance=False).table.get_many(
            [(keys.cluster_pk(name), keys.ETCD_CONFIG_SK), (keys.cluster_pk(name), keys.CLUSTER_SK)],
            attributes=CLUSTER_FACTS,
        )
        planned = int(config[members]) if config and members in config else None
        return planned, ca_expiry(record.get(certificate) if record and record.get(record_uid) == uid else None)

    def _write(self, live: LiveInstance, *, source: str, facts: ReportPass | None = None) -> str:
        """One ok report of a booted instance (the boot's last step, or its report timer), made
        with its role; a replica's first also claims initialisation, as the script does."""
        boot = live.boot
        store = self._store(boot.region)
        facts = facts or self._new_pass()
        with self._as_instance(boot):
            if boot.role == "control-plane":
                if source == "boot":
                    self._restore_if_requested(store, live)
                    claim_initialisation(store, boot)
                    with self._lock:
                        self._initialised_at.setdefault(boot.uid, time.monotonic())
                checks, certificates = self._replica_facts(store, live, facts)
                planned = facts.cluster(boot.region, boot.uid, boot.cluster_name).planned_members
                live.short = not replica_whole(checks, planned)
                live.settled = not live.short
                store.reports.write(
                    boot.uid,
                    status="ok",
                    instance_id=boot.instance_id,
                    replica=boot.replica,
                    version=live.version,
                    checks=checks,
                    certificates=certificates,
                    source=source,
                )
                if source == "timer":
                    self._backup_if_due(store, live, facts)
                return f"replica {boot.replica}"
            checks = self._node_facts(live, facts)
            store.reports.write(
                boot.uid,
                status="ok",
                instance_id=boot.instance_id,
                instance_arn=self._instance_arn(boot.region, boot.instance_id),
                version=live.version,
                checks=checks,
                certificates={"kubelet-client": _iso(live.joined_at + LEAF_VALIDITY)},
                source=source,
            )
            live.settled = checks["nodeInitialized"] is True
            return f"node {boot.instance_id}"

    def _backup_if_due(self, store: Any, live: LiveInstance, facts: ReportPass) -> None:
        """The etcd leader's part of its report timer (docs/contracts.md, "etcd backups"): when
        the policy item says a snapshot is due (none yet, the newest an interval old, or one
        asked for since), upload one to the cluster's prefix with its retention tag and record
        it. The lowest running replica plays etcd's leader (one leader at a time, as etcd has);
        the object is a stand-in for `etcdctl snapshot save`'s file, with its SHA-256 and size."""
        boot = live.boot
        running = facts.running_replicas(boot.uid)
        if not running or boot.replica != min(running):
            return
        policy = store.backups.policy(boot.uid)
        if policy is None:
            return
        latest = store.backups.latest(boot.uid)
        now = datetime.now(UTC)
        interval = timedelta(seconds=self.time_scale.seconds(policy.interval_minutes * 60))
        requested = datetime.fromisoformat(policy.requested_at) if policy.requested_at else None
        taken = datetime.fromisoformat(latest.taken_at) if latest else None
        if not backups.is_due(interval, taken, requested, now):
            return
        with self._lock:
            revision = self._etcd_revisions.get(boot.uid, 0) + 1
            self._etcd_revisions[boot.uid] = revision
        body = f"kubestep simulated etcd snapshot\ncluster {boot.uid}\nrevision {revision}\n".encode()
        backup_id = backups.backup_id(now)
        key = backups.object_key(boot.uid, backup_id)
        self._instance_client("s3", boot.region).put_object(
            Bucket=policy.bucket, Key=key, Body=body, Tagging=f"{backups.RETENTION_TAG}={policy.retention_days}"
        )
        record = BackupRecord(
            backup_id=backup_id,
            # To the millisecond, as requestedAt is: a request made later in the second the
            # snapshot was taken must not look served by it (nor one made earlier look pending).
            taken_at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            revision=revision,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            kubernetes_version=live.version,
            object_key=key,
            instance_id=boot.instance_id,
            replica=boot.replica,
        )
        store.backups.put(boot.uid, record)

    def _restore_if_requested(self, store: Any, live: LiveInstance) -> None:
        """What a replica's boot does before etcd starts when RestoreCluster asked for a restore
        (docs/contracts.md, "etcd backups"): read the request with the replica's role, download
        the snapshot with it, check its SHA-256 against the request's, restore (`kubestep-etcd-
        snapshot restore` with the new cluster token; here the simulated etcd's revision goes back
        to the snapshot's), and say so in its reports: the token, or why it could not."""
        boot = live.boot
        request = store.backups.restore_request(boot.uid)
        if request is None:
            return
        try:
            body = self._instance_client("s3", boot.region).get_object(Bucket=request.bucket, Key=request.object_key)
            digest = hashlib.sha256(body["Body"].read()).hexdigest()
        except ClientError as error:
            live.restore_checks = {RESTORE_ERROR: f"the snapshot could not be downloaded: {error}"}
            return
        if digest != request.sha256:
            live.restore_checks = {
                RESTORE_ERROR: f"SHA-256 mismatch: got {digest}, the backup record says {request.sha256}"
            }
            return
        with self._lock:
            self._etcd_revisions[boot.uid] = request.revision
        live.restore_checks = {RESTORED_TOKEN: request.cluster_token, RESTORED_BACKUP: request.backup_id}

    def _instance_client(self, service: str, region: str) -> Any:
        """A client whose calls are recorded as the current boot's instance role's."""

        def make() -> Any:
            client = self._boto3_client(service, region)
            self._record_calls_of(client)
            return client

        return self._per_thread((f"instance:{service}", region), make)

    def _per_thread(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """The calling thread's client (or store) of `key`, made once."""
        key = (*key, threading.get_ident())
        client = self._clients.get(key)
        if client is None:
            with self._clients_lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = make()
        return client

    def _boto3_client(self, service: str, region: str) -> Any:
        # The simulator runs in the runtime's process: its requests reach moto there, not over
        # loopback HTTP (moto_compat/in_process.py).
        return in_process.client(service, region)

    def _replica_facts(
        self, store: Any, live: LiveInstance, facts: ReportPass
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """What a replica's report says now (its `checks`, its `certificates`): etcd membership
        (`etcdctl member list`: the replicas booted and running, none a learner once booted),
        health (a quorum of the planned members), its API server, the administrators generation
        its authenticator serves (read with the replica's role, as its report timer does), its
        certificates' expiries. What its cluster's replicas all see is read once per pass."""
        boot = live.boot
        cluster = facts.cluster(boot.region, boot.uid, boot.cluster_name)
        started = len(cluster.running_replicas)
        with self._lock:
            unready = boot.instance_id in self._unready
        checks: dict[str, Any] = {
            "etcdMembers": started,
            "etcdLearners": 0,
            "etcdHealthy": started * 2 > cluster.planned_members,
            "apiserverReady": not unready,
        }
        checks |= self._serve_admins(store, live)
        checks |= live.restore_checks
        certificates = dict.fromkeys(LEAF_CERTIFICATES, _iso(live.joined_at + LEAF_VALIDITY))
        if cluster.ca_expires is not None:
            certificates["ca"] = _iso(cluster.ca_expires)
        return checks, certificates

    def _serve_admins(self, store: Any, live: LiveInstance) -> dict[str, Any]:
        """What the replica's refresh does: read the administrators item with its role, serve a
        new generation, keep the one served when the item cannot be read (never none), and say
        so in its checks."""
        boot, admins, problem = live.boot, None, None
        with self._lock:
            refused = bool({boot.uid, boot.cluster_name} & self._admins_unreadable)
        try:
            if refused:
                denied = aws_errors.UNAUTHORIZED_BY_PROTOCOL["json"]  # DynamoDB's JSON protocol
                raise ClientError(
                    {"Error": {"Code": denied, "Message": "not authorized (refused by a test)"}}, "GetItem"
                )
            admins = store.admins.get(boot.uid)
        except ClientError as error:
            problem = f"the cluster administrators item could not be read: {error}"
        if admins is not None:
            live.admins_generation = admins.generation
        elif problem is None:
            problem = "the item does not exist"
        checks: dict[str, Any] = {}
        if live.admins_generation is not None:
            checks["adminsGeneration"] = live.admins_generation
        if problem:
            checks["adminsError"] = problem
        return checks

    def _node_facts(self, live: LiveInstance, facts: ReportPass) -> dict[str, Any]:
        """A node is Ready once booted; the cloud controller manager (running on a booted replica)
        initialises it `ccm_delay_seconds` later: providerID `aws:///<zone>/<instance>`, taint gone."""
        boot = live.boot
        with self._lock:
            stalled = bool({boot.uid, boot.cluster_name} & self._ccm_stalled)
        waited = time.monotonic() - live.booted_at >= self.time_scale.seconds(self.ccm_delay_seconds)
        initialised = not stalled and waited and bool(facts.running_replicas(boot.uid))
        checks: dict[str, Any] = {"nodeReady": True, "nodeInitialized": initialised}
        if initialised:
            checks["providerID"] = f"aws:///{live.zone or 'unknown'}/{boot.instance_id}"
        return checks

    @staticmethod
    def _version(boot: PendingBoot) -> str | None:
        return installed_version(moto_compat.instance_user_data(boot.region, boot.instance_id))

    @staticmethod
    def _zone(boot: PendingBoot) -> str | None:
        """The instance's zone, as it reads it from its metadata service (no AWS API call: a
        DescribeInstances per boot cost an EC2 XML answer built and parsed in this process)."""
        return moto_compat.instance_zone(boot.region, boot.instance_id)
