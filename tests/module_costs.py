"""What each test module costs: wall time against the CPU time of its whole process tree (the test
process, the runtime's Lambda zygotes and workers, CDK synth, Chromium, CLI runtimes), each module
run alone (`pytest -n 0`), one after the other:

    python -m tests.module_costs tests/workflows/test_lifecycle.py tests/cli/test_cli_local.py

A module whose CPU is far below its wall time waits (time-scaled Wait states, boots, polls): more
xdist workers than cores overlap such modules. One near 1.0 (or above: threads and workers on both
cores) needs less work instead. Run it on a quiet machine (`uptime`): on a busy one the wall times
are others' too, the CPU times still hold. A module run alone deploys the stack first (the suite
does that once a session), so its CPU includes about 15 s the suite does not spend on it.

The tree is read from /proc every 0.2 s (Linux): a process that starts and ends between two looks
is missed, which only short helper commands do. A process once seen in the tree stays counted
after its parent ends (a detached `kubestep local up` runtime, its workers); one detached by a
parent that ended between two looks is missed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.2
LAMBDA_WORKER = "_worker.py"
FAILURE_LINES = 40  # of pytest's output, printed when a module fails


@dataclass(frozen=True)
class Process:
    parent: int
    cpu_seconds: float
    started: str  # start time in ticks since boot: with the pid, names one process
    command: str


@dataclass
class Cost:
    module: str
    returncode: int = 0
    failure: str = ""  # the end of pytest's output when it failed
    wall: float = 0.0
    cpu_by_kind: Counter[str] = field(default_factory=Counter)

    @property
    def cpu(self) -> float:
        return sum(self.cpu_by_kind.values())

    def line(self) -> str:
        kinds = ", ".join(f"{kind} {seconds:.0f}" for kind, seconds in self.cpu_by_kind.most_common())
        ratio = self.cpu / self.wall if self.wall else 0.0
        status = "" if self.returncode == 0 else f"  (pytest exit {self.returncode}):\n{self.failure}"
        return f"{self.module}: wall {self.wall:.0f} s, CPU {self.cpu:.0f} s ({ratio:.2f}): {kinds}{status}"


def processes() -> dict[int, Process]:
    found: dict[int, Process] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        found[int(entry)] = Process(int(fields[1]), cpu, fields[19], command)
    return found


def tree(root: int, table: dict[int, Process], known: set[int] = frozenset()) -> set[int]:
    """`root` and its descendants, with `known`: members of an earlier look that still run (a
    detached process, `kubestep local up --detach`'s runtime, is reparented when its parent ends)."""
    members, grew = {root} | (known & set(table)), True
    while grew:
        added = {pid for pid, process in table.items() if process.parent in members and pid not in members}
        members |= added
        grew = bool(added)
    return members & set(table)


def kind_of(pid: int, root: int, table: dict[int, Process]) -> str:
    process = table[pid]
    if pid == root:
        return "test process"
    if LAMBDA_WORKER in process.command:
        parent = table.get(process.parent)
        return "lambda worker" if parent and LAMBDA_WORKER in parent.command else "lambda zygote"
    program = process.command.split(" ", 1)[0].rsplit("/", 1)[-1]
    return program or "ended before its command was read"


def measure(module: str) -> Cost:
    cost = Cost(module)
    seen: dict[tuple[int, str], tuple[str, float]] = {}
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", module]
    known: dict[int, str] = {}  # pid -> start time of each member seen so far
    with tempfile.TemporaryFile() as output, subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT) as run:
        while run.poll() is None:
            table = processes()
            # A pid reused by an unrelated process is not a member: its start time differs.
            alive = {pid for pid, started in known.items() if pid in table and table[pid].started == started}
            for pid in tree(run.pid, table, alive):
                process = table[pid]
                known[pid] = process.started
                kind = kind_of(pid, run.pid, table)
                if not process.command and (pid, process.started) in seen:
                    kind = seen[(pid, process.started)][0]  # ended (a zombie has no command line)
                seen[(pid, process.started)] = (kind, process.cpu_seconds)
            time.sleep(POLL_SECONDS)
        cost.returncode = run.returncode
        if run.returncode:
            output.seek(0)
            cost.failure = "\n".join(output.read().decode(errors="replace").splitlines()[-FAILURE_LINES:])
    cost.wall = time.monotonic() - started
    for kind, seconds in seen.values():
        cost.cpu_by_kind[kind] += seconds
    return cost


def main(modules: list[str]) -> int:
    if not modules:
        print("usage: python -m tests.module_costs MODULE...", file=sys.stderr)
        return 2
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    worst = 0
    for module in modules:
        cost = measure(module)
        print(cost.line(), flush=True)
        worst = max(worst, cost.returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
