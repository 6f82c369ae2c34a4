"""JSON Schemas of the manifests (for editors: `schemas/*.json`, `kubestep schema KIND`) and the
field documentation `kubestep explain KIND[.FIELD]` prints, both generated from the pydantic
models and their field descriptions (which also fill the API's OpenAPI document)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter

from kubestep.models import AWSCluster, AWSManagementService, AWSNodePool
from kubestep.suggest import did_you_mean

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

KINDS: dict[str, type[BaseModel]] = {
    "AWSCluster": AWSCluster,
    "AWSNodePool": AWSNodePool,
    "AWSManagementService": AWSManagementService,
}
# Every name a kind answers to on the command line (kubectl's singular, plural and short names).
KIND_NAMES: dict[str, str] = {
    **{n: "AWSCluster" for n in ("awscluster", "awsclusters", "cluster", "clusters", "cl")},
    **{n: "AWSNodePool" for n in ("awsnodepool", "awsnodepools", "nodepool", "nodepools", "np")},
    **{
        n: "AWSManagementService"
        for n in ("awsmanagementservice", "awsmanagementservices", "managementservice", "managementservices", "ms")
    },
}
# The checked-in files under schemas/ (tests keep them equal to what the models generate).
SCHEMA_FILES: dict[str, str] = {
    "AWSCluster": "awscluster.json",
    "AWSNodePool": "awsnodepool.json",
    "AWSManagementService": "awsmanagementservice.json",
    "manifest": "manifest.json",
}


class UnknownKind(ValueError):
    pass


class UnknownField(ValueError):
    pass


def kind_of(name: str) -> str:
    kind = KIND_NAMES.get(name.lower())
    if kind is None:
        known = ", ".join(sorted({"cluster", "nodepool", "managementservice"}))
        hint = did_you_mean(name, {n for n in KIND_NAMES if not n.startswith("aws") and not n.endswith("s")})
        raise UnknownKind(f"unknown kind {name[:60]!r}{hint} (known: {known}, or AWSCluster, AWSNodePool, …)")
    return kind


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind's manifest, or of any manifest (`manifest`:
    one of the kinds, chosen by `kind`, for files holding a cluster and its node pools)."""
    if kind == "manifest":
        any_kind = Annotated[AWSCluster | AWSNodePool | AWSManagementService, Field(discriminator="kind")]
        schema = TypeAdapter(any_kind).json_schema(by_alias=True)
        schema = {"title": "kubestep manifest", **schema}
    else:
        schema = KINDS[kind].model_json_schema(by_alias=True)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- explain


@dataclass
class FieldDoc:
    name: str
    type: str
    description: str = ""
    required: bool = False
    default: Any = None
    has_default: bool = False
    constraints: list[str] = field(default_factory=list)


@dataclass
class Explanation:
    kind: str
    path: str  # e.g. AWSCluster.spec.controlPlane
    node: FieldDoc
    fields: list[FieldDoc]


_CONSTRAINTS = {
    "pattern": "pattern {}",
    "minLength": "length >= {}",
    "maxLength": "length <= {}",
    "minimum": ">= {}",
    "maximum": "<= {}",
    "minItems": "items >= {}",
    "maxItems": "items <= {}",
}


class _Walker:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.defs = schema.get("$defs", {})

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow `$ref`s and drop the `null` of optional fields; keep the outer description."""
        while True:
            if "$ref" in node:
                target = self.defs[node["$ref"].rsplit("/", 1)[-1]]
                node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                continue
            options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
            if len(options) == 1 and "anyOf" in node:
                node = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
                continue
            return node

    def type_name(self, node: dict[str, Any]) -> str:
        raw = node
        node = self.resolve(node)
        if "$ref" in raw or (raw.get("anyOf") and node.get("properties")):
            return "Object" if node.get("properties") is not None else self.type_name(node)
        if "const" in node:
            return f"string ({node['const']})"
        if "enum" in node:
            return "string (one of: " + ", ".join(str(v) for v in node["enum"]) + ")"
        kind = node.get("type")
        if kind == "array":
            return "[]" + self.type_name(node.get("items", {}))
        if kind == "object":
            if "properties" in node:
                return "Object"
            values = node.get("additionalProperties")
            return "map[string]" + (self.type_name(values) if isinstance(values, dict) else "string")
        return str(kind or "any")

    def doc(self, name: str, node: dict[str, Any], required: bool) -> FieldDoc:
        resolved = self.resolve(node)
        constraints = [text.format(resolved[key]) for key, text in _CONSTRAINTS.items() if key in resolved]
        items = resolved.get("items") if resolved.get("type") == "array" else None
        if isinstance(items, dict):
            item = self.resolve(items)
            constraints += [f"each: {text.format(item[key])}" for key, text in _CONSTRAINTS.items() if key in item]
        return FieldDoc(
            name=name,
            type=self.type_name(node),
            description=(node.get("description") or resolved.get("description") or "").strip(),
            required=required,
            default=node.get("default"),
            has_default="default" in node,
            constraints=constraints,
        )

    def children(self, node: dict[str, Any]) -> list[FieldDoc]:
        node = self.resolve(node)
        while node.get("type") == "array":
            node = self.resolve(node.get("items", {}))
        required = set(node.get("required", []))
        return [self.doc(name, child, name in required) for name, child in (node.get("properties") or {}).items()]

    def child(self, node: dict[str, Any], name: str) -> tuple[dict[str, Any], bool] | None:
        node = self.resolve(node)
        while node.get("type") == "array":
            node = self.resolve(node.get("items", {}))
        properties = node.get("properties") or {}
        if name in properties:
            return properties[name], name in set(node.get("required", []))
        # Field names are case-sensitive in manifests; explain forgives the case (as kubectl does not).
        for key, value in properties.items():
            if key.lower() == name.lower():
                return value, key in set(node.get("required", []))
        return None


def known_fields(kind: str, path: Sequence[str | int]) -> list[str]:
    """The field names of the object at `path` in a `kind` manifest (list indexes are skipped:
    they lead to the items' fields), or none when the path leads nowhere."""
    try:
        found = explain(".".join([kind, *(str(part) for part in path if not isinstance(part, int))]))
    except (UnknownKind, UnknownField):
        return []
    return [doc.name for doc in found.fields]


def explain(target: str) -> Explanation:
    """`cluster.spec.controlPlane` -> the field's type and description and its own fields."""
    kind_name, *path = target.split(".")
    kind = kind_of(kind_name)
    schema = KINDS[kind].model_json_schema(by_alias=True)
    walker = _Walker(schema)
    node: dict[str, Any] = schema
    required = True
    names = [kind]
    for part in path:
        found = walker.child(node, part)
        if found is None:
            fields = [d.name for d in walker.children(node)]
            known = ", ".join(fields) or "none: it is a value"
            where = ".".join(names)
            raise UnknownField(f"{where} has no field {part[:60]!r}{did_you_mean(part, fields)} (its fields: {known})")
        node, required = found
        names.append(part)
    return Explanation(
        kind=kind,
        path=".".join(names),
        node=walker.doc(names[-1], node, required),
        fields=walker.children(node),
    )
