"""`--wait`'s live status line: what it says (the step, "replica 1 (2/3)", what it waits for, the
time), that it is drawn under the step log at a terminal and leaves no trace when done, and that
scripts, CI, NO_COLOR and `--no-progress` get plain lines."""

from __future__ import annotations

import io
import re
import time

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from kubestep.cli import status_line
from kubestep.cli.status_line import Status, progress_display, wants_live

STEPS = [
    {"type": "done", "step": "ReplaceReplica", "message": "ReplaceReplica [replica 1] (0.2s)", "item": "replica 1"},
    {
        "type": "wait",
        "step": "CheckReplicaHealth",
        "message": "replica 1 (us-east-1b) instance i-1 has not reported its bootstrap yet",
        "item": "replica 1",
        "map": "RollReplicas",
        "iteration": 0,
    },
]


def test_the_status_says_the_step_the_replica_of_how_many_and_the_wait() -> None:
    status = Status(kind="UpdateCluster", target="prod", started=1000.0, totals={"replica": 3, "nodePool": 2})
    assert status.render(now=1000.0) == "UpdateCluster prod | 0s | 0 steps done | starting"
    status.observe(STEPS[0])
    assert (
        status.render(now=1012.0) == "UpdateCluster prod | 12s | 1 steps done | ReplaceReplica [replica 1 (2/3)] done"
    )
    status.observe(STEPS[1])
    assert status.render(now=1075.0) == (
        "UpdateCluster prod | 1m | 1 steps done | CheckReplicaHealth [replica 1 (2/3)] waiting: "
        "replica 1 (us-east-1b) instance i-1 has not reported its bootstrap yet"
    )
    status.observe({"type": "done", "step": "RollNodePool", "item": "nodePool general", "iteration": 1})
    assert status.render(now=1080.0).endswith("RollNodePool [node pool general (2/2)] done")
    unknown = Status(kind="CreateCluster", target="x", started=0.0)
    unknown.observe(STEPS[0])
    assert "[replica 1]" in unknown.render(now=1.0)  # how many is not known: none is made up


def test_at_a_terminal_the_status_line_sits_under_the_log_and_goes_when_done() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    status = Status(kind="UpdateCluster", target="prod", started=time.time(), totals={"replica": 3})
    with progress_display(lambda text: None, live=True, console=console) as shown:
        for item in STEPS:
            shown.log(f"  {item['message']}")
            status.observe(item)
            shown.show(status)
        time.sleep(0.6)  # Live redraws a few times a second: let it draw the status line
    drawn = screen.getvalue()
    assert "  ReplaceReplica [replica 1] (0.2s)" in drawn
    assert "CheckReplicaHealth [replica 1 (2/3)] waiting: replica 1" in drawn
    # Transient: at the end the status line is erased (cursor up, clear the line) and the cursor shown.
    assert drawn.endswith("\x1b[?25h\r\x1b[1A\x1b[2K")
    assert drawn.index("ReplaceReplica [replica 1] (0.2s)") < drawn.rindex("waiting: replica 1")


def test_plain_lines_otherwise() -> None:
    printed: list[str] = []
    with progress_display(printed.append, live=False) as shown:
        shown.log("  [    1.0s] done  ValidateRequest (1.0s)")
        shown.show(Status(kind="CreateCluster", target="prod", started=0.0))
    assert printed == ["  [    1.0s] done  ValidateRequest (1.0s)"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),
        ({"NO_COLOR": "1"}, False),
        ({"TERM": "dumb"}, False),
        ({status_line.NO_PROGRESS_ENV: "1"}, False),
    ],
)
def test_who_gets_the_live_line(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool) -> None:
    for name in ("NO_COLOR", "TERM", status_line.NO_PROGRESS_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert wants_live(_Terminal()) is expected
    assert wants_live(io.StringIO()) is False  # a pipe, a file, CI's log


def test_no_progress_is_a_global_flag() -> None:
    from kubestep.cli.main import main

    seen: list[bool] = []

    @click.command()
    def probe() -> None:
        seen.append(wants_live(_Terminal()))

    main.add_command(probe, "probe-progress")
    try:
        runner = CliRunner()
        env = {"NO_COLOR": None, "TERM": "xterm", status_line.NO_PROGRESS_ENV: None}
        assert runner.invoke(main, ["probe-progress"], env=env).exit_code == 0
        assert runner.invoke(main, ["--no-progress", "probe-progress"], env=env).exit_code == 0
    finally:
        main.commands.pop("probe-progress")
    assert seen == [True, False]
    assert re.search(r"--no-progress\s", runner.invoke(main, ["-h"]).stdout)
