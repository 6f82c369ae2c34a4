"""Each cluster's own IAM roles and instance profiles, `gke-<uid>-controlplane` and
`gke-<uid>-node`, under the management service's path and permissions boundary, with inline
policies naming only the cluster's own secrets, volumes, report items and DNS records
(kubestep.iam_policies). IAM is eventually consistent: a new instance profile is refused by
EC2 for a few seconds, which the launch template steps wait out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import unquote

from kubestep import iam_policies, naming
from kubestep.aws import client
from kubestep.aws.errors import IAM_LIMIT_EXCEEDED, Kind, is_already_exists, is_error, is_not_found
from kubestep.flow.steps import Poll, step
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING, DeleteStep, Found, ResourceKind, Scope, exists
from kubestep.store import Resource

POLICY_NAME = "kubestep-cluster"
ROLES = {
    naming.ROLE_CONTROL_PLANE: (Resource.CONTROL_PLANE_ROLE, Resource.CONTROL_PLANE_PROFILE),
    naming.ROLE_NODE: (Resource.NODE_ROLE, Resource.NODE_PROFILE),
}
PROFILE_DETACHED = Poll(deadline=timedelta(minutes=5))


def _iam(ctx: ClusterContext):
    return client("iam", ctx.settings.region)


def facts(ctx: ClusterContext, initialized: bool | None = None) -> iam_policies.ClusterFacts:
    """What the instance roles' policies are made of; ``initialized``: whether the cluster is
    initialised, when the caller has just read it (None: read it here)."""
    settings = ctx.settings
    cp = ctx.spec.spec.control_plane
    volume_keys = tuple(k for k in (cp.root_volume.kms_key_arn, cp.etcd.main_volume.kms_key_arn) if k)
    pool_keys = (p.spec.spec.root_volume.kms_key_arn for p in ctx.store.node_pools.list(ctx.name))
    volume_keys += tuple(k for k in pool_keys if k)
    if settings.service.spec.kms_key_arn:
        volume_keys += (settings.service.spec.kms_key_arn,)
    cp_secret = ctx.resource_id(Resource.CONTROL_PLANE_SECRET)
    node_secret = ctx.resource_id(Resource.NODE_SECRET)
    assert cp_secret and node_secret, "the PKI step records the secrets first"
    network = ctx.network
    assert network.hosted_zone_id and network.dns_domain, "ProvisionNetwork records the hosted zone"
    return iam_policies.ClusterFacts(
        account=settings.account,
        service=settings.service_name,
        uid=ctx.uid,
        table_arn=settings.table_arn,
        service_kms_key_arn=settings.kms_key_arn or None,
        control_plane_secret_arn=cp_secret,
        node_secret_arn=node_secret,
        hosted_zone_id=network.hosted_zone_id,
        dns_domain=network.dns_domain,
        volume_kms_key_arns=volume_keys,
        secrets_kms_key_arn=cp.database_encryption.kms_key_arn,
        node_termination_queue_arn=ctx.resource_id(Resource.TERMINATION_QUEUE),
        initialized=ctx.store.reports.initialized(ctx.uid) if initialized is None else initialized,
        backup_bucket=settings.backup_bucket or None,
    )


def _ensure_role(ctx: ClusterContext, role: str, document: dict) -> tuple[str, str]:
    iam = _iam(ctx)
    name = naming.instance_role(ctx.uid, role)
    path = ctx.settings.instance_role_path
    tags = [{"Key": k, "Value": v} for k, v in ctx.tags(Name=name, **{naming.TAG_ROLE: role}).items()]
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except Exception as exc:
        if not is_not_found(exc, Kind.IAM_ENTITY):
            raise
        kwargs = (
            {"PermissionsBoundary": ctx.settings.instance_role_boundary_arn}
            if (ctx.settings.instance_role_boundary_arn)
            else {}
        )
        try:
            arn = iam.create_role(
                RoleName=name,
                Path=path,
                AssumeRolePolicyDocument=json.dumps(iam_policies.trust_policy()),
                Description=f"kubestep cluster {ctx.name} ({ctx.uid}): {role} instances",
                MaxSessionDuration=3600,
                Tags=tags,
                **kwargs,
            )["Role"]["Arn"]
        except Exception as exc2:
            if not is_already_exists(exc2, Kind.IAM_ENTITY):
                raise
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    # A cluster update may change keys: the policy is put whenever it differs.
    _put_policy(iam, name, document)
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except Exception as exc:
        if not is_not_found(exc, Kind.IAM_ENTITY):
            raise
        try:
            profile = iam.create_instance_profile(InstanceProfileName=name, Path=path, Tags=tags)["InstanceProfile"]
        except Exception as exc2:
            if not is_already_exists(exc2, Kind.IAM_ENTITY):
                raise
            profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    if not any(r["RoleName"] == name for r in profile.get("Roles", [])):
        try:
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        except Exception as exc:
            # A profile holds one role: an earlier (or retried) call added it already.
            if not is_error(exc, IAM_LIMIT_EXCEEDED):
                raise
            roles = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"].get("Roles", [])
            if not any(r["RoleName"] == name for r in roles):
                raise
    return arn, profile["Arn"]


@step(creates=True)
def ensure_instance_roles(ctx: ClusterContext) -> dict:
    """The cluster's own control-plane and node roles and instance profiles."""
    f = facts(ctx)
    out = {}
    for role, document in (
        (naming.ROLE_CONTROL_PLANE, iam_policies.control_plane_policy(f)),
        (naming.ROLE_NODE, iam_policies.node_policy(f)),
    ):
        role_arn, profile_arn = _ensure_role(ctx, role, document)
        role_resource, profile_resource = ROLES[role]
        made = {role_resource: role_arn, profile_resource: profile_arn}
        ctx.record_resources({logical: arn for logical, arn in made.items() if ctx.resource_id(logical) != arn})
        out[role] = profile_arn
    return {"instanceProfiles": out}


def _put_policy(iam: Any, role_name: str, document: dict) -> None:
    """The role's inline policy, put only when it differs from `document` (a re-run keeps it)."""
    try:
        current = iam.get_role_policy(RoleName=role_name, PolicyName=POLICY_NAME)["PolicyDocument"]
    except Exception as exc:
        if not is_not_found(exc, Kind.IAM_ENTITY):
            raise
        current = None
    if isinstance(current, str):  # URL-encoded JSON where botocore does not decode it
        current = json.loads(unquote(current))
    if current != json.loads(json.dumps(document)):
        iam.put_role_policy(RoleName=role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document))


def seal_init_claim(ctx: ClusterContext) -> None:
    """Once the cluster is initialised, its control-plane role may only read the init claim: put
    the role's policy again without the claim's writes (idempotent; IAM applies it within
    seconds)."""
    if not ctx.store.reports.initialized(ctx.uid):
        return
    document = iam_policies.control_plane_policy(facts(ctx, initialized=True))
    name = naming.instance_role(ctx.uid, naming.ROLE_CONTROL_PLANE)
    _put_policy(_iam(ctx), name, document)


def profile_arn(ctx: ClusterContext, role: str) -> str:
    arn = ctx.resource_id(ROLES[role][1])
    assert arn, "the instance roles step records the profiles first"
    return arn


@step(poll=PROFILE_DETACHED)
def delete_instance_roles(ctx: ClusterContext, scope: str) -> dict:
    """Remove the roles from their profiles, delete profiles, policies and roles (after every
    instance using them is gone)."""
    iam = _iam(ctx)
    deleted = []
    for role in ROLES:
        name = naming.instance_role(ctx.uid, role)
        found = _unless_gone(iam.get_role, RoleName=name)
        if found is None:
            if scope == "cluster":  # the name carries the uid: a profile whose role went is the cluster's
                _delete_profile(iam, name)
            continue
        tags = naming.tags_dict(iam.list_role_tags(RoleName=name).get("Tags"))
        if not ctx.owned(tags, scope):
            continue
        # Each call on its own: "not found" means an earlier (or retried) call did it, and the
        # next ones must still run (a profile left behind would outlive the cluster).
        _delete_profile(iam, name)
        for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
            _unless_gone(iam.delete_role_policy, RoleName=name, PolicyName=policy)
        for policy in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
            _unless_gone(iam.detach_role_policy, RoleName=name, PolicyArn=policy["PolicyArn"])
        _unless_gone(iam.delete_role, RoleName=found["Role"]["RoleName"])
        deleted.append(name)
    return {"deleted": deleted}


def _delete_profile(iam: Any, name: str) -> None:
    profile = _unless_gone(iam.get_instance_profile, InstanceProfileName=name)
    if profile is None:
        return
    for attached in profile["InstanceProfile"].get("Roles", []):
        _unless_gone(iam.remove_role_from_instance_profile, InstanceProfileName=name, RoleName=attached["RoleName"])
    _unless_gone(iam.delete_instance_profile, InstanceProfileName=name)


def _unless_gone(call: Callable[..., Any], **kwargs: Any) -> Any:
    """``call(**kwargs)``'s answer, or None when IAM says the entity is not there (done already)."""
    try:
        return call(**kwargs)
    except Exception as exc:
        if is_not_found(exc, Kind.IAM_ENTITY):
            return None
        raise


# ---------------------------------------------------------------- the kinds: roles, instance profiles


@dataclass(frozen=True)
class _IamCalls:
    get: str  # get_role: its answer carries the tags (the list calls' do not)
    item: str  # Role
    list_all: str  # list_roles
    items: str  # Roles
    name: str  # RoleName


ROLE_CALLS = _IamCalls("get_role", "Role", "list_roles", "Roles", "RoleName")
PROFILE_CALLS = _IamCalls(
    "get_instance_profile", "InstanceProfile", "list_instance_profiles", "InstanceProfiles", "InstanceProfileName"
)


def _named(scope: Scope, uid: str | None, calls: _IamCalls) -> Iterator[Found]:
    """IAM entities this service made for clusters: one incarnation's by their names
    (`gke-<uid>-<role>`), every cluster's directly on the service's role path (the prefix also
    lists the service's own Scheduler role, under `scheduler/`, which is no cluster's)."""
    iam = scope.clients("iam")
    if uid:
        names = [naming.instance_role(uid, role) for role in ROLES]
    else:
        path = scope.role_path or "/"
        pages = iam.get_paginator(calls.list_all).paginate(PathPrefix=path)
        names = [e[calls.name] for page in pages for e in page[calls.items] if e.get("Path") == path]
    for name in names:
        answer = _unless_gone(getattr(iam, calls.get), **{calls.name: name})
        if answer is None:
            continue
        entity = answer[calls.item]
        tags = naming.tags_dict(entity.get("Tags"))
        found = scope.found(uid, name, tags, entity.get("CreateDate"), name=name, arn=entity["Arn"])
        if found:
            yield found


def find_roles(scope: Scope, uid: str | None) -> Iterator[Found]:
    return _named(scope, uid, ROLE_CALLS)


def find_profiles(scope: Scope, uid: str | None) -> Iterator[Found]:
    return _named(scope, uid, PROFILE_CALLS)


def _missing(ctx: ClusterContext, calls: _IamCalls, logical: int) -> dict[str, str]:
    """Each role's entity (`logical`: 0 the role, 1 its profile, as ROLES names them) that IAM
    does not know."""
    iam, drift = _iam(ctx), {}
    for role, names in ROLES.items():
        get = partial(getattr(iam, calls.get), **{calls.name: naming.instance_role(ctx.uid, role)})
        if not exists(get, Kind.IAM_ENTITY):
            drift[names[logical].value] = MISSING
    return drift


def role_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    return _missing(ctx, ROLE_CALLS, 0)


def profile_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    return _missing(ctx, PROFILE_CALLS, 1)


# One step deletes both: each profile (its role taken out of it), then the role.
PROFILES = ResourceKind(
    "instanceProfiles",
    label="InstanceProfile",
    find=find_profiles,
    ensure=("EnsureInstanceRoles",),
    delete=(DeleteStep(delete_instance_roles),),
    needs=("instanceRoles",),
    drift=profile_drift,
)
ROLES_KIND = ResourceKind(
    "instanceRoles",
    label="IAM role",
    find=find_roles,
    ensure=("EnsureInstanceRoles",),
    delete=(DeleteStep(delete_instance_roles),),
    drift=role_drift,
)
