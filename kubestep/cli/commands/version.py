"""`kubestep version`: the client's version, and the server's with the Kubernetes versions it
installs (GET /v1/version)."""

from __future__ import annotations

import click

from kubestep import __version__
from kubestep.api.client import ApiError
from kubestep.cli import target
from kubestep.cli.base import Command
from kubestep.cli.options import output_options
from kubestep.cli.output import emit
from kubestep.versions import supported_minors


@click.command(cls=Command, short_help="Client and server versions, supported Kubernetes versions.")
@click.option("--client", "client_only", is_flag=True, help="Only the client's version (no request).")
@output_options(formats=("text", "json", "yaml"))
@click.pass_context
def version(ctx: click.Context, client_only: bool, fmt: str, query: str | None, no_headers: bool) -> None:
    """Print the client and server versions (the management service, its region, the local
    runtime's time scale) and the Kubernetes versions clusters can run."""
    data: dict = {"client": {"kubestep": __version__, "kubernetesVersions": [f"1.{m}" for m in supported_minors()]}}
    failure: ApiError | None = None
    if not client_only:
        try:
            data["server"] = target.client(ctx).version()
        except ApiError as exc:
            failure = exc
    if fmt != "text" or query:
        emit(data, fmt, query_expression=query)
    else:
        click.echo(f"Client Version: kubestep {__version__}")
        server = data.get("server")
        if server:
            scale = server.get("timeScale", 1)
            click.echo(
                f"Server Version: kubestep {server['kubestep']} (management service {server['managementService']}, "
                f"{server['region']}{f', time scale {scale:g}' if scale != 1 else ''})"
            )
            click.echo(f"Kubernetes versions: {', '.join(server['kubernetesVersions'])}")
    if failure is not None:
        raise failure
