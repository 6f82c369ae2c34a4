"""One pass of the instance simulator's periodic reports: what the instances of a cluster share,
read once per pass, and how late the reports are written.

Every booted instance rewrites its bootstrap report on its own timer (a minute, time-scaled).
With hundreds of instances alive the simulator writes several reports a second, each through
the emulator's one request lock; what a replica's report says of its cluster (etcd's members,
the planned membership, the cluster CA) is the same for every replica of that cluster at that
moment, so it is read once per pass instead of once per report. What each instance reads with
its own role (the administrators item, the backup policy) stays its own call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Booted(Protocol):
    """What a pass needs of a booted instance (`instances.LiveInstance`)."""

    @property
    def boot(self) -> Any: ...


@dataclass(frozen=True)
class ClusterFacts:
    """What every replica of one cluster sees at this pass."""

    running_replicas: frozenset[int]  # etcd's started members: booted and still running
    planned_members: int  # the etcd config's membership (the running ones if it has none)
    ca_expires: datetime | None  # the cluster CA's expiry, from the cluster record


class ReportPass:
    """The facts of one pass over the due reports, each read at most once (thread-safe: a pool
    of report writers shares one pass). `running(region, instance_id)` is EC2's answer,
    remembered for the pass; `cluster(region, uid, name)` the cluster's shared facts, where
    `read_cluster(region, uid, name)` reads its planned etcd membership and its CA's expiry."""

    def __init__(
        self,
        live: Iterable[Booted],
        instance_running: Callable[[str, str], bool],
        read_cluster: Callable[[str, str, str | None], tuple[int | None, datetime | None]],
    ) -> None:
        self._instance_running = instance_running
        self._read_cluster = read_cluster
        self._running: dict[tuple[str, str], bool] = {}
        self._clusters: dict[str, ClusterFacts] = {}
        self._lock = threading.Lock()
        self._cluster_locks: dict[str, threading.Lock] = {}
        # Per cluster, its booted replicas.
        self._replicas: dict[str, list[tuple[int, str, str]]] = {}
        for instance in live:
            boot = instance.boot
            if boot.role != "control-plane" or boot.replica is None:
                continue
            self._replicas.setdefault(boot.uid, []).append((boot.replica, boot.region, boot.instance_id))

    def running(self, region: str, instance_id: str) -> bool:
        key = (region, instance_id)
        with self._lock:
            known = self._running.get(key)
        if known is None:
            known = self._instance_running(region, instance_id)
            with self._lock:
                self._running[key] = known
        return known

    def running_replicas(self, uid: str) -> frozenset[int]:
        return frozenset(r for r, region, i in self._replicas.get(uid, ()) if self.running(region, i))

    def cluster(self, region: str, uid: str, name: str | None) -> ClusterFacts:
        with self._lock:
            facts = self._clusters.get(uid)
            lock = self._cluster_locks.setdefault(uid, threading.Lock())
        if facts is not None:
            return facts
        with lock:  # one reader per cluster; the pool's other writers wait for its answer
            with self._lock:
                facts = self._clusters.get(uid)
            if facts is None:
                running = self.running_replicas(uid)
                planned, ca = self._read_cluster(region, uid, name)
                facts = ClusterFacts(running, planned if planned is not None else len(running), ca)
                with self._lock:
                    self._clusters[uid] = facts
        return facts


class ReportLag:
    """How late the simulator writes reports against when they were due (wall seconds): the
    largest lag and the reports written since the last `take()`, per kind (`boot`: an
    instance's first report, at the end of its boot; `periodic`: its report timer's), and the
    wall time a periodic report took to write. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._figures: dict[str, dict[str, float]] = {}

    def note(self, kind: str, lag: float, cost: float | None = None) -> None:
        with self._lock:
            figures = self._figures.setdefault(kind, {"reports": 0, "largestLag": 0.0, "writeSeconds": 0.0})
            figures["reports"] += 1
            figures["largestLag"] = max(figures["largestLag"], max(lag, 0.0))
            if cost is not None:
                figures["writeSeconds"] += cost

    def figures(self) -> dict[str, dict[str, float]]:
        """Per kind: reports, largestLagSeconds, meanWriteMs (a periodic report's own cost)."""
        with self._lock:
            return {kind: _summary(f) for kind, f in self._figures.items()}

    def take(self) -> dict[str, dict[str, float]]:
        """`figures()`, and start counting anew."""
        with self._lock:
            taken = {kind: _summary(f) for kind, f in self._figures.items()}
            self._figures = {}
        return taken


def _summary(figures: dict[str, float]) -> dict[str, float]:
    reports = int(figures["reports"])
    summary: dict[str, float] = {"reports": reports, "largestLagSeconds": round(figures["largestLag"], 3)}
    if figures["writeSeconds"]:
        summary["meanWriteMs"] = round(1000 * figures["writeSeconds"] / reports, 1)
    return summary
