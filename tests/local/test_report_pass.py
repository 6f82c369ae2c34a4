"""The instance simulator's periodic reports under load (kubestep_local/report_pass.py): a pass
reads what a cluster's replicas share once, asks EC2 about each instance once, writes the most
overdue reports first within its time budget, and counts how late they are; a replaced replica
stops reporting. No emulator: the simulator's reads are stand-ins that count their calls."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubestep_local.instances import InstanceSimulator, LiveInstance, PendingBoot, replica_whole
from kubestep_local.report_pass import ReportLag, ReportPass


def _live(instance_id: str, uid: str, replica: int | None, *, booted_at: float = 0.0, due: float = 0.0) -> LiveInstance:
    role = "node" if replica is None else "control-plane"
    boot = PendingBoot(0.0, 0, instance_id, "us-east-1", uid, f"name-{uid}", role, replica, None, f"asg-{instance_id}")
    return LiveInstance(boot, booted_at, datetime.now(UTC), "us-east-1a", next_report=due)


def test_a_pass_reads_each_cluster_once_and_asks_ec2_about_each_instance_once() -> None:
    live = [_live(f"i-{uid}{r}", uid, r) for uid in ("a", "b") for r in range(3)] + [_live("i-node", "a", None)]
    asked: list[str] = []
    read: list[str] = []

    def running(region: str, instance_id: str) -> bool:
        asked.append(instance_id)
        return instance_id != "i-a2"  # replica 2 of cluster a was terminated

    def read_cluster(region: str, uid: str, name: str | None) -> tuple[int | None, datetime | None]:
        read.append(uid)
        return (3 if uid == "a" else None), None

    facts = ReportPass(live, running, read_cluster)
    for _ in range(3):  # every replica's report of both clusters, and the node's
        assert facts.cluster("us-east-1", "a", "name-a").running_replicas == {0, 1}
        assert facts.cluster("us-east-1", "a", "name-a").planned_members == 3
        # No etcd config: the members planned are the ones running.
        assert facts.cluster("us-east-1", "b", "name-b").planned_members == 3
        assert facts.running_replicas("a") == {0, 1}
        assert facts.running("us-east-1", "i-node")
    assert sorted(read) == ["a", "b"]
    assert sorted(asked) == sorted(i.boot.instance_id for i in live)


def test_a_replica_whose_successor_booted_is_replaced_and_nodes_never_are() -> None:
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table")
    old, new = _live("i-old", "a", 1, booted_at=10.0), _live("i-new", "a", 1, booted_at=20.0)
    node, other = _live("i-node", "a", None, booted_at=5.0), _live("i-other", "a", 2, booted_at=1.0)
    for instance in (old, node, other):
        simulator._add_live(instance)
    assert not simulator._replaced(old)
    simulator._add_live(new)
    assert simulator._replaced(old) and not simulator._replaced(new)
    assert not simulator._replaced(node) and not simulator._replaced(other)


def test_reports_go_most_overdue_first_within_the_pass_budget_and_their_lag_is_counted() -> None:
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table", report_pass_seconds=0.5)
    now = time.monotonic()
    dues = {"i-late": now - 5.0, "i-later": now - 9.0, "i-soon": now - 1.0, "i-future": now + 60.0}
    for instance_id, due in dues.items():
        simulator._live[instance_id] = _live(instance_id, "a", None, due=due)
    simulator._new_pass = lambda live=None: None  # type: ignore[method-assign]
    written: list[str] = []

    def write(live: LiveInstance, facts: Any) -> None:
        written.append(live.boot.instance_id)
        simulator.report_lag.note("periodic", time.monotonic() - live.next_report, 0.3)
        time.sleep(0.3)  # a slow write: the budget (0.5 s) ends the pass after the second

    simulator._report_periodic = write  # type: ignore[method-assign]
    assert simulator._report_live() == 2
    assert written == ["i-later", "i-late"]
    assert simulator._report_live() == 2  # what was left is written first in the next pass
    assert written == ["i-later", "i-late", "i-later", "i-late"]  # (the stand-in never reschedules)
    figures = simulator.report_lag.take()["periodic"]
    assert figures["reports"] == 4 and 9.0 <= figures["largestLagSeconds"] < 10.0
    assert figures["meanWriteMs"] == 300.0
    assert simulator.report_lag.take() == {}


def test_passes_close_together_share_what_they_read_of_a_cluster_and_see_ec2_afresh(monkeypatch: Any) -> None:
    """A cluster's replicas report at different moments, each in a pass of its own: what the
    passes read of the cluster (its etcd config, its CA) is shared for `report_pass_seconds`,
    as within one pass, then read again; which replicas run is asked of EC2 in every pass."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table", report_pass_seconds=0.3)
    terminated: set[str] = set()
    monkeypatch.setattr("kubestep_local.instances.moto_compat.instance_running", lambda region, i: i not in terminated)
    now = time.monotonic()
    replicas = [_live(f"i-a{r}", "a", r, due=now + 60) for r in range(3)]
    for replica in replicas:
        simulator._add_live(replica)
    read: list[str] = []

    def read_cluster(region: str, uid: str, name: str | None) -> tuple[int | None, datetime | None]:
        read.append(uid)
        return 3, None

    seen: list[frozenset[int]] = []

    def write(live: LiveInstance, facts: Any) -> None:
        seen.append(facts.cluster(live.boot.region, live.boot.uid, live.boot.cluster_name).running_replicas)
        live.next_report = time.monotonic() + 60

    simulator._read_cluster = read_cluster  # type: ignore[method-assign]
    simulator._report_periodic = write  # type: ignore[method-assign]
    replicas[0].next_report = time.monotonic()
    assert simulator._report_live() == 1
    terminated.add("i-a2")
    replicas[1].next_report = time.monotonic()
    assert simulator._report_live() == 1  # its own pass, a moment later
    assert read == ["a"] and seen == [{0, 1, 2}, {0, 1}]
    time.sleep(0.35)
    replicas[0].next_report = time.monotonic()
    assert simulator._report_live() == 1
    assert read == ["a", "a"]


def test_the_reporter_sleeps_until_the_next_report_is_due_and_wakes_for_a_new_instance(monkeypatch: Any) -> None:
    """Between passes the reporter thread sleeps until the earliest report is due, not a poll
    interval at a time; an instance that starts reporting (booted, or adopted after a restore:
    due at once) wakes it. The longest sleep is raised so that only the wake can explain a
    prompt report."""
    monkeypatch.setattr("kubestep_local.instances.REPORTER_SLEEP_SECONDS", 30.0)
    monkeypatch.setattr("kubestep_local.instances.moto_compat.instance_running", lambda region, i: True)
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table", poll_interval=0.05)
    passes: list[int] = []
    written: dict[str, float] = {}
    report_live = simulator._report_live

    def counted() -> int:
        passes.append(len(written))
        return report_live()

    def write(live: LiveInstance, facts: Any) -> None:
        written[live.boot.instance_id] = time.monotonic()
        live.next_report = time.monotonic() + 60

    simulator._report_live = counted  # type: ignore[method-assign]
    simulator._report_periodic = write  # type: ignore[method-assign]
    due = time.monotonic() + 0.6
    with simulator._lock:
        simulator._add_live(_live("i-first", "a", None, due=due))
    reporter = threading.Thread(target=simulator._run_reports, daemon=True)
    reporter.start()
    try:
        deadline = time.monotonic() + 10
        while "i-first" not in written and time.monotonic() < deadline:
            time.sleep(0.01)
        assert written["i-first"] >= due
        # Woken once, when it was due (a poll every 50 ms would have made a dozen passes).
        assert passes.count(0) <= 2, passes
        with simulator._lock:
            simulator._add_live(_live("i-adopted", "a", None, due=time.monotonic()))
        while "i-adopted" not in written and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "i-adopted" in written  # long before the 30 s sleep would have ended
    finally:
        simulator._stop.set()
        simulator._wake_reports.set()
        reporter.join(5)
    assert not reporter.is_alive()


def test_a_pass_runs_when_a_timer_window_ends_and_takes_the_reports_whose_window_began() -> None:
    """systemd elapses a timer anywhere in its AccuracySec window: a pass runs once some report's
    window has ended, and takes along every report whose window has begun (it shares that
    pass's reads), not one whose window is still ahead."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table")
    now = time.monotonic()
    windows = {"i-ended": (now + 0.5, 1.0), "i-begun": (now + 0.5, 1.0), "i-ahead": (now + 0.5, 0.2)}
    for instance_id, (latest, window) in windows.items():
        live = _live(instance_id, "a", None, due=latest)
        live.report_window = window
        simulator._live[instance_id] = live
    simulator._new_pass = lambda live=None: None  # type: ignore[method-assign]
    written: list[str] = []
    simulator._report_periodic = lambda live, facts: written.append(live.boot.instance_id)  # type: ignore[method-assign]
    assert simulator._report_live() == 0 and written == []  # two windows begun, none ended: no pass
    simulator._live["i-ended"].next_report = now - 0.01
    assert simulator._report_live() == 2
    assert written == ["i-ended", "i-begun"]


def test_the_lag_counter_keeps_each_kind_apart_and_never_counts_an_early_report_as_negative() -> None:
    lag = ReportLag()
    lag.note("boot", 0.5)
    lag.note("boot", -0.1)
    lag.note("periodic", 2.0, 0.01)
    assert lag.figures() == {
        "boot": {"reports": 2, "largestLagSeconds": 0.5},
        "periodic": {"reports": 1, "largestLagSeconds": 2.0, "meanWriteMs": 10.0},
    }


def test_boots_due_together_report_cluster_by_cluster_side_by_side_each_cluster_in_order() -> None:
    """Ten clusters' instances due at once: each cluster's boots are written in due order (its
    init claim first, then the joins), different clusters' at the same time; until its report is
    written a boot still counts as pending (wait_idle must not see the simulator idle early)."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table", report_writers=4)
    simulator._booters = ThreadPoolExecutor(4)
    now = time.monotonic()
    for seq, (uid, replica) in enumerate((uid, r) for r in range(3) for uid in ("a", "b", "c", "d")):
        boot = PendingBoot(
            now - 1 + replica * 0.1,
            seq,
            f"i-{uid}{replica}",
            "us-east-1",
            uid,
            uid,
            "control-plane",
            replica,
            None,
            "asg",
        )
        simulator._queue(boot)
    written: list[tuple[str, float, float]] = []
    pending_seen: list[int] = []

    def report(boot: PendingBoot, status: str) -> None:
        start = time.monotonic()
        pending_seen.append(simulator.pending())
        time.sleep(0.1)
        written.append((boot.instance_id, start, time.monotonic()))

    simulator._report = report  # type: ignore[method-assign]
    simulator._load_bundle = lambda boot: "ok"  # type: ignore[method-assign]
    simulator._report_due()
    simulator._booters.shutdown()
    assert sorted(i for i, _, _ in written) == sorted(f"i-{u}{r}" for u in "abcd" for r in range(3))
    for uid in "abcd":
        mine = [(i, start, end) for i, start, end in written if i.startswith(f"i-{uid}")]
        assert [i for i, _, _ in mine] == [f"i-{uid}0", f"i-{uid}1", f"i-{uid}2"]
        assert all(later[1] >= earlier[2] for earlier, later in zip(mine, mine[1:], strict=False))
    side_by_side = [(a, b) for a in written for b in written if a[0][2] != b[0][2] and a[1] < b[2] and b[1] < a[2]]
    assert side_by_side, written
    assert min(pending_seen) >= 1 and simulator.pending() == 0


def test_faults_aim_only_at_instances_that_still_run(monkeypatch) -> None:
    """A terminated node, or a replica whose successor booted, stays known to the simulator until
    its next report timer; a fault injected meanwhile must pick a running instance instead (an
    auto-repair test silenced a node a roll had just terminated, and waited for nothing)."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table")
    terminated = {"i-a-node-gone", "i-b-gone"}
    monkeypatch.setattr("kubestep_local.instances.moto_compat.instance_running", lambda region, i: i not in terminated)
    for instance in (
        _live("i-a-node-gone", "a", None),
        _live("i-b-node", "a", None),
        _live("i-a-old", "a", 1, booted_at=10.0),
        _live("i-b-new", "a", 1, booted_at=20.0),
        _live("i-b-gone", "a", 0),
    ):
        simulator._add_live(instance)
    assert simulator.stop_heartbeat("a", count=1) == ["i-b-node"]
    assert simulator.live_instances("a", "node") == {"i-b-node": None}
    assert simulator.live_instances("a", "control-plane") == {"i-b-new": 1}
    assert simulator.fail_after_healthy("a", 1) == ["i-b-new"]


def test_a_replica_short_of_the_whole_control_plane_reports_every_soon_interval_until_whole() -> None:
    """The script's pacing (kubestep/bootstrap/host.py, REPORT_SOON_TIMER): a report that falls
    short of the whole control plane starts a 10 s timer (its first run 10 s after that report,
    then 10 s after each run's start, as systemd's OnActiveSec / OnUnitActiveSec count); the
    first whole report stops it, and the minute timer counts from that run's start."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table")
    replica = _live("i-a0", "a", 0)
    simulator._add_live(replica)
    facts = ReportPass([replica], lambda region, instance_id: True, lambda region, uid, name: (3, None))
    members = iter([1, 2, 3, 3])

    def write(live: LiveInstance, *, source: str, facts: Any = None) -> str:
        checks = {"etcdMembers": next(members), "etcdHealthy": True, "apiserverReady": True}
        live.short = not replica_whole(checks, 3)
        return "replica 0"

    simulator._write = write  # type: ignore[method-assign]
    dues: list[float] = []
    for _ in range(4):
        started = time.monotonic()
        simulator._report_timer(replica, facts)
        dues.append(replica.next_report - started)
    # 1 of 3: the fast timer starts (10 s from now); 2 of 3: it runs on (10 s from this start);
    # 3 of 3: it stops, the minute timer's next run is 60 s from this start; whole: a minute.
    # Each elapses at the latest at the end of its AccuracySec window (1 s, 5 s).
    assert [round(d) for d in dues] == [10 + 1, 10 + 1, 60 + 5, 60 + 5]
    assert replica.report_window == 5


def test_a_report_is_whole_only_with_every_planned_member_started_etcd_healthy_and_the_api_server_ready() -> None:
    whole = {"etcdMembers": 3, "etcdHealthy": True, "apiserverReady": True}
    assert replica_whole(whole, 3)
    assert not replica_whole(whole, 5)
    assert not replica_whole(whole | {"etcdMembers": 2}, 3)
    assert not replica_whole(whole | {"etcdHealthy": False}, 3)
    assert not replica_whole(whole | {"apiserverReady": False}, 3)


def _replica_boot(uid: str, replica: int, due: float, seq: int = 0) -> PendingBoot:
    return PendingBoot(due, seq, f"i-{uid}{replica}", "us-east-1", uid, uid, "control-plane", replica, None, "asg")


def test_a_boot_due_while_another_clusters_boots_are_written_is_taken_at_once_and_its_own_wait_in_order() -> None:
    """Taking due boots hands each cluster's to its booter and returns: cluster b's boot, due while
    cluster a's slow report is being written, is written beside it, not after it; a's next boot,
    due meanwhile, waits for a's first (its join after the init claim)."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table", report_writers=4)
    simulator._booters = ThreadPoolExecutor(4)
    a_writing, release_a = threading.Event(), threading.Event()
    written: list[tuple[str, str]] = []

    def report(boot: PendingBoot, status: str) -> None:
        written.append(("start", boot.instance_id))
        if boot.instance_id == "i-a0":
            a_writing.set()
            assert release_a.wait(10)
        written.append(("end", boot.instance_id))

    simulator._report = report  # type: ignore[method-assign]
    simulator._load_bundle = lambda boot: "ok"  # type: ignore[method-assign]
    now = time.monotonic()
    simulator._queue(_replica_boot("a", 0, now - 1))
    simulator._report_due()  # returns while a0's report is still being written
    assert a_writing.wait(10)
    simulator._queue(_replica_boot("a", 1, now - 0.5, 1))
    simulator._queue(_replica_boot("b", 0, now - 0.5, 2))
    simulator._report_due()
    deadline = time.monotonic() + 10
    while ("end", "i-b0") not in written and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ("end", "i-b0") in written and ("end", "i-a0") not in written
    assert ("start", "i-a1") not in written  # a's join waits for a's init claim
    assert simulator.pending() == 2  # a0 being written, a1 queued behind it
    release_a.set()
    simulator._booters.shutdown(wait=True)
    a_order = [event for event in written if event[1].startswith("i-a")]
    assert a_order == [("start", "i-a0"), ("end", "i-a0"), ("start", "i-a1"), ("end", "i-a1")]
    assert simulator.pending() == 0


def test_a_heartbeat_waits_while_boots_are_written_and_reports_that_gates_wait_for_do_not() -> None:
    """While a boot report is being written, a settled instance's timer report (it restates what
    the gates read) waits, at most until it is an interval late; a report that can change a
    gate's answer (a replica short of the whole control plane, a node not initialised yet) goes."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table", report_interval_seconds=60.0)
    now = time.monotonic()
    settled = _live("i-settled", "a", 0, due=now)
    settled.settled = True
    short = _live("i-short", "a", 1, due=now)
    late = _live("i-late", "a", 2, due=now - 61.0)
    late.settled = True
    with simulator._lock:
        simulator._being_reported = 1  # a boot report in flight
    for live in (short, late):
        returned = threading.Thread(target=simulator._yield_to_boots, args=(live,))
        returned.start()
        returned.join(5)
        assert not returned.is_alive(), live.boot.instance_id
    waiting = threading.Thread(target=simulator._yield_to_boots, args=(settled,))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive()  # still waiting for the boot report
    with simulator._lock:
        simulator._being_reported = 0
        simulator._boots_written.notify_all()
    waiting.join(5)
    assert not waiting.is_alive()


def test_a_pass_cut_short_by_stop_ends_quietly(caplog: Any) -> None:
    """`stop()` joins the report and boot threads for at most 5 s, then shuts their pools down: a
    pass still running then fails on the closed pool ("cannot schedule new futures after
    shutdown"). That is the simulator stopping, not a failure worth a traceback in the log."""
    simulator = InstanceSimulator("http://127.0.0.1:9", table_name="table")

    def stopped_under_it() -> int:
        simulator._stop.set()
        raise RuntimeError("cannot schedule new futures after shutdown")

    simulator._report_live = stopped_under_it  # type: ignore[method-assign]
    simulator._report_due = stopped_under_it  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="kubestep_local.instances"):
        simulator._run_reports()
        simulator._stop.clear()
        simulator._run_boots()
    assert [r.getMessage() for r in caplog.records] == []
