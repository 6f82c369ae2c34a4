"""Printing: tables for people (kubectl-style, with AGE columns), `name` for scripts, JSON/YAML
(the API representation) for programs, and `--query` (JMESPath on the JSON form, as the AWS
CLI does)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from kubestep.cli.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console


def dumps(data: Any, fmt: str) -> str:
    """`-o yaml` or `-o json`: the API's form."""
    if fmt == "yaml":
        import yaml  # here: most commands print no YAML

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return json.dumps(data, indent=2, ensure_ascii=False)


@functools.cache
def console() -> Console:
    """The console tables print to, made when first used (rich is imported then)."""
    from rich.console import Console

    # Wide enough for AWS ids when printing to a file or pipe (rich assumes 80 columns there).
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


# ---------------------------------------------------------------- times


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(value: str | None, now: datetime | None = None) -> str:
    """kubectl's short human duration (45s, 12m, 5h, 3d, 2y) since `value`; `-` when unknown."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    return duration_text(seconds)


def duration_text(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    if seconds < 86400 * 365:
        return f"{seconds // 86400}d"
    return f"{seconds // (86400 * 365)}y"


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict], Any]
    wide_only: bool = False


GAP = "   "  # kubectl separates columns by three spaces


def format_rows(
    headers: Sequence[str] | None, rows: list[list[str]], widths: list[int] | None = None
) -> tuple[list[str], list[int]]:
    """Plain-text columns (what kubectl prints); `widths` keeps a watch's later rows aligned."""
    if widths is None:
        everything = ([list(headers)] if headers else []) + rows
        widths = [
            max((len(r[i]) for r in everything), default=0) for i in range(len(everything[0]) if everything else 0)
        ]
    lines = []
    for row in ([list(headers)] if headers else []) + rows:
        cells = [cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(row)]
        lines.append(GAP.join(cells).rstrip())
    return lines, widths


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return " ".join(str(value).split()) if "\n" in str(value) else str(value)


def rows_of(items: list[dict], columns: Sequence[Column], *, wide: bool) -> tuple[list[str], list[list[str]]]:
    chosen = [c for c in columns if wide or not c.wide_only]
    return [c.header for c in chosen], [[cell(c.value(item)) for c in chosen] for item in items]


def print_rows(headers: Sequence[str] | None, rows: list[list[str]], widths: list[int] | None = None) -> list[int]:
    lines, widths = format_rows(headers, rows, widths)
    for line in lines:
        click.echo(line)
    return widths


# ---------------------------------------------------------------- formats


def query(data: Any, expression: str) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(expression, data)
    except JMESPathError as exc:
        raise InputError(f"--query: {' '.join(str(exc).split())}") from None


def _plain(result: Any, headers: bool) -> None:
    """A query's result as text: scalars one per line, rows tab-separated, objects as a table."""
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        keys = list(dict.fromkeys(k for r in result for k in r))
        print_rows([k.upper() for k in keys] if headers else None, [[cell(r.get(k)) for k in keys] for r in result])
    elif isinstance(result, list):
        for row in result:
            click.echo("\t".join(cell(v) for v in row) if isinstance(row, list) else cell(row))
    elif isinstance(result, dict):
        print_rows(["KEY", "VALUE"] if headers else None, [[k, cell(v)] for k, v in result.items()])
    elif result is not None:
        click.echo(cell(result))


def emit(
    data: Any,
    fmt: str,
    *,
    columns: Sequence[Column] | None = None,
    name: Callable[[dict], str] | None = None,
    query_expression: str | None = None,
    headers: bool = True,
    explicit_format: bool = True,
) -> None:
    """Print `data` (a list of API objects, or one object) as asked."""
    if query_expression:
        result = query(data, query_expression)
        if fmt == "yaml":
            click.echo(dumps(result, "yaml"), nl=False)
        elif fmt in ("text", "wide") and explicit_format:
            _plain(result, headers)
        else:
            click.echo(dumps(result, "json"))
        return
    if fmt in ("json", "yaml"):
        text = dumps(data, fmt)
        click.echo(text, nl=not text.endswith("\n"))
        return
    items = data if isinstance(data, list) else [data]
    if fmt == "name":
        if name is None:
            raise InputError("-o name is not available here")
        for item in items:
            click.echo(name(item))
        return
    if columns is None:
        raise InputError(f"-o {fmt} is not available here")
    if not items:
        click.echo("No resources found.", err=True)
        return
    header_row, rows = rows_of(items, columns, wide=fmt == "wide")
    print_rows(header_row if headers else None, rows)


def key_values(pairs: list[tuple[str, Any]]) -> None:
    from rich.markup import escape

    width = max((len(k) for k, _ in pairs), default=0) + 1
    for key, value in pairs:
        console().print(f"[bold]{escape(key) + ':':<{width}}[/bold] {escape(cell(value))}", highlight=False)


def section(title: str) -> None:
    from rich.markup import escape

    console().print(f"\n[bold]{escape(title)}[/bold]")
