"""`kubestep config get-contexts|current-context|use-context|set-context|delete-context`."""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from kubestep.cli import contexts
from kubestep.cli.base import CONTEXT_SETTINGS
from kubestep.cli.errors import CliError, InputError
from kubestep.cli.options import output_options
from kubestep.cli.output import Column, emit
from kubestep.cli.target import read_local_state


def _complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        return [CompletionItem(n) for n in sorted(contexts.load().all()) if n.startswith(incomplete)]
    except Exception:
        return []


# Not the commands' global flags: these commands talk to no API, and set-context has its own
# --endpoint/--service/--region/--profile (the values to store).
@click.group(context_settings=CONTEXT_SETTINGS, short_help="Contexts: where the API is, with region and profile.")
def config() -> None:
    """Contexts: named API endpoints (or management services) with their region and profile,
    kept in $KUBESTEP_HOME/config. The context `local` is always there: the local runtime of
    this $KUBESTEP_HOME, wherever it listens now."""


@config.command("get-contexts")
@output_options()
def get_contexts(fmt: str, query: str | None, no_headers: bool) -> None:
    """List the contexts; * marks the current one. A local context's endpoint is where the local
    runtime listens now."""
    current = contexts.load()
    everything = current.all()
    items = [{"current": name == current.current, **everything[name].as_dict()} for name in sorted(everything)]
    columns = [
        Column("CURRENT", lambda c: "*" if c["current"] else ""),
        Column("NAME", lambda c: c["name"]),
        Column("ENDPOINT", lambda c: c.get("endpoint") or ("" if c.get("service") else _local_endpoint())),
        Column("SERVICE", lambda c: c.get("service") or ""),
        Column("REGION", lambda c: c.get("region") or ""),
        Column("PROFILE", lambda c: c.get("profile") or ""),
    ]
    emit(
        items,
        fmt,
        columns=columns,
        name=lambda c: f"context/{c['name']}",
        query_expression=query,
        headers=not no_headers,
    )


def _local_endpoint() -> str:
    state = read_local_state() or {}
    return f"{state['api_url']} (local runtime)" if state.get("api_url") else "(local runtime, not running)"


@config.command("current-context")
def current_context() -> None:
    """Print the current context's name."""
    name = contexts.load().current
    if not name:
        raise CliError("no current context (kubestep config use-context NAME)")
    click.echo(name)


@config.command("use-context")
@click.argument("name", shell_complete=_complete)
def use_context(name: str) -> None:
    """Make NAME the current context."""
    current = contexts.load()
    current.get(name)
    current.current = name
    contexts.save(current)
    click.echo(f'Switched to context "{name}".')


@config.command("set-context")
@click.argument("name", shell_complete=_complete)
@click.option("--endpoint", metavar="URL", help="The management API URL (a stack's ApiUrl output).")
@click.option("--service", metavar="NAME", help="A management service: its URL comes from stack kubestep-NAME.")
@click.option("--region", help="AWS region to sign requests (and read the stack) in.")
@click.option("--profile", help="AWS credentials profile.")
@click.option("--current", "make_current", is_flag=True, help="Also make it the current context.")
def set_context(
    name: str, endpoint: str | None, service: str | None, region: str | None, profile: str | None, make_current: bool
) -> None:
    """Create or change context NAME in $KUBESTEP_HOME/config (fields not given are kept): an
    endpoint, or a management service found through its stack, with the region and profile to
    sign with. With neither --endpoint nor --service it targets the local runtime (as `local`,
    built in, does)."""
    contexts.check_name(name)
    if name == contexts.LOCAL and (endpoint or service):
        raise InputError(f"{name!r} is the local runtime's context; give this endpoint another name")
    if endpoint and service:
        raise InputError("give --endpoint or --service, not both")
    if endpoint and not endpoint.startswith(("https://", "http://")):
        raise InputError(f"--endpoint {endpoint[:60]!r} must be an http(s) URL")
    current = contexts.load()
    context = current.contexts.get(name) or contexts.Context(name)
    if endpoint:
        context.endpoint, context.service = endpoint, None
    if service:
        context.service, context.endpoint = service, None
    context.region = region or context.region
    context.profile = profile or context.profile
    existed = name in current.contexts
    current.contexts[name] = context
    if make_current or not current.current:
        current.current = name
    contexts.save(current)
    click.echo(f'Context "{name}" {"modified" if existed else "created"}.')


@config.command("delete-context")
@click.argument("name", shell_complete=_complete)
def delete_context(name: str) -> None:
    """Delete context NAME."""
    current = contexts.load()
    current.get(name)
    if current.is_builtin(name):
        raise InputError(f"{name!r} is built in (the local runtime's context); there is nothing to delete")
    del current.contexts[name]
    if current.current == name:
        current.current = None
    contexts.save(current)
    click.echo(f'Deleted context "{name}".')
