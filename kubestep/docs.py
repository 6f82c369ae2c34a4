"""The README's reference sections, generated rather than written: the CLI reference from click's
own command tree (each command's usage and help), the API reference from the OpenAPI document the
API serves (each route's summary, description and answers). A test keeps README.md equal to what
this prints.

    python -m kubestep.docs            # rewrite README.md's generated sections
    python -m kubestep.docs --check    # exit 1 naming each section that differs

The CLI and the API are imported inside the functions: the Lambda asset carries this package
without the CLI, and no handler imports this module."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- BEGIN GENERATED {name}: python -m kubestep.docs -->"
END = "<!-- END GENERATED {name} -->"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _cell(text: str) -> str:
    """Text for one table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


# ---------------------------------------------------------------- the CLI


def _commands() -> Iterator[tuple[list[str], Any]]:
    """(path, command) of every command people run, depth first in name order; groups are
    listed through their subcommands, hidden (deprecated) commands not at all."""
    import click

    from kubestep.cli.main import main

    def walk(path: list[str], command: click.Command) -> Iterator[tuple[list[str], click.Command]]:
        if isinstance(command, click.Group):
            # click's Group API, not `.commands`: `kubestep`'s own subcommands load lazily.
            ctx = click.Context(command)
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from walk([*path, name], sub)
        else:
            yield path, command

    yield from walk([], main)


def _synopsis(path: list[str], command: Any) -> str:
    """`kubestep get TYPE [NAME]... [-c CLUSTER] [-o FORMAT] [-w]`: the arguments, then each
    option the command shows in its help (its shortest name, its value's metavar)."""
    import click

    parts = ["kubestep", *path]
    for param in command.params:
        if isinstance(param, click.Argument):
            metavar = param.metavar or param.name.upper()
            if param.nargs == -1 and not metavar.endswith("..."):
                metavar += "..."
            parts.append(metavar if param.required else f"[{metavar}]" if not metavar.startswith("[") else metavar)
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden or param.name == "help":
            continue
        flag = min(param.opts, key=len) if len(param.opts) > 1 and param.opts[0].startswith("-") else param.opts[0]
        if param.is_flag and param.secondary_opts:
            flag = f"{param.opts[0]}/{param.secondary_opts[0]}"
        shown = flag if param.is_flag else f"{flag} {param.metavar or _metavar(param)}"
        parts.append(shown if param.required else f"[{shown}]")
    return " ".join(parts)


def _metavar(option: Any) -> str:
    import click

    if isinstance(option.type, click.Choice):
        visible = [str(c) for c in option.type.choices if c != "table"]
        return "|".join(visible)
    if isinstance(option.type, click.types._NumberParamTypeBase):
        return "N"
    return option.type.name.upper() if option.type.name not in ("text", "string") else option.name.upper()


def _summary(command: Any) -> str:
    """The command's help, up to its examples (click's `\\b` blocks are verbatim: left out)."""
    text = (command.help or command.short_help or "").split("\b")[0]
    return _cell(text.strip())


def cli_reference() -> str:
    rows = ["| Command | What it does |", "|---|---|"]
    for path, command in _commands():
        rows.append(f"| `{_cell(_synopsis(path, command))}` | {_summary(command)} |")
    return "\n".join(rows)


def global_flags() -> str:
    """The flags every command takes (before or after it)."""
    from kubestep.cli.options import global_params

    rows = ["| Flag | What it does |", "|---|---|"]
    for param in global_params(hidden=False):
        flag = param.opts[0] if param.is_flag else f"{param.opts[0]} {param.metavar}"
        rows.append(f"| `{flag}` | {_cell(param.help or '')} |")
    return "\n".join(rows)


# ---------------------------------------------------------------- the API


def _route(path: str, method: str, operation: dict[str, Any]) -> str:
    query = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
    headers = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "header"]
    shown = f"{method.upper()} {path}" + (f"?{'&'.join(f'{q}=' for q in query)}" if query else "")
    return f"`{shown}`" + (f" (header {', '.join(f'`{h}`' for h in headers)})" if headers else "")


def _answers(operation: dict[str, Any]) -> str:
    """Each success with what it carries; the errors by code (what each means is the same for
    every route: said once, under the table, as is API Gateway's own 403)."""
    answers = operation.get("responses") or {}
    successes = [f"{code} {_cell(a.get('description') or '')}" for code, a in sorted(answers.items()) if code < "300"]
    errors = [code for code in sorted(answers) if code >= "400" and code != "403"]
    return "; ".join(successes + ([f"errors {', '.join(errors)}"] if errors else []))


def api_reference() -> str:
    from kubestep.api.app import openapi_document

    paths = openapi_document().get("paths", {})
    rows = ["| Method and path | What it does | Answers |", "|---|---|---|"]
    for path in sorted(paths):
        for method in HTTP_METHODS:
            operation = paths[path].get(method)
            if operation is None:
                continue
            summary, description = operation.get("summary") or "", operation.get("description") or ""
            what = _cell(f"**{summary}**" + (f". {description}" if description else ""))
            rows.append(f"| {_route(path, method, operation)} | {what} | {_answers(operation)} |")
    return "\n".join(rows)


# ---------------------------------------------------------------- README.md

SECTIONS: dict[str, Callable[[], str]] = {
    "global-flags": global_flags,
    "cli-reference": cli_reference,
    "api-reference": api_reference,
}


def _span(text: str, name: str) -> tuple[int, int]:
    begin, end = BEGIN.format(name=name), END.format(name=name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"README.md must hold the markers of section {name} once: {begin} ... {end}")
    start = text.index(begin) + len(begin)
    return start, text.index(end, start)


def render(text: str) -> str:
    """`text` (README.md) with every generated section as the generator prints it now."""
    for name, generate in SECTIONS.items():
        start, stop = _span(text, name)
        text = text[:start] + "\n" + generate() + "\n" + text[stop:]
    return text


def stale_sections(text: str) -> list[str]:
    """The sections of `text` that differ from what the generator prints."""
    fresh = render(text)
    return [name for name in SECTIONS if _section(text, name) != _section(fresh, name)]


def _section(text: str, name: str) -> str:
    start, stop = _span(text, name)
    return re.sub(r"\s+$", "", text[start:stop].strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubestep.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which sections differ (exit 1 if any)")
    args = parser.parse_args(argv)
    text = README.read_text()
    if args.check:
        stale = stale_sections(text)
        for name in stale:
            print(f"README.md: section {name} differs from what `python -m kubestep.docs` prints", file=sys.stderr)
        return 1 if stale else 0
    README.write_text(render(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
