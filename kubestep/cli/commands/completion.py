"""`kubestep completion bash|zsh|fish`: the shell script that completes commands, flags and
the names of clusters, node pools, operations and contexts (click's shell completion)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from kubestep.cli.base import Command

COMPLETE_VAR = "_KUBESTEP_COMPLETE"


@click.command(cls=Command, short_help="Print a shell completion script (bash, zsh, fish).")
@click.argument("shell", metavar="SHELL", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL: commands, flags, and the names of clusters, node
    pools, operations and contexts.

    \b
    bash:  source <(kubestep completion bash)     # or add it to ~/.bashrc
    zsh:   source <(kubestep completion zsh)      # or add it to ~/.zshrc
    fish:  kubestep completion fish > ~/.config/fish/completions/kubestep.fish
    """
    completer = get_completion_class(shell)
    assert completer is not None  # the Choice above lists only shells click supports
    root = ctx.find_root().command
    click.echo(completer(root, {}, "kubestep", COMPLETE_VAR).source())
