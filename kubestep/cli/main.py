"""`kubestep` — the command-line tool (the `anthos-gke` analogue), in kubectl's and the AWS
CLI's manner. One module per command group under `kubestep.cli.commands`; the command
classes (global flags anywhere, `-h`, one-line errors) are in `kubestep.cli.base`.

Errors are one line on stderr; exit code 1 for a failed operation (or not found, conflict),
2 for bad usage or input; `--debug` (or KUBESTEP_DEBUG=1) adds the traceback of an
unexpected error.

Every command pays this module's imports before it starts, so the commands are loaded lazily
(click's "Lazily Loading Subcommands"): `kubestep get clusters` imports the `get` module only,
and `kubestep -h` the command modules but not boto3, pydantic or the local runtime."""

from __future__ import annotations

from typing import Any

import click

from kubestep import __version__
from kubestep.cli.base import CONTEXT_SETTINGS, RootGroup

# Re-exported for callers of the old single-module CLI (wait_for too, below).
from kubestep.cli.errors import OperationFailed

# name -> "module:attribute" of each command.
COMMANDS = {
    "apply": "kubestep.cli.commands.apply:apply",
    "diff": "kubestep.cli.commands.apply:diff_command",
    "get": "kubestep.cli.commands.get:get",
    "describe": "kubestep.cli.commands.describe:describe",
    "create": "kubestep.cli.commands.lifecycle:create",
    "upgrade": "kubestep.cli.commands.lifecycle:upgrade",
    "scale": "kubestep.cli.commands.lifecycle:scale",
    "delete": "kubestep.cli.commands.delete:delete",
    "events": "kubestep.cli.commands.get:events",
    "operations": "kubestep.cli.commands.operations:operations",
    "version": "kubestep.cli.commands.version:version",
    "explain": "kubestep.cli.commands.explain:explain",
    "schema": "kubestep.cli.commands.explain:schema",
    "config": "kubestep.cli.commands.config:config",
    "completion": "kubestep.cli.commands.completion:completion",
    "dashboard": "kubestep.cli.commands.dashboard:dashboard",
    "diagnose": "kubestep.cli.commands.diagnose:diagnose",
    # The local runtime, the demo and reaching clusters live in their own modules.
    "local": "kubestep.cli.local:local",
    "demo": "kubestep.cli.demo:demo",
    "bench": "kubestep.cli.bench:bench",
    "get-credentials": "kubestep.cli.credentials:get_credentials",
    "token": "kubestep.cli.credentials:token",
    "tunnel": "kubestep.cli.credentials:tunnel",
    "repair": "kubestep.cli.reliability:repair",
    "sweep": "kubestep.cli.reliability:sweep",
    "backup": "kubestep.cli.backups:backup",
    "restore": "kubestep.cli.backups:restore",
}
# Commands their modules build as plain click commands: they take the global flags after them too.
WITH_GLOBAL_FLAGS = frozenset({"get-credentials", "token", "tunnel", "repair", "sweep", "backup", "restore"})

__all__ = ["OperationFailed", "main"]


@click.group(
    cls=RootGroup,
    context_settings=CONTEXT_SETTINGS,
    lazy_subcommands=COMMANDS,
    lazy_with_global_flags=WITH_GLOBAL_FLAGS,
)
@click.version_option(__version__, "--version", prog_name="kubestep", message="%(prog)s %(version)s")
def main() -> None:
    """Kubernetes clusters on AWS, run by a serverless management service on Step Functions.

    The global options below may also follow the subcommand
    (`kubestep get clusters --context prod`)."""


def __getattr__(name: str) -> Any:
    # kubestep.cli.waiting is imported when asked for: most commands never wait.
    if name == "wait_for":
        from kubestep.cli.waiting import wait_for

        return wait_for
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    main()
