"""Who administers a cluster: the IAM identities aws-iam-authenticator maps to the cluster-admin
group, as the manifest names them (`authentication.awsIAM.adminIdentityARNs`), the default a
create through the API takes (its caller, as EKS makes a cluster's creator its administrator),
and the mapping the control plane serves.

How the authenticator matches a caller (kubernetes-sigs/aws-iam-authenticator, `pkg/arn/arn.go`
`Canonicalize` and `pkg/mapper/file/mapper.go`): STS answers an assumed-role session as
`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, which it turns into `arn:aws:iam::ACCOUNT:role/ROLE`
— without the role's path, which a session ARN does not carry — and compares that, ignoring
case, with each mapped role ARN. A role mapped with its path would never match, so a role is
mapped by its name alone (role names are unique in an account whatever their path). IAM users
keep their ARN, path included (GetCallerIdentity returns it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The partitions aws-iam-authenticator recognises (`pkg/endpoints/partitions.go`).
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc")
_PARTITION = "|".join(re.escape(p) for p in PARTITIONS)
# IAM names and path segments: letters, digits and +=,.@_- ("IAM identifiers", IAM User Guide).
_NAME = r"[A-Za-z0-9+=,.@_-]{1,128}"
_PATH = r"(?:[A-Za-z0-9+=,.@_-]+/)*"
IDENTITY = re.compile(rf"^arn:({_PARTITION}):iam::(\d{{12}}):(user|role)/({_PATH})({_NAME})$")
ASSUMED_ROLE = re.compile(rf"^arn:({_PARTITION}):sts::(\d{{12}}):assumed-role/({_NAME})/([^/]{{1,128}})$")
MAX_ADMINS = 50


class NotAnAdminIdentity(ValueError):
    """The ARN is not one kubestep can map as a cluster administrator (the message says why)."""


@dataclass(frozen=True)
class Mapping:
    """What the control plane's authenticator maps to the cluster-admin group."""

    role_arns: tuple[str, ...]  # arn:<partition>:iam::<account>:role/<name>, no path
    user_arns: tuple[str, ...]


def identity_problem(arn: str) -> str | None:
    """Why `arn` cannot name a cluster administrator, or None."""
    if IDENTITY.match(arn):
        return None
    session = ASSUMED_ROLE.match(arn)
    if session:
        partition, account, role, _ = session.groups()
        return (
            f"{arn!r} is an assumed-role session, which ends with the session; name the role: "
            f"arn:{partition}:iam::{account}:role/{role}"
        )
    return (
        f"{arn!r} is not an IAM user or role ARN (arn:aws:iam::<12-digit account>:user/<name> or "
        ":role/<name>, optionally with a path)"
    )


def check_identity(arn: str) -> str:
    """`arn` when it can name a cluster administrator; NotAnAdminIdentity otherwise."""
    problem = identity_problem(arn)
    if problem:
        raise NotAnAdminIdentity(problem)
    return arn


def caller_admin(caller_arn: str | None) -> str:
    """The admin identity for the principal that called the API (API Gateway's IAM-authorised
    `requestContext.identity.userArn`): an assumed-role session is its role, an IAM user itself.
    NotAnAdminIdentity for a caller the authenticator cannot map as an administrator here (the
    account's root user, a federated user, or no caller at all)."""
    if not caller_arn:
        raise NotAnAdminIdentity("the request carries no caller identity to default to")
    session = ASSUMED_ROLE.match(caller_arn)
    if session:
        partition, account, role, _ = session.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    if IDENTITY.match(caller_arn):
        return caller_arn
    raise NotAnAdminIdentity(
        f"the caller {caller_arn!r} is neither an IAM user nor a role session, so kubestep does not make it "
        "the cluster's administrator"
    )


def mapping(arns: list[str] | tuple[str, ...]) -> Mapping:
    """The authenticator's mapping of `arns` (each already checked): roles by name, users as
    they are; duplicates once, in order."""
    roles: list[str] = []
    users: list[str] = []
    for arn in arns:
        match = IDENTITY.match(arn)
        if match is None:
            continue  # a stored record written before the rule: the replicas cannot map it either
        partition, account, kind, _path, name = match.groups()
        if kind == "role":
            role = f"arn:{partition}:iam::{account}:role/{name}"
            if role.lower() not in {r.lower() for r in roles}:
                roles.append(role)
        elif arn.lower() not in {u.lower() for u in users}:
            users.append(arn)
    return Mapping(tuple(roles), tuple(users))


def matches(admins: list[str] | tuple[str, ...], caller_arn: str) -> bool:
    """Would the authenticator map `caller_arn` (as STS names it) to the cluster-admin group?"""
    found = mapping(admins)
    session = ASSUMED_ROLE.match(caller_arn)
    if session:
        partition, account, role, _ = session.groups()
        canonical = f"arn:{partition}:iam::{account}:role/{role}".lower()
        return canonical in {r.lower() for r in found.role_arns}
    return caller_arn.lower() in {u.lower() for u in found.user_arns}
