"""Small helpers for reading a synthesized template."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def statements_of(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(policy logical id, statement) for every identity-policy statement in the template: the
    roles' policies, inline or attached (the CDK moves what exceeds a role's inline-policy size into
    overflow managed policies), not the permissions boundary, which grants nothing itself."""
    for logical_id, policy in attached_policies(template).items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, statement
    for logical_id, role in resources_of(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def attached_policies(template: dict[str, Any]) -> dict[str, Any]:
    """AWS::IAM::Policy resources and the managed policies attached to roles (`Roles`)."""
    return {
        **resources_of(template, "AWS::IAM::Policy"),
        **{k: v for k, v in resources_of(template, "AWS::IAM::ManagedPolicy").items() if v["Properties"].get("Roles")},
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
