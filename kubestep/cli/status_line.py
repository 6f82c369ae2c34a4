"""`--wait`'s live status line: under the step log, one line that says what runs now (the step, the
replica or node pool it works on as "replica 2/3", what it waits for) and for how long, redrawn
while the operation runs; the log lines scroll above it. Plain lines only -- what scripts and CI
logs want -- when stderr is not a terminal, with NO_COLOR or TERM=dumb, or with `--no-progress`
(KUBESTEP_NO_PROGRESS=1)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import click

from kubestep.cli.output import duration_text
from kubestep.cli.target import FLAGS_KEY

if TYPE_CHECKING:  # rich is imported when a live status line is drawn, not by every command
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

NO_PROGRESS_ENV = "KUBESTEP_NO_PROGRESS"
# A Map iteration's item is `<key> <value>` (kubestep.execution_history): `replica 1`, `nodePool general`.
_ITEM = re.compile(r"^(?P<key>\w+) (?P<value>.+)$")
_ITEM_NAMES = {"replica": "replica", "nodePool": "node pool"}


@dataclass
class Status:
    """What the operation does now, from the step items seen so far."""

    kind: str  # CreateCluster, UpdateNodePool, ...
    target: str  # prod, prod/general
    started: float  # time.time() of the execution's start
    totals: dict[str, int] = field(default_factory=dict)  # item key -> how many there are (replica: 3)
    step: str | None = None
    where: str | None = None
    waiting: str | None = None
    done: int = 0

    def observe(self, item: dict[str, Any]) -> None:
        self.step = item.get("step") or self.step
        self.where = self._where(item)
        if item.get("type") == "wait":
            self.waiting = item.get("message")
        else:
            self.waiting = None  # a step that finished waits no more
            self.done += 1

    def _where(self, item: dict[str, Any]) -> str | None:
        """`replica 1 (2/3)`: the iteration's item as the step lines name it, and which of how
        many (the second of three replicas; replicas are numbered from 0, like their names)."""
        match = _ITEM.match(item.get("item") or "")
        if not match:
            return None
        key, value = match["key"], match["value"]
        name, total = _ITEM_NAMES.get(key, key), self.totals.get(key)
        position = int(value) if key == "replica" and value.isdigit() else item.get("iteration")
        if total and isinstance(position, int):
            return f"{name} {value} ({position + 1}/{total})"
        return f"{name} {value}"

    def render(self, now: float | None = None) -> str:
        """`UpdateCluster prod | 12s | 8 steps done | CheckReplicaHealth [replica 1 (2/3)] waiting: ...`"""
        elapsed = duration_text((now or time.time()) - self.started) if self.started else "-"
        doing = self.step or "starting"
        if self.where:
            doing += f" [{self.where}]"
        if self.waiting:
            doing += f" waiting: {self.waiting}"
        elif self.step:
            doing += " done"
        return " | ".join([f"{self.kind} {self.target}", elapsed, f"{self.done} steps done", doing])


class Progress(Protocol):
    def log(self, text: str) -> None: ...

    def show(self, status: Status) -> None: ...


class PlainProgress:
    """The step log alone, a line at a time."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo

    def log(self, text: str) -> None:
        self._echo(text)

    def show(self, status: Status) -> None:
        pass


class _StatusRenderable:
    """Redrawn by rich's Live a few times a second: the spinner turns, the elapsed time moves on."""

    def __init__(self) -> None:
        from rich.spinner import Spinner

        self.status: Status | None = None
        self.spinner = Spinner("dots")

    def __rich__(self) -> Text:
        from rich.text import Text

        frame = self.spinner.render(time.monotonic())
        line = Text.assemble(frame if isinstance(frame, Text) else "", " ", self.status.render() if self.status else "")
        # One line, cut to the terminal's width: a wrapped status line would leave copies behind.
        line.no_wrap, line.overflow = True, "ellipsis"
        return line


class LiveProgress:
    """The step log scrolling above a live status line (rich's Live, on stderr)."""

    def __init__(self, live: Live, renderable: _StatusRenderable) -> None:
        self._live = live
        self._renderable = renderable

    def log(self, text: str) -> None:
        from rich.text import Text

        self._live.console.print(Text(text), soft_wrap=True)

    def show(self, status: Status) -> None:
        self._renderable.status = status


def wants_live(stream: TextIO | None = None) -> bool:
    """A live status line only for a person at a terminal who has not asked for plain output."""
    stream = stream or sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    if os.environ.get(NO_PROGRESS_ENV, "").lower() in ("1", "true", "yes"):
        return False
    ctx = click.get_current_context(silent=True)
    flags = ctx.meta.get(FLAGS_KEY, {}) if ctx is not None else {}
    return not flags.get("no_progress")


@contextmanager
def progress_display(
    echo: Callable[[str], None], *, live: bool | None = None, console: Console | None = None
) -> Iterator[Progress]:
    """A live status line when `live` (default: `wants_live()`), else plain lines through `echo`."""
    if not (wants_live() if live is None else live):
        yield PlainProgress(echo)
        return
    from rich.console import Console
    from rich.live import Live

    renderable = _StatusRenderable()
    console = console or Console(stderr=True, highlight=False)
    with Live(renderable, console=console, transient=True, refresh_per_second=4, redirect_stdout=False) as shown:
        yield LiveProgress(shown, renderable)
