"""`kubestep explain KIND[.FIELD]` and `kubestep schema KIND`: the manifests' documentation and
JSON Schemas, from the models' field descriptions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubestep import files
from kubestep.cli.base import Command
from kubestep.cli.errors import InputError

if TYPE_CHECKING:
    from kubestep.manifest_schema import FieldDoc

# kubestep.manifest_schema (the pydantic models) is imported by the commands: `kubestep -h`
# imports this module too.


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, 96, initial_indent=indent, subsequent_indent=indent) or [indent.rstrip()]


def _field_line(doc: FieldDoc) -> str:
    extra = " -required-" if doc.required else ""
    if doc.has_default and doc.default not in (None, [], {}):
        extra += f" (default {json.dumps(doc.default)})"
    return f"  {doc.name}\t<{doc.type}>{extra}"


@click.command(cls=Command, short_help="Document a manifest kind or field.")
@click.argument("target", metavar="KIND[.FIELD]")
@click.option("--recursive", is_flag=True, help="Also list the fields of the fields, all the way down.")
def explain(target: str, recursive: bool) -> None:
    """Document a manifest kind or field, e.g. `kubestep explain cluster.spec.controlPlane`.

    KIND: cluster (AWSCluster), nodepool (AWSNodePool), managementservice."""
    from kubestep import manifest_schema
    from kubestep.models import API_VERSION

    try:
        found = manifest_schema.explain(target)
    except (manifest_schema.UnknownKind, manifest_schema.UnknownField) as exc:
        raise InputError(str(exc)) from None
    lines = [f"KIND:     {found.kind}", f"VERSION:  {API_VERSION}"]
    if "." in found.path:
        lines.append(f"FIELD:    {found.path.split('.', 1)[1]} <{found.node.type}>")
    lines += ["", "DESCRIPTION:"]
    lines += _wrap(found.node.description or "(no description)", "    ")
    for constraint in found.node.constraints:
        lines.append(f"    - {constraint}")
    if found.fields:
        lines += ["", "FIELDS:"]
        _fields(lines, found.path, found.fields, recursive, depth=0)
    click.echo("\n".join(lines))


def _fields(lines: list[str], path: str, fields: list[FieldDoc], recursive: bool, depth: int) -> None:
    from kubestep import manifest_schema

    pad = "  " * depth
    for doc in fields:
        lines.append(pad + _field_line(doc))
        if not recursive:
            lines += _wrap(doc.description, pad + "    ")
            lines.append("")
        elif doc.type.endswith("Object") and depth < 8:
            child = manifest_schema.explain(f"{path}.{doc.name}")
            _fields(lines, child.path, child.fields, recursive, depth + 1)


@click.command(cls=Command, short_help="Print the JSON Schema of a manifest kind.")
@click.argument("kind", required=False)
@click.option(
    "--write",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every schema (schemas/*.json) into DIRECTORY instead.",
)
def schema(kind: str | None, directory: Path | None) -> None:
    """Print the JSON Schema of a manifest KIND (cluster, nodepool, managementservice), or of
    `manifest` (any kind, chosen by `kind`: for files with a cluster and its node pools).

    Editors use it with a modeline, e.g. for the YAML language server:
    `# yaml-language-server: $schema=<path>/schemas/manifest.json`."""
    from kubestep import manifest_schema

    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, filename in manifest_schema.SCHEMA_FILES.items():
            text = manifest_schema.dumps(manifest_schema.json_schema(name))
            try:
                files.replace_file(directory / filename, text, what="schema file", mode=0o644)
            except files.UnsafeTarget as exc:
                raise InputError(str(exc)) from None
            click.echo(str(directory / filename))
        return
    if not kind:
        raise InputError("name a kind (cluster, nodepool, managementservice, manifest), or --write DIRECTORY")
    try:
        resolved = "manifest" if kind.lower() == "manifest" else manifest_schema.kind_of(kind)
    except manifest_schema.UnknownKind as exc:
        raise InputError(str(exc)) from None
    click.echo(manifest_schema.dumps(manifest_schema.json_schema(resolved)), nl=False)
