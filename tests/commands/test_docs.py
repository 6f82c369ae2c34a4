"""`kubestep --help` and the README's CLI reference list every command (and the README names
no command that does not exist)."""

from __future__ import annotations

import re

import click

from kubestep.cli.main import main
from tests.commands.conftest import ROOT, Service

README = (ROOT / "README.md").read_text()
REFERENCE = README[README.index("## CLI reference") : README.index("## API reference")]


def top_level_commands() -> dict[str, click.Command]:
    """`kubestep`'s commands, through click's Group API (they load lazily)."""
    ctx = click.Context(main)
    return {name: main.get_command(ctx, name) for name in main.list_commands(ctx)}


def command_paths() -> dict[str, list[str]]:
    """Top-level command -> its subcommands (empty for a plain command)."""
    return {
        name: sorted(n for n, sub in command.commands.items() if not sub.hidden)
        if isinstance(command, click.Group)
        else []
        for name, command in top_level_commands().items()
        if not command.hidden
    }


def test_help_lists_every_command(service: Service) -> None:
    listed = service.run("--help").stdout
    for name, subcommands in command_paths().items():
        assert re.search(rf"^  {re.escape(name)}\s", listed, re.M), name
        if subcommands:
            group_help = service.run(name, "--help").stdout
            for sub in subcommands:
                assert re.search(rf"^  {re.escape(sub)}\s", group_help, re.M), (name, sub)


def test_readme_documents_every_command() -> None:
    for name, subcommands in command_paths().items():
        assert f"`kubestep {name}" in REFERENCE, f"README's CLI reference lacks `kubestep {name}`"
        rows = [line for line in REFERENCE.splitlines() if f"kubestep {name} " in line]
        for sub in subcommands:
            assert any(re.search(rf"\b{re.escape(sub)}\b", row) for row in rows), f"kubestep {name} {sub}"


def test_readme_names_no_command_that_does_not_exist() -> None:
    mentioned = set(re.findall(r"`kubestep ([a-z-]+)", REFERENCE))
    assert mentioned <= set(top_level_commands()), mentioned - set(top_level_commands())


def test_readmes_generated_sections_are_what_the_generator_prints() -> None:
    """The global flags, the command table and the API table come from click's command tree and
    the OpenAPI document: `python -m kubestep.docs` rewrites them."""
    from kubestep import docs

    assert docs.stale_sections(README) == [], "README.md is stale: run `python -m kubestep.docs`"


def test_the_generator_notices_a_stale_section() -> None:
    from kubestep import docs

    begin, end = docs.BEGIN.format(name="cli-reference"), docs.END.format(name="cli-reference")
    start = README.index(begin) + len(begin)
    edited = README[:start] + "\n| `kubestep frobnicate` | no such command |" + README[start:]
    assert docs.stale_sections(edited) == ["cli-reference"]
    assert docs.stale_sections(docs.render(edited)) == []
    assert "kubestep frobnicate" not in docs.render(edited)
    assert README.count(end) == 1
