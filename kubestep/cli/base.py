"""The command classes: every command accepts the global flags (before or after it), `-h`,
and fails with one line (see kubestep.cli.errors)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Collection, Mapping
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
    one line and an exit code. Its subcommands load lazily, as click's docs show ("Lazily
    Loading Subcommands"): `lazy_subcommands` maps a name to the "module:attribute" of its
    command, imported when the command line names it (or the help lists it);
    `lazy_with_global_flags` names the plain click commands among them (see with_global_flags)."""

    command_class = Command
    group_class = Group

    def __init__(
        self,
        *args: Any,
        lazy_subcommands: Mapping[str, str] | None = None,
        lazy_with_global_flags: Collection[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_params(hidden=False))
        self.lazy_subcommands = dict(lazy_subcommands or {})
        self.lazy_with_global_flags = frozenset(lazy_with_global_flags)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_subcommands[cmd_name]} is not a click command")
        # with_global_flags adds only the flags a command lacks: loading it again changes nothing.
        return with_global_flags(command) if cmd_name in self.lazy_with_global_flags else command

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
