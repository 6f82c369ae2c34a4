"""A small IAM policy evaluator: enough of AWS's evaluation logic to decide, for one request
(action, resource ARN, request context), whether identity policies (and a permissions boundary)
allow it.

What it implements, after AWS's "Policy evaluation logic" and "IAM JSON policy elements"
reference pages:
- an explicit Deny wins; otherwise an Allow is needed in the identity policies and, when a
  permissions boundary is set, in the boundary too (their intersection);
- `Action` / `NotAction` (case-insensitive, `*` and `?` wildcards), `Resource` / `NotResource`
  (ARNs matched segment by segment, wildcards inside a segment; the resource part may hold `:`);
- `Condition`: every operator block must hold (AND), every key inside it must hold (AND), any
  of a key's values may match (OR). Operators: String(Not)Equals(IgnoreCase), String(Not)Like,
  Arn(Not)Equals, Arn(Not)Like, Bool, Null, Numeric*, each with `IfExists`, and the set
  qualifiers `ForAllValues:` / `ForAnyValue:`. A key missing from the request makes a positive
  operator false, a negated operator true, `...IfExists` true, and `ForAllValues:` true (the
  documented pitfall the tests rely on being modelled).
- policy variables (`${aws:RequestTag/k}`, `${ec2:SourceInstanceARN}`) in `Resource` and condition
  values, replaced from the request context ("IAM policy elements: Variables and tags"); a
  variable the request has no value for makes its statement not apply, Allow or Deny alike
  ("If AWS cannot resolve a variable, this might cause the entire statement to be invalid");
- a KMS key policy (`evaluate_with_key_policy`): KMS lets nothing use a key its key policy does
  not allow, to the principal itself or to the account, which then delegates to IAM policies (AWS
  KMS Developer Guide, "Key policies in AWS KMS" and "Default key policy").
Anything else (an unknown operator, a variable's default-value form) raises, so a policy the
evaluator does not understand can never pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Statement = Mapping[str, Any]
ContextValue = str | bool | int | Sequence[str]


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not model."""


class _Unresolved(Exception):
    """A policy variable the request has no (single) value for: the statement does not apply."""


_POLICY_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Request:
    """One authorization AWS makes: an action on a resource, with the request context's keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def value(self, key: str) -> list[str] | None:
        """The context key's values (keys are case-insensitive), None when absent."""
        lowered = key.lower()
        for name, value in self.context.items():
            if name.lower() == lowered:
                if isinstance(value, bool):
                    return ["true" if value else "false"]
                if isinstance(value, (str, int)):
                    return [str(value)]
                return [str(v) for v in value]
        return None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    allowed_by: str | None = None


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def substitute(value: str, request: Request) -> str:
    """A policy string with its variables replaced from the request context."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if "," in name or not name:
            raise UnsupportedPolicy(f"policy variable form not modelled: {match.group(0)!r}")
        values = request.value(name)
        if not values or len(values) != 1:
            raise _Unresolved(name)
        return values[0]

    return _POLICY_VARIABLE.sub(replace, value) if "${" in value else value


@lru_cache(maxsize=4096)
def _glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def glob_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    return bool(_glob(pattern, case_sensitive).match(value))


def arn_match(pattern: str, arn: str) -> bool:
    """IAM's ARN matching: the six colon-separated parts compared one by one (wildcards do not
    cross a part boundary, except in the resource part, which may itself contain colons)."""
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(arn_parts) != 6:  # not an ARN (a resource the check could not derive)
        return False
    if len(pattern_parts) != 6:  # a malformed ARN pattern matches nothing
        return False
    return all(glob_match(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def action_match(pattern: str, action: str) -> bool:
    return glob_match(pattern, action, case_sensitive=False)


@lru_cache(maxsize=65536)
def _any_action_matches(patterns: tuple[str, ...], action: str) -> bool:
    """Whether one of a statement's action patterns matches: the check asks this of every statement
    of the caller's policies for every call, with few distinct (patterns, action) pairs."""
    return any(action_match(p, action) for p in patterns)


# ------------------------------------------------------------------ conditions

_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}


def _compare(operator: str, expected: str, actual: str) -> bool:
    """One policy value against one request value, for a positive (non-negated) operator."""
    if operator == "StringEquals":
        return expected == actual
    if operator == "StringEqualsIgnoreCase":
        return expected.lower() == actual.lower()
    if operator == "StringLike":
        return glob_match(expected, actual)
    if operator == "ArnEquals":
        return expected == actual
    if operator == "ArnLike":
        return arn_match(expected, actual)
    if operator == "Bool":
        return expected.lower() == actual.lower()
    if operator.startswith("Numeric"):
        e, a = float(expected), float(actual)
        return {
            "NumericEquals": a == e,
            "NumericLessThan": a < e,
            "NumericLessThanEquals": a <= e,
            "NumericGreaterThan": a > e,
            "NumericGreaterThanEquals": a >= e,
        }[operator]
    raise UnsupportedPolicy(f"condition operator {operator!r} is not modelled")


_POSITIVE = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}
_KNOWN = {
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
    "Bool",
    "Null",
    "NumericEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    *_NEGATED,
}


def _condition_holds(qualified_operator: str, key: str, policy_values: list[Any], request: Request) -> bool:
    qualifier, _, operator = qualified_operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator not in _KNOWN or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedPolicy(f"condition operator {qualified_operator!r} is not modelled")
    expected = [substitute(str(v).lower() if isinstance(v, bool) else str(v), request) for v in policy_values]
    actual = request.value(key)
    if operator == "Null":
        # "true": the key must be absent; "false": present.
        return any((actual is None) == (e.lower() == "true") for e in expected)
    if actual is None:
        if qualifier == "ForAllValues":
            return True  # vacuously true: AWS's documented behaviour for a missing key
        if qualifier == "ForAnyValue":
            return False
        return if_exists or operator in _NEGATED
    negated = operator in _NEGATED
    positive = _POSITIVE.get(operator, operator)

    def matches(value: str) -> bool:
        return any(_compare(positive, e, value) for e in expected)

    if qualifier == "ForAllValues":
        result = all(matches(v) for v in actual)
        return not any(matches(v) for v in actual) if negated else result
    if qualifier == "ForAnyValue":
        return any(not matches(v) for v in actual) if negated else any(matches(v) for v in actual)
    # A single-valued key (a multi-valued one without a qualifier: any value decides).
    if negated:
        return not any(matches(v) for v in actual)
    return any(matches(v) for v in actual)


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]] | None, request: Request) -> bool:
    for operator, block in (conditions or {}).items():
        for key, values in block.items():
            if not _condition_holds(operator, key, _listify(values), request):
                return False
    return True


# ------------------------------------------------------------------ statements and policies


def statement_applies(statement: Statement, request: Request) -> bool:
    """Action, resource and conditions of the statement all match the request (a statement with
    a variable the request cannot fill does not apply)."""
    try:
        return _statement_applies(statement, request)
    except _Unresolved:
        return False


def _statement_applies(statement: Statement, request: Request) -> bool:
    if "Action" in statement:
        if not _any_action_matches(tuple(_listify(statement["Action"])), request.action):
            return False
    elif "NotAction" in statement:
        if _any_action_matches(tuple(_listify(statement["NotAction"])), request.action):
            return False
    else:
        raise UnsupportedPolicy(f"statement without Action/NotAction: {statement}")
    if "Resource" in statement:
        if not any(arn_match(substitute(p, request), request.resource) for p in _listify(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(arn_match(substitute(p, request), request.resource) for p in _listify(statement["NotResource"])):
            return False
    else:
        raise UnsupportedPolicy(f"identity-policy statement without Resource/NotResource: {statement}")
    return conditions_hold(statement.get("Condition"), request)


def _decide(statements: Iterable[Statement], request: Request) -> tuple[str, str | None]:
    """("deny" | "allow" | "implicit", the Sid that decided)."""
    allowed_by: str | None = None
    allowed = False
    for statement in statements:
        if not statement_applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return "deny", statement.get("Sid")
        if statement.get("Effect") == "Allow" and not allowed:
            allowed, allowed_by = True, statement.get("Sid") or "(no Sid)"
    return ("allow" if allowed else "implicit"), allowed_by


def evaluate(
    request: Request,
    identity_statements: Iterable[Statement],
    boundary_statements: Iterable[Statement] | None = None,
) -> Decision:
    """Same-account request by a role: identity policies, intersected with its boundary if any."""
    identity = list(identity_statements)
    boundary = None if boundary_statements is None else list(boundary_statements)
    outcome, sid = _decide(identity, request)
    if outcome == "deny":
        return Decision(False, f"explicitly denied by {sid}")
    if boundary is not None:
        b_outcome, b_sid = _decide(boundary, request)
        if b_outcome == "deny":
            return Decision(False, f"explicitly denied by the boundary's {b_sid}")
        if b_outcome != "allow":
            return Decision(False, "not allowed by the permissions boundary")
    if outcome != "allow":
        return Decision(False, "no identity-policy statement allows it")
    return Decision(True, "allowed", sid)


def _principals(statement: Statement) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"key-policy statement without a Principal: {statement}")
    return [str(p) for p in _listify(principal.get("AWS"))]


def _key_policy_grants(statements: Iterable[Statement], request: Request, principal_arn: str, account: str) -> str:
    """ "deny", "principal" (the key policy allows the caller itself), "account" (it allows the
    account, which lets IAM policies decide) or "none"."""
    root = f"arn:{principal_arn.split(':')[1]}:iam::{account}:root"
    grant = "none"
    for statement in statements:
        if "NotPrincipal" in statement:
            raise UnsupportedPolicy(f"NotPrincipal is not modelled: {statement}")
        principals = _principals(statement)
        names_caller = "*" in principals or principal_arn in principals
        names_account = root in principals or account in principals
        if not (names_caller or names_account) or not statement_applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        if names_caller:
            grant = "principal"
        elif grant == "none":
            grant = "account"
    return grant


def evaluate_with_key_policy(
    request: Request,
    principal_arn: str,
    account: str,
    key_policy: Iterable[Statement],
    identity_statements: Iterable[Statement],
    boundary_statements: Iterable[Statement] | None = None,
) -> Decision:
    """A same-account request on a KMS key: its key policy must allow the caller, either by name
    (then only a boundary can still refuse it) or by allowing the account (then the caller's
    IAM policies and boundary decide, as `evaluate`)."""
    grant = _key_policy_grants(key_policy, request, principal_arn, account)
    if grant == "deny":
        return Decision(False, "explicitly denied by the key policy")
    if grant == "none":
        return Decision(False, "the key policy allows neither the caller nor its account")
    identity = evaluate(request, identity_statements, boundary_statements)
    if identity.allowed or grant == "account" or identity.reason.startswith("explicitly denied"):
        return identity
    if boundary_statements is not None and _decide(list(boundary_statements), request)[0] != "allow":
        return Decision(False, "the key policy allows the caller, its permissions boundary does not")
    return Decision(True, "allowed by the key policy", "key policy")


def statements_of(document: Mapping[str, Any]) -> list[Statement]:
    return [dict(s) for s in _listify(document.get("Statement"))]
