"""The command classes: every command accepts the global flags (before or after it), `-h`,
and fails with one line (see kubestep.cli.errors)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from kubestep.cli.errors import is_broken_pipe, report
from kubestep.cli.options import global_params

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class Command(click.Command):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_params(hidden=True))


class Group(click.Group):
    command_class = Command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_params(hidden=True))


Group.group_class = Group


def with_global_flags(command: click.Command) -> click.Command:
    """A command another module builds as a plain click command: accept the global flags
    after it too."""
    taken = {param.name for param in command.params}
    command.params.extend(param for param in global_params(hidden=True) if param.name not in taken)
    return command


class RootGroup(click.Group):
    """The `kubestep` group: global flags shown here; the guard that turns every failure into
    one line and an exit code."""

    command_class = Command
    group_class = Group

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_params(hidden=False))

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name or "kubestep", complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except click.exceptions.NoArgsIsHelpError as exc:
            # `kubestep`, `kubestep operations`: the help, as kubectl prints it; not an error.
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            sys.exit(0)
        except BaseException as exc:  # the one place every failure is reported
            if is_broken_pipe(exc):
                _quiet_stdout()
                sys.exit(1)
            sys.exit(report(exc, argv))
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _quiet_stdout() -> None:
    # `kubestep get clusters | head -1`: the reader left; say nothing more, on exit either.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
