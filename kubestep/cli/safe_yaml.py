"""Reading manifests safely: YAML 1.2 scalars, no duplicate keys, and bounds on aliases,
nesting and expanded size checked on the node graph before anything is built from it.

Why PyYAML with a YAML 1.2 resolver rather than ruamel.yaml: PyYAML is already a dependency;
the YAML 1.2 core schema is six regular expressions (https://yaml.org/spec/1.2.2/#1032-tag-
resolution) on PyYAML's documented `add_implicit_resolver` hook; and neither library bounds
alias expansion (a 461-byte nested-alias file expanded to gigabytes once serialized), so the
composer hooks below are needed with either. With YAML 1.2, `13:30` stays a string (YAML 1.1:
the sexagesimal number 810), `yes`/`off` stay strings (YAML 1.1: booleans), `2024-01-01` stays a
string (YAML 1.1: a date, which JSON cannot carry); an unquoted `1.30` is a number in both
(`kubestep.cli.manifests` hints at quoting it).

Limits: per file MAX_FILE_BYTES, MAX_DOCUMENTS, MAX_VALUES and MAX_ALIASES, counted from the
parser's events before any node is built; MAX_DEPTH levels of nesting (also through aliases);
and MAX_DOCUMENT_BYTES of expanded JSON per document (the API's request limit), measured on
the node graph, where an alias is one shared node, before any data is built from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

MAX_FILE_BYTES = 1024 * 1024
MAX_DOCUMENTS = 100  # a cluster and its 20 node pools is 21
MAX_VALUES = 50_000  # scalars and collections in one file, before aliases are expanded
MAX_ALIASES = 100
MAX_DEPTH = 32  # a manifest's deepest field is 6 levels down (spec.controlPlane.etcd.mainVolume.sizeGiB)
MAX_DOCUMENT_BYTES = 256 * 1024  # = kubestep.api.app.MAX_BODY_BYTES
MERGE_TAG = "tag:yaml.org,2002:merge"


class LimitExceeded(yaml.YAMLError):
    """The input is bigger or deeper than a manifest can be."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, first: int, again: int) -> None:
        super().__init__(f"key {key[:60]!r} appears twice in one mapping (lines {first} and {again})")
        self.line = again


class _Constructor(SafeConstructor):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue  # `<<: *defaults` then overrides: the point of a merge
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
                    ) from None
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise DuplicateKey(str(key), first, line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:  # type: ignore[override]
        # YAML 1.2: 010 is ten (YAML 1.1: eight); octal is written 0o10.
        value = str(self.construct_scalar(node))
        sign, digits = (-1, value[1:]) if value.startswith("-") else (1, value.lstrip("+"))
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        return sign * int(digits, 10)


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)


class _Resolver(Resolver):
    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


# The YAML 1.2 core schema (spec 1.2.2, §10.3.2), replacing YAML 1.1's booleans (yes/no/on/off),
# sexagesimal numbers (13:30), timestamps and `=`.
_CORE_SCHEMA = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
    (MERGE_TAG, r"^(?:<<)$", ["<"]),
]
for _tag, _pattern, _first in _CORE_SCHEMA:
    _Resolver.add_implicit_resolver(_tag, re.compile(_pattern), _first)


# libyaml (PyYAML's C parser) when present: 5-10x faster, and it refuses flow nesting past 1000.
if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class ManifestLoader(CParser, _Constructor, _Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

    _EventLoader: Any = yaml.CBaseLoader
else:  # pragma: no cover - every supported platform has libyaml wheels

    class ManifestLoader(
        yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Constructor, _Resolver
    ):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

    _EventLoader = yaml.BaseLoader


def prescan(text: str) -> int:
    """Count documents, values, aliases and nesting from the parser's events (no nodes built,
    nothing expanded); raise LimitExceeded past a limit. Returns the number of documents."""
    depth = values = aliases = documents = 0
    for event in yaml.parse(text, Loader=_EventLoader):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            values += 1
            if depth > MAX_DEPTH:
                raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels", line)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise LimitExceeded(f"more than {MAX_ALIASES} YAML aliases (*name) in one file", line)
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > MAX_DOCUMENTS:
                raise LimitExceeded(f"more than {MAX_DOCUMENTS} documents in one file", line)
        if values > MAX_VALUES:
            raise LimitExceeded(f"more than {MAX_VALUES} values in one file", line)
    return documents


# ---------------------------------------------------------------- the node graph


@dataclass
class Shape:
    size: int  # bytes of the document as compact JSON, roughly, with every alias expanded
    depth: int


def measure(root: Node) -> Shape:
    """Expanded size and depth of a document without expanding it: each node is measured once
    (an alias is the same node object), iteratively (no recursion limit), refusing cycles."""
    done: dict[int, Shape] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in done and not children_done:
            continue
        if isinstance(node, ScalarNode):
            done[key] = Shape(len(str(node.value)) + 3, 1)
            continue
        children = _children(node)
        if not children_done:
            if key in active:
                raise LimitExceeded("a YAML alias refers to a node that contains it (a recursive alias)", _line(node))
            active.add(key)
            stack.append((node, True))
            for child in children:
                if id(child) in active:
                    raise LimitExceeded(
                        "a YAML alias refers to a node that contains it (a recursive alias)", _line(child)
                    )
                if id(child) not in done:
                    stack.append((child, False))
            continue
        active.discard(key)
        shapes = [done[id(child)] for child in children]
        shape = Shape(2 + sum(s.size + 1 for s in shapes), 1 + max((s.depth for s in shapes), default=0))
        if shape.size > MAX_DOCUMENT_BYTES:
            raise LimitExceeded(
                f"a document expands to more than {MAX_DOCUMENT_BYTES // 1024} KiB (the API's request limit)"
                + (" through YAML aliases" if _has_alias_inside(node) else ""),
                _line(node),
            )
        if shape.depth > MAX_DEPTH:
            raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels (through YAML aliases)", _line(node))
        done[key] = shape
    return done[id(root)]


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _has_alias_inside(node: Node) -> bool:
    """Does the graph below `node` reach a node twice (what an alias does)?"""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            return True
        seen.add(id(current))
        stack.extend(_children(current))
    return False


def node_index(root: Node) -> dict[tuple[Any, ...], Node]:
    """Data path (as pydantic reports locations: keys and list indexes) -> the node it came
    from, for line numbers and hints. Merged keys (`<<`) sit at the level they merge into."""
    index: dict[tuple[Any, ...], Node] = {}
    stack: list[tuple[tuple[Any, ...], Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        index.setdefault(path, node)
        if isinstance(node, SequenceNode):
            stack.extend((path + (i,), child) for i, child in enumerate(node.value))
        elif isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                    for mapping in merged:
                        if isinstance(mapping, MappingNode):
                            stack.extend((path + (k.value,), v) for k, v in mapping.value if isinstance(k, ScalarNode))
                elif isinstance(key_node, ScalarNode):
                    stack.append((path + (key_node.value,), value_node))
    return index


def load_all(text: str) -> list[tuple[Node, Any]]:
    """Each document's root node and its data; raises yaml.YAMLError (LimitExceeded,
    DuplicateKey, syntax errors with their marks)."""
    prescan(text)
    loader = ManifestLoader(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            measure(node)
            documents.append((node, loader.construct_document(node)))
        return documents
    finally:
        loader.dispose()
