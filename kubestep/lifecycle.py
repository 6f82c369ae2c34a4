"""What a change to a running cluster or node pool means, decided before anything changes:
the target spec, whether instances must be replaced (a roll) or the change applies in place,
and the rules it must keep (version skew, one minor at a time, the address ranges, AWS's tag
limits). Shared by the API (answers 400 at once), the workflows' first state (the console path
has no API in front) and the CLI's `apply`/`diff`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubestep import diff, versions
from kubestep.errors import InvalidSpec
from kubestep.models import (
    AWSCluster,
    AWSManagementService,
    AWSNodePool,
    ControlPlaneChanges,
    NodePoolChanges,
    UpdateClusterRequest,
    dump,
)
from kubestep.validation import capacity_problems, node_pool_problems, parse, tag_budget_problems

# Node-pool fields whose change needs new instances (what the launch template carries).
POOL_ROLLING_FIELDS = (
    "version",
    "instanceType",
    "maxPodsPerNode",
    "rootVolume",
    "labels",
    "taints",
    "imageID",
    "keyName",
    "iamInstanceProfile",
    "securityGroupIDs",
)
POOL_FIXED_FIELDS = ("clusterName", "subnetID", "availabilityZone")
# What may change on a running cluster's spec at all; everything in controlPlane rolls.
# The rule a change that changes nothing is refused with: clients say "unchanged" on seeing it.
NOTHING_TO_CHANGE = "nothing to change"
CLUSTER_FIXED = (
    "spec.networking",
    "spec.region",
    "spec.controlPlane.availabilityZones",
    "spec.controlPlane.subnetIDs",
    "spec.controlPlane.etcd",
    "spec.controlPlane.databaseEncryption",
    "metadata",
)


@dataclass(frozen=True)
class PoolPlan:
    target: AWSNodePool
    changes: list[diff.Change]
    rolls: bool


def _merged(model: Any, changes: Any) -> dict[str, Any]:
    merged = dump(model)
    merged.update(changes.model_dump(mode="json", by_alias=True, exclude_none=True))
    return merged


def plan_node_pool_change(
    service: AWSManagementService,
    cluster: AWSCluster,
    cluster_version: str,
    pool: AWSNodePool,
    changes: NodePoolChanges,
    other_pools: list[AWSNodePool],
    prefix: str = "changes",
) -> PoolPlan:
    """The pool's target spec, or InvalidSpec naming each field and rule."""
    set_fields = changes.model_dump(by_alias=True, exclude_none=True)
    if not set_fields:
        raise InvalidSpec([(prefix, "set at least one field to change")])
    spec = parse(AWSNodePool, {**dump(pool), "spec": _merged(pool.spec, changes)}, "")
    problems = []
    # Against the version the control plane runs (during an upgrade, its spec is already the target).
    skew = versions.node_pool_skew_problem(cluster_version, spec.spec.version)
    if skew:
        problems.append((f"{prefix}.version", skew))
    moved = spec.spec.version != pool.spec.version
    found_problems = node_pool_problems(service, cluster, spec, "", new_version=moved)
    problems += [(f"{prefix}{f.removeprefix('.spec')}", r) for f, r in found_problems]
    problems += capacity_problems(service, cluster, [(prefix, spec)], existing_pools=other_pools, launching_pools=[])
    problems += tag_budget_problems(service, cluster, [(prefix, spec)])
    if problems:
        raise InvalidSpec(list(dict.fromkeys(problems)))  # the two skew checks agree when versions do
    found = diff.changes(dump(pool.spec), dump(spec.spec))
    rolls = any(change.path.split(".")[0].split("[")[0] in POOL_ROLLING_FIELDS for change in found)
    return PoolPlan(spec, found, rolls)


@dataclass(frozen=True)
class ClusterPlan:
    target: AWSCluster
    changes: list[diff.Change]
    rolls: bool  # the control plane's instances change
    node_pools: list[str]  # pools to move to the control plane's version afterwards


def plan_cluster_change(
    service: AWSManagementService,
    cluster: AWSCluster,
    pools: list[AWSNodePool],
    request: UpdateClusterRequest,
    resume: bool = False,
) -> ClusterPlan:
    """The cluster's target spec and the pools to upgrade after it, or InvalidSpec: control
    planes move one minor at a time and never down; no node pool may end up newer than the
    control plane or more than two minors behind it. New administrators (`authentication`), a
    new upgrade policy and a new backup policy change in place. `resume`: the cluster is DEGRADED
    by an update that failed after its spec was adopted (e.g. releasing the lock failed), so the same
    request, with nothing left to change, runs again to check every replica and end RUNNING."""
    cp_changes: ControlPlaneChanges = request.control_plane
    target_data = dump(cluster)
    target_data["spec"]["controlPlane"] = _merged(cluster.spec.control_plane, cp_changes)
    if request.upgrade_policy is not None:
        target_data["spec"]["upgradePolicy"] = dump(request.upgrade_policy)
    if request.backup is not None:
        target_data["spec"]["backup"] = dump(request.backup)
    if request.authentication is not None:
        target_data["spec"]["authentication"] = dump(request.authentication)
    if request.management is not None:
        target_data["spec"]["management"] = dump(request.management)
    target = parse(AWSCluster, target_data, "")
    problems: list[tuple[str, str]] = []
    if request.authentication is not None and not target.spec.authentication.aws_iam.admin_identity_arns:
        problems.append(
            (
                "authentication.awsIAM.adminIdentityARNs",
                "name at least one IAM user or role ARN: with none, nobody could use kubectl on the cluster",
            )
        )
    current_version, target_version = cluster.spec.control_plane.version, target.spec.control_plane.version
    version_problem = None
    if target_version != current_version:
        version_problem = versions.upgrade_problem(current_version, target_version)
        if version_problem:
            problems.append(("controlPlane.version", version_problem))
    names = [p.name for p in pools]
    if request.node_pools == "all":
        upgraded = names
    else:
        upgraded = list(request.node_pools or [])
        unknown = sorted(set(upgraded) - set(names))
        if unknown:
            problems.append(("nodePools", f"{unknown} are not node pools of cluster {cluster.name!r} ({names})"))
    # Node-pool skew is judged against a version the control plane may take: against a refused
    # one, every pool would be reported too, for a version that will never run.
    for pool in pools if version_problem is None else []:
        version = target_version if pool.name in upgraded else pool.spec.version
        skew = versions.node_pool_skew_problem(target_version, version)
        if skew:
            where = "nodePools" if pool.name not in upgraded else f"nodePools[{pool.name}]"
            problems.append((where, f"node pool {pool.name}: {skew}; upgrade it with the control plane (nodePools)"))
    found = diff.changes(dump(cluster.spec), dump(target.spec))
    if not found and not upgraded and not resume:
        problems.append(("controlPlane", f"{NOTHING_TO_CHANGE}: cluster {cluster.name!r} already has this spec"))
    if problems:
        raise InvalidSpec(problems)
    rolls = any(c.path.startswith("controlPlane") for c in found)
    return ClusterPlan(target, found, rolls, upgraded)


def with_stored_admins(stored: AWSCluster, wanted: AWSCluster) -> AWSCluster:
    """`wanted`, keeping the cluster's administrators when it names none: the API made the
    creator one, so applying the manifest a cluster was created from changes nothing."""
    if wanted.spec.authentication.aws_iam.admin_identity_arns:
        return wanted
    spec = wanted.spec.model_copy(update={"authentication": stored.spec.authentication})
    return wanted.model_copy(update={"spec": spec})


def cluster_manifest_changes(stored: AWSCluster, wanted: AWSCluster) -> tuple[UpdateClusterRequest | None, list[str]]:
    """What `kubestep apply` of a changed cluster manifest asks for: the UpdateCluster request,
    and the fields that cannot change in place (each a readable line)."""
    wanted = with_stored_admins(stored, wanted)
    found = diff.changes(dump(stored), dump(wanted))
    fixed = [c.line() for c in found if any(f"{c.path}".startswith(prefix) for prefix in CLUSTER_FIXED)]
    cp = {
        c.path.split(".")[2].split("[")[0]
        for c in found
        if c.path.startswith("spec.controlPlane.") and not any(c.path.startswith(p) for p in CLUSTER_FIXED)
    }
    movable = {"version", "instanceType", "rootVolume", "securityGroupIDs", "iamInstanceProfile", "imageID", "keyName"}
    fixed += [f"~ spec.controlPlane.{field}: cannot change in place" for field in sorted(cp - movable - {"tags"})]
    changes = {field: dump(wanted.spec.control_plane).get(field) for field in sorted(cp & movable)}
    policy = wanted.spec.upgrade_policy if stored.spec.upgrade_policy != wanted.spec.upgrade_policy else None
    admins = wanted.spec.authentication if stored.spec.authentication != wanted.spec.authentication else None
    management = wanted.spec.management if stored.spec.management != wanted.spec.management else None
    backup = wanted.spec.backup if stored.spec.backup != wanted.spec.backup else None
    if not changes and policy is None and admins is None and management is None and backup is None:
        return None, fixed
    request = UpdateClusterRequest.model_validate(
        {
            "clusterName": stored.name,
            "controlPlane": {k: v for k, v in changes.items() if v is not None},
            **({"upgradePolicy": dump(policy)} if policy is not None else {}),
            **({"authentication": dump(admins)} if admins is not None else {}),
            **({"management": dump(management)} if management is not None else {}),
            **({"backup": dump(backup)} if backup is not None else {}),
        }
    )
    return request, fixed


def node_pool_manifest_changes(stored: AWSNodePool, wanted: AWSNodePool) -> tuple[NodePoolChanges | None, list[str]]:
    """What `kubestep apply` of a changed node-pool manifest asks for, and what cannot change."""
    old, new = dump(stored.spec), dump(wanted.spec)
    fixed = [
        f"~ spec.{f}: cannot change in place (delete and re-create the pool)"
        for f in POOL_FIXED_FIELDS
        if old.get(f) != new.get(f)
    ]
    changed = {k: new.get(k) for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in POOL_FIXED_FIELDS}
    if not changed:
        return None, fixed
    return NodePoolChanges.model_validate({k: v for k, v in changed.items() if v is not None}), fixed
