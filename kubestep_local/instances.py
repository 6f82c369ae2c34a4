"""The instance simulator: plays the part of kubestep's EC2 instances in the emulator.

moto makes ASG instances ``InService`` and NLB targets ``healthy`` at once and nothing boots, so
the health gate's last signal -- the instance's own bootstrap report (docs/contracts.md) --
would never arrive. For each new instance of an Auto Scaling group tagged ``gke:cluster-uid``,
after a time-scaled boot delay, the simulator writes that report through boto3 against the
emulator, as the instance role would. Tests can make chosen replicas report
``failed:<phase>``, so the health gate's failure path runs too.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import heapq
import itertools
import json
import logging
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import yaml

from kubestep_local import moto_compat
from kubestep_local.time_scale import TimeScale

LOG = logging.getLogger(__name__)

UID_TAG = "gke:cluster-uid"
NAME_TAG = "gke:cluster"
ROLE_TAG = "gke:role"
REPLICA_TAG = "gke:replica"
NODEPOOL_TAG = "gke:nodepool"


@dataclass
class Failure:
    """An injected bootstrap failure: matching instances report ``failed:<phase>``."""

    cluster: str  # uid or name
    phase: str
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


def installed_version(user_data: str | None) -> str | None:
    """The Kubernetes version an instance's bootstrap installs: `KUBERNETES_VERSION` of the
    settings file its (gzipped, base64) cloud-config writes, as the real bootstrap reads it."""
    if not user_data:
        return None
    try:
        text = base64.b64decode(user_data)
        if text[:2] == b"\x1f\x8b":
            text = gzip.decompress(text)
        config = yaml.safe_load(text.decode())
    except (ValueError, TypeError, OSError, EOFError, yaml.YAMLError, UnicodeDecodeError):
        return None
    entries = config.get("write_files") if isinstance(config, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and str(entry.get("path", "")).endswith("/bootstrap.env"):
            for line in str(entry.get("content", "")).splitlines():
                key, _, value = line.partition("=")
                if key == "KUBERNETES_VERSION":
                    words = shlex.split(value)
                    return words[0] if words else None
    return None


def write_report(store: Any, boot: PendingBoot, status: str, version: str | None = None) -> str:
    """Write the bootstrap report item as the instance would, with the checks it made: for a
    replica, every etcd member present and healthy and its API server ready; for a node, Ready;
    and, as `kubelet --version` tells the real one, the version it installed."""
    checks: dict[str, Any] = {}
    if status == "ok":
        if boot.role == "control-plane":
            config = store.etcd.config(boot.cluster_name) if boot.cluster_name else None
            checks = {"etcdMembers": config.members if config else 0, "etcdHealthy": True, "apiserverReady": True}
        else:
            checks = {"nodeReady": True}
    replica = boot.replica if boot.role == "control-plane" else None
    store.reports.write(
        boot.uid, status=status, instance_id=boot.instance_id, replica=replica, version=version, checks=checks
    )
    return f"replica {replica}" if replica is not None else f"node {boot.instance_id}"


class InstanceSimulator:
    """Background thread: watch kubestep ASGs' instances, report their bootstrap when "booted"."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        table_name: str | None = None,
        time_scale: TimeScale | None = None,
        boot_delay_seconds: float = 20.0,
        poll_interval: float = 0.1,
        on_report: Callable[[Report], None] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.table_name = table_name
        self.time_scale = time_scale or TimeScale(1.0)
        self.boot_delay_seconds = boot_delay_seconds
        self.poll_interval = poll_interval
        self._seen: set[str] = set()
        self._pending: list[PendingBoot] = []
        self._failures: list[Failure] = []
        # Boots held back (tests: one replica's new instance stays unbooted while others go on).
        self._holds: list[Failure] = []
        self._held: list[PendingBoot] = []
        self._reports: list[Report] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients: dict[tuple[str, str | None], Any] = {}
        self.paused = False
        # Told of every report written (the latency model: the instance now serves /readyz).
        self.on_report = on_report
        # The termination handler's part (queue mode): drain, then complete the lifecycle action.
        self.drain_delay_seconds = 20.0
        self._stalled: set[str] = set()
        self.drained: list[tuple[str, str]] = []  # (instance id, lifecycle hook) completed by the "handler"

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kubestep-instance-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

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
        failure = Failure(cluster, phase, role, replica, nodepool, times)
        with self._lock:
            self._failures.append(failure)
        return failure

    def hold_boots(
        self, cluster: str, replica: int | None = None, *, role: str = "control-plane", nodepool: str | None = None
    ) -> Failure:
        """Matching instances (cluster uid or name) do not boot until `release_boots()`: a roll
        waits at that replica's (or pool's) health gate for as long as a test needs."""
        hold = Failure(cluster, "held", role, replica, nodepool)
        with self._lock:
            self._holds.append(hold)
        return hold

    def release_boots(self, hold: Failure | None = None) -> None:
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

    def held(self) -> list[str]:
        """Instance ids held back by `hold_boots`, booted once released."""
        with self._lock:
            return [boot.instance_id for boot in self._held]

    def stall_drains(self, cluster: str) -> None:
        """The termination handler of `cluster` (uid or name) stops completing lifecycle actions,
        so a roll waits for the drain until its deadline (the timeout path)."""
        with self._lock:
            self._stalled.add(cluster)

    def resume_drains(self) -> None:
        with self._lock:
            self._stalled.clear()

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def reports(self) -> list[Report]:
        with self._lock:
            return list(self._reports)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._held)

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
            try:
                self.scan()
                self._report_due()
                self._drain_tick()
            except Exception:  # noqa: BLE001 - the simulator must survive moto's races
                LOG.exception("instance simulator iteration failed")
            self._stop.wait(self.poll_interval)

    def scan(self) -> None:
        """Schedule a boot for every instance not seen before in a kubestep ASG."""
        now = time.monotonic()
        for group in moto_compat.autoscaling_groups():
            uid = group.tags.get(UID_TAG)
            if not uid:
                continue
            for instance_id in group.instance_ids:
                with self._lock:
                    if instance_id in self._seen:
                        continue
                if moto_compat.instance_state(group.region, instance_id) == "pending":
                    continue  # boots once EC2 has it running (the latency model keeps it pending)
                with self._lock:
                    if instance_id in self._seen:
                        continue
                    self._seen.add(instance_id)
                tags = group.tags
                role = tags.get(ROLE_TAG) or ("control-plane" if REPLICA_TAG in tags else "node")
                replica = None
                with contextlib.suppress(TypeError, ValueError):
                    replica = int(tags.get(REPLICA_TAG))  # type: ignore[arg-type]
                boot = PendingBoot(
                    due=now + self.time_scale.seconds(self.boot_delay_seconds),
                    seq=next(self._seq),
                    instance_id=instance_id,
                    region=group.region,
                    uid=uid,
                    cluster_name=tags.get(NAME_TAG),
                    role=role,
                    replica=replica,
                    nodepool=tags.get(NODEPOOL_TAG),
                    asg_name=group.name,
                )
                with self._lock:
                    heapq.heappush(self._pending, boot)

    # -- the node termination handler (queue mode) ----------------------------------------------
    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            client = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            self._clients[key] = client
        return client

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
            return self._seen - {boot.instance_id for boot in [*self._pending, *self._held]}

    def mark_booted(self, instance_ids: set[str]) -> None:
        """Known as booted already (restored from a snapshot): they do not boot again."""
        with self._lock:
            self._seen |= set(instance_ids)

    def _store(self, region: str) -> Any:
        from kubestep.store import Store

        store = self._clients.get((region, self.table_name))
        if store is None:
            resource = boto3.resource(
                "dynamodb",
                endpoint_url=self.endpoint_url,
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            store = Store.for_table(self.table_name, dynamodb=resource)
            self._clients[(region, self.table_name)] = store
        return store

    def _report_due(self) -> None:
        if self.paused or not self.table_name:  # not deployed yet: reports wait
            return
        while True:
            with self._lock:
                if not self._pending or self._pending[0].due > time.monotonic():
                    return
                boot = heapq.heappop(self._pending)
                if any(hold.matches(boot) for hold in self._holds):
                    self._held.append(boot)
                    continue
                status = "ok"
                for failure in self._failures:
                    if failure.matches(boot):
                        status = f"failed:{failure.phase}"
                        if failure.remaining is not None:
                            failure.remaining -= 1
                        break
            self._report(boot, status)

    def _report(self, boot: PendingBoot, status: str) -> None:
        if not moto_compat.instance_running(boot.region, boot.instance_id):
            return  # terminated before it "booted"
        if boot.role == "control-plane" and boot.replica is None:
            LOG.warning("instance %s of %s has no %s tag; no report", boot.instance_id, boot.asg_name, REPLICA_TAG)
            return
        version = installed_version(moto_compat.instance_user_data(boot.region, boot.instance_id))
        key = write_report(self._store(boot.region), boot, status, version)
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
