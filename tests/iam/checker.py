"""The resource-level IAM check: every authorization the recorded calls needed (tests/iam/requests)
evaluated against the policies of the principal that made the call (tests/iam/evaluator).

Principals: each Lambda function (its execution role in the synthesized template); each instance
role the functions made at run time (`CallRecord.role_name`: the inline policy the recorded
`PutRolePolicy` put, within the boundary its `CreateRole` named); and the roles a call hands a
service (the Scheduler role a schedule runs as, the Auto Scaling service-linked role launching
encrypted volumes). A request on a KMS key whose key policy the ledger holds is decided by the
key policy too (KMS: nothing uses a key its policy does not allow)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from kubestep_local.recorder import CallRecord

from .evaluator import Decision, Request, evaluate, evaluate_with_key_policy
from .requests import Authorization, Ledger, attempts, authorizations, delegated
from .template import RolePolicies


@dataclass(frozen=True)
class Finding:
    function: str
    authorization: Authorization
    reason: str

    def __str__(self) -> str:
        context = self.authorization.request.context
        shown = {
            k: v
            for k, v in context.items()
            if not k.startswith(("aws:RequestTag/", "aws:ResourceTag/", "aws:PrincipalArn"))
        }
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
    # (action, implied action) of every authorization a call implied.
    implied: set[tuple[str, str]] = field(default_factory=set)

    def summary(self, limit: int = 40) -> str:
        lines = [str(f) for f in self.findings[:limit]]
        if len(self.findings) > limit:
            lines.append(f"... and {len(self.findings) - limit} more")
        return "\n".join(lines)


def _principal(record: CallRecord, ledger: Ledger) -> tuple[str, dict[str, str]]:
    """(the caller's role ARN, the request-context keys the caller itself brings)."""
    if record.role_name:
        arn = ledger.role_arn(record.role_name)
        context = {"aws:PrincipalArn": arn}
        if record.source_instance_arn:
            context["ec2:SourceInstanceARN"] = record.source_instance_arn
        return arn, context
    arn = f"arn:{ledger.partition}:iam::{ledger.account}:role/{record.function_name}"
    return arn, {"aws:PrincipalArn": arn}


def instance_role_policies(ledger: Ledger, role_name: str) -> RolePolicies | str:
    """The policies of a role the functions made at run time, or why the check cannot know them."""
    statements = ledger.role_policies.get(role_name)
    if statements is None:
        return f"no policy was put on {role_name}"
    boundary_arn = ledger.role_boundaries.get(role_name)
    if boundary_arn is None:
        return RolePolicies(role_name, statements, None)
    boundary = ledger.managed_policies.get(boundary_arn)
    if boundary is None:
        return f"{role_name}'s boundary {boundary_arn} is not a managed policy of the template"
    return RolePolicies(role_name, statements, boundary)


def decide(request: Request, principal_arn: str, role: RolePolicies | None, ledger: Ledger) -> Decision:
    """The request by `role` (None: a service's role that holds no identity policy for it)."""
    identity = role.statements if role else []
    boundary = role.boundary if role else None
    key_policy = ledger.key_policies.get(request.resource) if request.action.startswith("kms:") else None
    if key_policy is not None:
        return evaluate_with_key_policy(request, principal_arn, ledger.account, key_policy, identity, boundary)
    if role is None:
        return Decision(False, "no policy of the principal allows it")
    return evaluate(request, identity, boundary)


def check(
    records: Iterable[CallRecord],
    policies: Mapping[str, RolePolicies],
    ledger: Ledger,
    partition_key: str = "pk",
    roles: Mapping[str, RolePolicies] | None = None,
) -> CheckResult:
    """Evaluate every call of every principal (in the order they were made), and what a service
    will do with a role a call handed it (`roles`: role name -> policies; a role neither among
    them nor given a key policy's grant fails the check)."""
    findings: list[Finding] = []
    seen: set[tuple] = set()
    checked = 0
    by_function: dict[str, int] = {}
    implied: set[tuple[str, str]] = set()
    records = list(records)
    # A call whose answer fault injection lost reached the emulator more than once: each attempt
    # counts; one fault injection answered with an error never reached it.
    for record in (attempt for recorded in records for attempt in attempts(recorded)):
        for role_arn, request in delegated(record, ledger):
            checked += 1
            delegate = (roles or {}).get(role_arn.rsplit("/", 1)[-1])
            if delegate is None and request.resource not in ledger.key_policies:
                reason = f"{role_arn} is not a role of the template"
            else:
                request = replace(request, context={"aws:PrincipalArn": role_arn, **request.context})
                decision = decide(request, role_arn, delegate, ledger)
                if decision.allowed:
                    continue
                reason = f"as {role_arn}: {decision.reason}"
            findings.append(Finding(record.function_name, Authorization(request, record, record.operation), reason))
        principal_arn, principal_context = _principal(record, ledger)
        role: RolePolicies | str | None = (
            instance_role_policies(ledger, record.role_name) if record.role_name else policies.get(record.function_name)
        )
        for authorization in authorizations(ledger, record, partition_key):
            checked += 1
            if authorization.implied_by:
                implied.add((record.action, authorization.request.action))
            by_function[record.function_name] = by_function.get(record.function_name, 0) + 1
            request = replace(authorization.request, context={**principal_context, **authorization.request.context})
            if role is None:
                reason = "the function has no role in the template"
            elif isinstance(role, str):
                reason = role
            elif authorization.unresolved:
                reason = f"resource not derived: {authorization.unresolved}"
            else:
                decision = decide(request, principal_arn, role, ledger)
                if decision.allowed:
                    continue
                reason = decision.reason
            key = (record.function_name, request.action, request.resource, reason, tuple(sorted(request.context)))
            if key not in seen:
                seen.add(key)
                findings.append(Finding(record.function_name, replace(authorization, request=request), reason))
    return CheckResult(findings, checked, by_function, sum(r.error_injected for r in records), implied)
