"""The resource-level IAM check: every authorization the recorded calls needed (tests/iam/requests)
evaluated against the synthesized policies of the calling function's role (tests/iam/evaluator)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubestep_local.recorder import CallRecord

from .evaluator import evaluate
from .requests import Authorization, Ledger, attempts, authorizations, delegated
from .template import RolePolicies


@dataclass(frozen=True)
class Finding:
    function: str
    authorization: Authorization
    reason: str

    def __str__(self) -> str:
        context = self.authorization.request.context
        shown = {k: v for k, v in context.items() if not k.startswith(("aws:RequestTag/", "aws:ResourceTag/"))}
        tags = sorted(k.split("/", 1)[1] for k in context if k.startswith(("aws:RequestTag/", "aws:ResourceTag/")))
        extra = f" context={shown}" if shown else ""
        extra += f" tags={tags}" if tags else ""
        return f"{self.function}: {self.authorization.describe()}: {self.reason}{extra}"


@dataclass
class CheckResult:
    findings: list[Finding]
    checked: int  # authorizations evaluated
    by_function: dict[str, int]
    # Calls fault injection answered with an error itself (they never reached the emulator).
    injected_errors: int = 0

    def summary(self, limit: int = 40) -> str:
        lines = [str(f) for f in self.findings[:limit]]
        if len(self.findings) > limit:
            lines.append(f"... and {len(self.findings) - limit} more")
        return "\n".join(lines)


def check(
    records: Iterable[CallRecord],
    policies: Mapping[str, RolePolicies],
    ledger: Ledger,
    partition_key: str = "pk",
    roles: Mapping[str, RolePolicies] | None = None,
) -> CheckResult:
    """Evaluate every call of every function (in the order they were made), and what a service
    will do with a role a call handed it (`roles`: role name -> policies; a role not among them
    fails the check)."""
    findings: list[Finding] = []
    seen: set[tuple] = set()
    checked = 0
    by_function: dict[str, int] = {}
    records = list(records)
    # A call whose answer fault injection lost reached the emulator more than once: each attempt
    # counts; one fault injection answered with an error never reached it.
    for record in (attempt for recorded in records for attempt in attempts(recorded)):
        for role_arn, request in delegated(record):
            checked += 1
            delegate = (roles or {}).get(role_arn.rsplit("/", 1)[-1])
            if delegate is None:
                reason = f"{role_arn} is not a role of the template"
            else:
                decision = evaluate(request, delegate.statements, delegate.boundary)
                if decision.allowed:
                    continue
                reason = f"as {role_arn}: {decision.reason}"
            findings.append(Finding(record.function_name, Authorization(request, record, record.operation), reason))
        role = policies.get(record.function_name)
        for authorization in authorizations(ledger, record, partition_key):
            checked += 1
            by_function[record.function_name] = by_function.get(record.function_name, 0) + 1
            if role is None:
                reason = "the function has no role in the template"
            elif authorization.unresolved:
                reason = f"resource not derived: {authorization.unresolved}"
            else:
                decision = evaluate(authorization.request, role.statements, role.boundary)
                if decision.allowed:
                    continue
                reason = decision.reason
            request = authorization.request
            key = (record.function_name, request.action, request.resource, reason, tuple(sorted(request.context)))
            if key not in seen:
                seen.add(key)
                findings.append(Finding(record.function_name, authorization, reason))
    return CheckResult(findings, checked, by_function, sum(r.error_injected for r in records))
