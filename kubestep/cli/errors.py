"""How the CLI fails: ONE line on stderr and a documented exit code, never a traceback
(`--debug` or KUBESTEP_DEBUG=1 adds it).

Exit codes: 0 success; 1 a failed operation, a resource not found, a conflict, a change that
cannot be applied yet, an unexpected error; 2 bad usage or bad input (nothing was changed);
130 interrupted."""

from __future__ import annotations

import errno
import os
import sys
import traceback

import click

from kubestep.api.client import ApiError
from kubestep.errors import InvalidSpec
from kubestep.suggest import close_matches, suggestion

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# API answers that mean "your input is wrong": nothing was changed, fix the input.
INPUT_STATUSES = (400, 405, 413, 415, 422)


class CliError(Exception):
    """An expected failure with its message and exit code."""

    exit_code = EXIT_FAILED


class InputError(CliError):
    """A bad file, flag or argument: nothing was sent or changed."""

    exit_code = EXIT_USAGE


class OperationFailed(CliError):
    """An operation ended other than SUCCEEDED, or did not end in time."""


class NotApplied(CliError):
    """`apply` found changes it cannot make yet (or `diff` found differences)."""


def debug_requested(args: list[str] | None = None) -> bool:
    args = sys.argv[1:] if args is None else args
    return "--debug" in args or os.environ.get("KUBESTEP_DEBUG", "").lower() in ("1", "true", "yes")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(exc: BaseException, ctx: click.Context | None = None) -> tuple[str, int]:
    """(message, exit code) for an exception that ends a command."""
    if isinstance(exc, ApiError):
        code = EXIT_USAGE if exc.status in INPUT_STATUSES else EXIT_FAILED
        return exc.one_line(), code
    if isinstance(exc, InvalidSpec):
        return f"invalid input: {exc}", EXIT_USAGE
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, click.NoSuchOption):
        where = exc.ctx.command_path if exc.ctx else "kubestep"
        return f"No such option: {exc.option_name}{_near_options(exc)} (see '{where} -h')", EXIT_USAGE
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx else "kubestep"
        return f"{exc.format_message()} (see '{where} -h')", EXIT_USAGE
    if isinstance(exc, click.ClickException):
        return exc.format_message(), exc.exit_code
    if isinstance(exc, (KeyboardInterrupt, click.Abort)):
        return "interrupted", EXIT_INTERRUPTED
    return f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", EXIT_FAILED


def _near_options(exc: click.NoSuchOption) -> str:
    """click's own "Did you mean" compares whole flags, so `--zone` is "close" to `--context`
    (the shared dashes count): compare the names, and offer every flag the command takes."""
    if exc.ctx is None:
        return ""
    flags = {
        flag.lstrip("-"): flag
        for param in exc.ctx.command.get_params(exc.ctx)
        if isinstance(param, click.Option)
        for flag in (*param.opts, *param.secondary_opts)
        if flag.startswith("--")
    }
    return suggestion(flags[name] for name in close_matches(exc.option_name.lstrip("-"), flags))


def report(exc: BaseException, args: list[str] | None = None) -> int:
    """Print the one line (and with --debug the traceback first) and return the exit code."""
    message, code = describe(exc)
    expected = (ApiError, InvalidSpec, CliError, click.ClickException, KeyboardInterrupt, click.Abort)
    if debug_requested(args) and not isinstance(exc, expected):
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {_one_line(message)}", err=True)
    return code


def is_broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE)
