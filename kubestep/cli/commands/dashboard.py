"""`kubestep dashboard`: serve the web dashboard on loopback over every configured management
service (the contexts, and the endpoint the CLI would use), signing its API calls as the CLI
signs its own (`kubectl proxy`'s approach: a browser cannot sign SigV4)."""

from __future__ import annotations

import errno
import sys
import threading
import webbrowser
from typing import TYPE_CHECKING, Any

import click

from kubestep.api.client import ApiClient
from kubestep.cli import contexts
from kubestep.cli.base import with_global_flags
from kubestep.cli.errors import CliError, InputError
from kubestep.cli.options import DURATION
from kubestep.cli.target import FLAGS_KEY, Target, read_local_state, resolve

if TYPE_CHECKING:  # the dashboard's server is imported when it is served
    from kubestep.dashboard import DashboardTarget

DEFAULT_PORT = 8070
MIN_INTERVAL_SECONDS = 0.5


def _local_api_url() -> str | None:
    """Where the local runtime's API is now, from the endpoints it recorded when it started."""
    state = read_local_state() or {}
    url = state.get("api_url")
    return url if isinstance(url, str) and url else None


def _local_client(endpoint: str) -> ApiClient:
    return ApiClient(endpoint, sign=False)


def _dashboard_target(name: str, resolved: Target) -> DashboardTarget:
    # The local runtime (found through its state file, or named by the endpoint it recorded) is
    # followed when it restarts on other ports: `kubestep local down && kubestep local up`.
    from kubestep.dashboard import DashboardTarget

    local = not resolved.sign or resolved.endpoint == _local_api_url()
    return DashboardTarget(
        name=name,
        endpoint=resolved.endpoint,
        region=resolved.region,
        local=local,
        make_client=resolved.client,
        locate=_local_api_url if local else None,
        client_at=_local_client if local else None,
    )


def _context_target(name: str, flags: dict[str, Any]) -> DashboardTarget:
    """A context's management service; one that cannot be resolved is still listed, with why."""
    from kubestep.dashboard import DashboardTarget

    try:
        resolved = resolve({"context": name, "region": flags.get("region"), "profile": flags.get("profile")})
    except (CliError, click.UsageError) as exc:
        text = exc.format_message() if isinstance(exc, click.UsageError) else str(exc)
        return DashboardTarget(name=name, error=" ".join(text.split()))
    return _dashboard_target(name, resolved)


def dashboard_targets(flags: dict[str, Any], names: tuple[str, ...]) -> list[DashboardTarget]:
    """The named contexts; or every context plus the endpoint the CLI would use now (named
    `local` for the local runtime, `default` otherwise) unless a context already is it."""
    config = contexts.load()
    chosen = list(dict.fromkeys([*names, *([flags["context"]] if flags.get("context") else [])]))
    for name in chosen:
        config.get(name)  # an unknown context is bad input: InputError naming the known ones
    if chosen:
        return [_context_target(name, flags) for name in chosen]
    targets = [_context_target(name, flags) for name in sorted(config.contexts)]
    try:
        default = resolve({k: v for k, v in flags.items() if k != "context"})
    except (CliError, click.UsageError):
        if targets:
            return targets
        raise
    if not any(t.endpoint == default.endpoint for t in targets):
        name = "local" if not default.sign else "default"
        while name in {t.name for t in targets}:
            name += "-"
        targets.insert(0, _dashboard_target(name, default))
    return targets


@with_global_flags  # a plain command: its own repeatable --context replaces the global one
@click.command("dashboard", short_help="Serve the web dashboard of every cluster on loopback.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=None,
    help="Open the page in a browser [default: when run in a terminal].",
)
@click.option(
    "--context",
    "context",
    multiple=True,
    metavar="NAME",
    help="Show this context's management service (repeatable) [default: every context, and the endpoint "
    "the CLI would use].",
)
@click.option(
    "--interval",
    type=DURATION,
    default="2s",
    show_default=True,
    help="How often the page polls (it backs off to 30s while a service does not answer).",
)
@click.pass_context
def dashboard(
    ctx: click.Context, port: int, open_browser: bool | None, context: tuple[str, ...], interval: float
) -> None:
    """Serve the dashboard: every cluster of every management service (phase, version,
    endpoint, replicas per zone, node pools, the current operation's progress, warnings), a
    cluster's operations step by step on a timeline, scheduled upgrades and events; upgrade,
    scale a node pool, delete and cancel, each after a confirmation.

    It listens on 127.0.0.1 only and signs the page's API calls with your AWS credentials, as
    the CLI does; the page never sees them. Open the printed URL (it carries this run's session
    token); Ctrl-C stops it. A page showing the local runtime follows it when it restarts on
    other ports."""
    if interval < MIN_INTERVAL_SECONDS:
        raise InputError(f"--interval must be at least {MIN_INTERVAL_SECONDS:g}s")
    from kubestep.dashboard import DashboardServer

    flags = ctx.meta.get(FLAGS_KEY, {})
    targets = dashboard_targets(flags, context)
    try:
        server = DashboardServer(targets, port=port, poll_seconds=interval)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on 127.0.0.1 is in use: pass --port (0 picks a free one)") from None
        raise CliError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    click.echo(f"kubestep dashboard: {server.url}")
    for target in targets:
        where = target.endpoint or f"unavailable: {target.error}"
        click.echo(f"  {target.name}: {where}")
    click.echo("Ctrl-C stops it.")
    sys.stdout.flush()
    if open_browser if open_browser is not None else sys.stdout.isatty():
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("dashboard stopped")
    finally:
        server.close()
