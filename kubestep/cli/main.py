"""`kubestep` — the command-line tool (the `anthos-gke` analogue), in kubectl's and the AWS
CLI's manner. One module per command group under `kubestep.cli.commands`; the command
classes (global flags anywhere, `-h`, one-line errors) are in `kubestep.cli.base`.

Errors are one line on stderr; exit code 1 for a failed operation (or not found, conflict),
2 for bad usage or input; `--debug` (or KUBESTEP_DEBUG=1) adds the traceback of an
unexpected error."""

from __future__ import annotations

import click

from kubestep import __version__
from kubestep.cli.base import CONTEXT_SETTINGS, RootGroup, with_global_flags
from kubestep.cli.commands.apply import apply, diff_command
from kubestep.cli.commands.completion import completion
from kubestep.cli.commands.config import config
from kubestep.cli.commands.dashboard import dashboard
from kubestep.cli.commands.delete import delete
from kubestep.cli.commands.describe import describe
from kubestep.cli.commands.diagnose import diagnose
from kubestep.cli.commands.explain import explain, schema
from kubestep.cli.commands.get import events, get
from kubestep.cli.commands.lifecycle import create, scale, upgrade
from kubestep.cli.commands.operations import operations
from kubestep.cli.commands.version import version

# Re-exported for callers of the old single-module CLI.
from kubestep.cli.errors import OperationFailed
from kubestep.cli.waiting import wait_for

__all__ = ["OperationFailed", "main", "wait_for"]


@click.group(cls=RootGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="kubestep", message="%(prog)s %(version)s")
def main() -> None:
    """Kubernetes clusters on AWS, run by a serverless management service on Step Functions.

    The global options below may also follow the subcommand
    (`kubestep get clusters --context prod`)."""


for command in (
    apply,
    diff_command,
    get,
    describe,
    create,
    upgrade,
    scale,
    delete,
    events,
    operations,
    version,
    explain,
    schema,
    config,
    completion,
    dashboard,
    diagnose,
):
    main.add_command(command)

# The local runtime, the demo and reaching clusters live in their own modules.
from kubestep.cli import bench as _bench  # noqa: E402
from kubestep.cli import credentials as _credentials  # noqa: E402
from kubestep.cli import demo as _demo  # noqa: E402
from kubestep.cli import local as _local  # noqa: E402

main.add_command(_local.local)
main.add_command(_demo.demo)
main.add_command(_bench.bench)
for _command in _credentials.COMMANDS:
    main.add_command(with_global_flags(_command))
from kubestep.cli import reliability as _reliability  # noqa: E402 - repair, sweep

for _command in _reliability.COMMANDS:
    main.add_command(with_global_flags(_command))
from kubestep.cli import backups as _backups  # noqa: E402 - backup

for _command in _backups.COMMANDS:
    main.add_command(with_global_flags(_command))


if __name__ == "__main__":  # pragma: no cover
    main()
