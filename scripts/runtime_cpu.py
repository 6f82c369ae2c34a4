"""Where the local runtime's process spends its CPU while N clusters are created at once, by thread.

Starts a runtime in this process (latency instant, as `kubestep bench --concurrent` runs its
creates), provisions the network, then creates N clusters at once through the API and prints the
process's CPU over the creates, per group of threads (the kernel's per-thread clocks,
/proc/self/task/<tid>/stat, named by their Python thread names with numbers folded; threads
that ended during the creates, the Step Functions interpreter's mostly, are counted together),
the instance simulator's reports (how late, how many) and the gates' attempts, and the CPU of the
Lambda zygotes and workers (the runtime's descendant processes) over the same creates:

    python scripts/runtime_cpu.py [-f examples/cluster-ha.yaml] [--clusters 10] [--profile FILE]
                                  [--worker-profile DIR] [--time MODULE:QUALNAME,...]

With ``--profile`` every thread started after the runtime is created also runs under cProfile on
its own CPU clock (the setup included; cProfile inflates Python code several times: read its
shares, not its seconds), all threads' stats added into FILE (``python -m pstats FILE``). A call
still in progress when the stats are taken (a thread blocked in ``recv_into``, a queue's
``get``, a lock) is closed on the main thread's clock: ignore those and their callers'
cumulative times. With ``--worker-profile`` each Lambda worker profiles its invocations (`KUBESTEP_LOCAL_PROFILE`,
kubestep_local/_worker.py) into DIR: ``python -c "import pstats, glob;
pstats.Stats(*glob.glob('DIR/*cluster-tasks*')).sort_stats('cumtime').print_stats(40)"``.
With ``--time`` (e.g. ``moto.core.responses:BaseResponse.setup_class``) each function named is
wrapped, once the runtime runs, and the thread CPU spent inside it during the creates is printed
(its own thread's clock from entry to return; a nested or recursive call counted once): real
seconds per call, where cProfile inflates every Python call (a name another module imported with
``from ... import`` keeps the unwrapped function there). It asserts nothing; it prints numbers.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import inspect
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_profiles: list[cProfile.Profile] = []
_profiles_lock = threading.Lock()


def _profile_this_thread(*_: Any) -> None:
    """`threading.setprofile` hook: the new thread's own profiler, on its own CPU clock."""
    sys.setprofile(None)
    profile = cProfile.Profile(time.thread_time)
    with _profiles_lock:
        _profiles.append(profile)
    profile.enable()


class CallTimers:
    """``--time``: the thread CPU spent inside each function named, while ``active``."""

    def __init__(self, targets: list[str]) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.active = False
        self._inside = threading.local()
        self._lock = threading.Lock()
        for target in targets:
            self._wrap(target)

    def _wrap(self, target: str) -> None:
        module_name, _, path = target.partition(":")
        if not path:
            raise SystemExit(
                f"--time {target}: expected MODULE:QUALNAME (e.g. moto.core.responses:BaseResponse.dispatch)"
            )
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        if isinstance(inspect.getattr_static(owner, name), staticmethod | classmethod):
            raise SystemExit(f"--time {target}: static and class methods are not timed")
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.active or getattr(self._inside, path, False):
                return original(*args, **kwargs)
            setattr(self._inside, path, True)
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                setattr(self._inside, path, False)
                with self._lock:
                    self.seconds[path] += spent
                    self.calls[path] += 1

        setattr(owner, name, timed)

    def report(self, cpu: float) -> None:
        for path, seconds in self.seconds.most_common():
            calls = self.calls[path]
            share = 100 * seconds / cpu if cpu else 0.0
            print(f"  {path:60s} {seconds:7.2f} s {share:5.1f} %  {calls:6d} calls {1000 * seconds / calls:8.3f} ms")


def thread_cpu() -> dict[int, tuple[str, float]]:
    """Native thread id -> (Python thread name, CPU seconds so far) for this process's threads."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(tid)] = (names.get(int(tid), "?"), (int(fields[11]) + int(fields[12])) / ticks)
    return found


def descendants_cpu() -> float:
    """CPU seconds of this process's descendants (the Lambda zygotes and workers), the children
    they reaped included: /proc/<pid>/stat utime+stime+cutime+cstime of each live descendant."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(value) for value in fields[11:15]) / ticks
    me = os.getpid()
    total = 0.0
    for pid in cpu:
        ancestor = parent.get(pid)
        while ancestor and ancestor != me:
            ancestor = parent.get(ancestor)
        if ancestor == me:
            total += cpu[pid]
    return total


def cpu_by_group(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> Counter[str]:
    """CPU seconds between two `thread_cpu` readings, per thread group (`group`)."""
    by_group: Counter[str] = Counter()
    for tid, (name, seconds) in after.items():
        by_group[group(name)] += seconds - before.get(tid, (name, 0.0))[1]
    return by_group


def group(name: str) -> str:
    """A thread group's name: numbers folded, moto's interpreter threads' long names cut."""
    return re.sub(r"\d+", "N", name)[:40]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--filename", default=str(ROOT / "examples" / "cluster-ha.yaml"))
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--profile", help="write the threads' cProfile stats here")
    parser.add_argument(
        "--worker-profile",
        metavar="DIR",
        help="each Lambda worker writes its invocations' cProfile stats to DIR/<function>-<pid>.prof",
    )
    parser.add_argument(
        "--time",
        metavar="MODULE:QUALNAME,...",
        default="",
        help="print the thread CPU spent inside these functions during the creates",
    )
    args = parser.parse_args()
    os.environ.setdefault("KUBESTEP_HOME", tempfile.mkdtemp(prefix="kubestep-runtime-cpu-"))
    if args.worker_profile:
        args.worker_profile = str(Path(args.worker_profile).resolve())
        Path(args.worker_profile).mkdir(parents=True, exist_ok=True)

    from kubestep_local import bench
    from kubestep_local._worker import PROFILE_ENV
    from kubestep_local.runtime import LocalRuntime, RuntimeConfig

    body = bench.reference_body(Path(args.filename))
    if args.profile:
        threading.setprofile(_profile_this_thread)
    runtime = LocalRuntime(
        RuntimeConfig(
            port=0,
            api_port=0,
            time_scale=args.time_scale,
            latency="instant",
            extra_function_env={PROFILE_ENV: args.worker_profile} if args.worker_profile else {},
        )
    )
    runtime.start()
    try:
        runtime.deploy()
        runtime.provision_network(wait=True, timeout=3600)
        timers = CallTimers([target for target in args.time.split(",") if target])
        timers.active = True
        before = thread_cpu()
        workers_cpu = descendants_cpu()
        cpu = time.process_time()
        run = bench.run_concurrent(runtime, body, args.clusters, "cpu", {})
        cpu = time.process_time() - cpu
        timers.active = False
        workers_cpu = descendants_cpu() - workers_cpu
        after = thread_cpu()
    finally:
        runtime.stop()
        threading.setprofile(None)
    by_group = cpu_by_group(before, after)
    print(
        f"{args.clusters} creates: {run['succeeded']} RUNNING in {run['wallSeconds']} s, "
        f"runtime process CPU {cpu:.2f} s ({cpu / args.clusters:.2f} s a create), load {os.getloadavg()[0]:.1f}"
    )
    print(f"Lambda zygotes and workers CPU {workers_cpu:.2f} s ({workers_cpu / args.clusters:.2f} s a create)")
    for name, seconds in by_group.most_common():
        if seconds >= 0.005:
            print(f"  {name:42s} {seconds:7.2f} s  {100 * seconds / cpu:5.1f} %")
    ended = cpu - sum(by_group.values())
    print(f"  {'(threads that ended meanwhile)':42s} {ended:7.2f} s  {100 * ended / cpu:5.1f} %")
    timers.report(cpu)
    print("instance reports:", run["instanceReports"])
    print("per create:", run["perCreate"])
    if args.profile:
        import pstats

        stats = None
        with _profiles_lock:
            profiles = list(_profiles)
        for profile in profiles:
            profile.create_stats()
            if not profile.stats:  # type: ignore[attr-defined]
                continue
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        if stats is not None:
            stats.dump_stats(args.profile)
            print(f"profile: {args.profile} (python -m pstats {args.profile})")


if __name__ == "__main__":
    main()
