"""Options shared by the commands: the global flags (accepted before or after the subcommand,
like kubectl's and the AWS CLI's), output formats, durations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kubestep.cli.target import FLAGS_KEY
from kubestep.durations import InvalidDuration, parse_duration

F = TypeVar("F", bound=Callable[..., Any])

# -o everywhere an object is printed: text (the default, for people; `table` is the same), wide
# (more columns where there are more), name (kind/name, for scripts), json and yaml (the API's form).
OUTPUT_FORMATS = ("text", "wide", "name", "json", "yaml")
TEXT_SYNONYM = "table"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # ctx.meta is shared by the whole command line: a flag given after the subcommand lands
    # where one given before it would; an unset flag never overrides a set one.
    if value not in (None, False):
        ctx.meta.setdefault(FLAGS_KEY, {})[param.name] = value
    return value


GLOBAL_HELP = [
    ("endpoint", "URL", "Management API URL (a stack's ApiUrl output). Env: KUBESTEP_API_URL."),
    ("service", "NAME", "Management service NAME: the API URL from stack kubestep-NAME's ApiUrl output."),
    ("context", "NAME", "Use this context (kubestep config get-contexts). Env: KUBESTEP_CONTEXT."),
    ("region", "REGION", "AWS region to sign requests for. Env: AWS_REGION."),
    ("profile", "PROFILE", "AWS credentials profile. Env: AWS_PROFILE."),
]


def global_params(*, hidden: bool) -> list[click.Parameter]:
    """--endpoint, --service, --context, --region, --profile, --debug, --no-progress: shown on `kubestep -h`,
    accepted (hidden) by every subcommand, so they may follow it."""
    params: list[click.Parameter] = [
        click.Option(
            [f"--{name}"],
            metavar=metavar,
            help=help_text,
            hidden=hidden,
            expose_value=False,
            callback=_remember,
            shell_complete=_complete_context if name == "context" else None,
        )
        for name, metavar, help_text in GLOBAL_HELP
    ]
    params.append(
        click.Option(
            ["--debug"],
            is_flag=True,
            hidden=hidden,
            expose_value=False,
            callback=_remember,
            help="Print the traceback of an unexpected error. Env: KUBESTEP_DEBUG=1.",
        )
    )
    params.append(
        click.Option(
            ["--no-progress"],
            is_flag=True,
            hidden=hidden,
            expose_value=False,
            callback=_remember,
            help="--wait prints plain lines, no live status line (so it does when stderr is not a terminal, "
            "or with NO_COLOR). Env: KUBESTEP_NO_PROGRESS=1.",
        )
    )
    return params


def _complete_context(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from click.shell_completion import CompletionItem

    from kubestep.cli import contexts

    try:
        names = sorted(contexts.load().contexts)
    except Exception:
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


class OutputFormat(click.Choice):
    """`-o`: one of `formats`, with `table` accepted for `text` (what earlier releases called it)."""

    def __init__(self, formats: tuple[str, ...] = OUTPUT_FORMATS) -> None:
        super().__init__([*formats, TEXT_SYNONYM] if "text" in formats else list(formats))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        found = super().convert(value, param, ctx)
        return "text" if found == TEXT_SYNONYM else found

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        shown = [c for c in self.choices if c != TEXT_SYNONYM]
        return "[" + "|".join(str(c) for c in shown) + "]"


def output_option(formats: tuple[str, ...] = OUTPUT_FORMATS, default: str = "text") -> Callable[[F], F]:
    """-o/--output alone (commands that print what they did)."""
    return click.option(
        "-o",
        "--output",
        "fmt",
        type=OutputFormat(formats),
        default=default,
        show_default=True,
        help=_formats_help(formats),
    )


# What each -o format is for; a command's help names only the formats it accepts.
FORMAT_USES = {
    "text": "text (for people)",
    "wide": "wide (more columns)",
    "name": "name (kind/name, for scripts)",
    "json": "json",
    "yaml": "yaml",
}


def _formats_help(formats: tuple[str, ...], text: str = "text (for people)") -> str:
    uses = [text if f == "text" else FORMAT_USES[f] for f in formats]
    listed = ", ".join(uses[:-1]) + f" or {uses[-1]}" if len(uses) > 1 else uses[0]
    return listed + (" (the API's representation)." if {"json", "yaml"} & set(formats) else ".")


def output_options(*, formats: tuple[str, ...] = OUTPUT_FORMATS, default: str = "text") -> Callable[[F], F]:
    """-o/--output, --query (JMESPath on the JSON form), --no-headers."""

    def decorate(f: F) -> F:
        f = click.option("--no-headers", is_flag=True, help="Tables without their header line (for scripts).")(f)
        f = click.option(
            "--query",
            metavar="JMESPATH",
            callback=_check_query,
            help="A JMESPath expression applied to the JSON form, as the AWS CLI does (e.g. "
            "\"[?status.phase=='RUNNING'].metadata.name\"); printed as JSON unless -o yaml.",
        )(f)
        return click.option(
            "-o",
            "--output",
            "fmt",
            type=OutputFormat(formats),
            default=default,
            show_default=True,
            help=_formats_help(formats, text="text (a table)"),
        )(f)

    return decorate


def _check_query(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # Checked before any request, like every other flag.
    if value is not None:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            jmespath.compile(value)
        except JMESPathError as exc:
            raise click.BadParameter(" ".join(str(exc).split()), ctx, param) from None
    return value


class Duration(click.ParamType):
    """A duration as kubectl writes it (`kubestep.durations`): `90s`, `10m`, `1h30m`, `2d`, or
    plain seconds; in seconds. `minimum`: the shortest accepted (0 allows `0s`)."""

    name = "duration"

    def __init__(self, minimum: float | None = None) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(value)
            except InvalidDuration as exc:
                self.fail(str(exc), param, ctx)
        if self.minimum is None and seconds <= 0:
            self.fail(f"{str(value)[:40]!r} must be longer than zero", param, ctx)
        if self.minimum is not None and seconds < self.minimum:
            self.fail(f"{str(value)[:40]!r} must be at least {self.minimum:g}s", param, ctx)
        return seconds


DURATION = Duration()


def timeout_option(default: str = "1h", help_text: str = "How long to wait") -> Callable[[F], F]:
    return click.option(
        "--timeout", type=DURATION, default=default, show_default=True, help=f"{help_text} (e.g. 90s, 10m, 1h)."
    )


# --time-scale of the commands that run the emulator: a factor for waits, retries and boots. The
# demo and the bench print figures divided by it (modelled time, "N x faster"), so they need it
# above 0; `local up` takes 0 (no waits at all), never less.
POSITIVE_TIME_SCALE = click.FloatRange(min=0, min_open=True)
TIME_SCALE = click.FloatRange(min=0)
