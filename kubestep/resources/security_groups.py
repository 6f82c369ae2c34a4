"""The cluster's three security groups and their rules (listed in docs/architecture.md).

- `lb`: the internal NLB. The NLB's security group is given at creation; AWS cannot add one later.
- `controlplane`: the API server (6443) from the NLB, etcd peers and kubelet among replicas.
- `nodes`: kubelet from the control plane, all traffic among nodes (CNI), the NodePort range."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from kubestep import naming
from kubestep.aws.errors import (
    DEPENDENCY_VIOLATION,
    PERMISSION_DUPLICATE,
    PERMISSION_NOT_FOUND,
    Kind,
    is_already_exists,
    is_error,
    is_not_found,
)
from kubestep.flow.steps import Poll, step
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING, DeleteStep, Found, ResourceKind, Scope
from kubestep.store import Resource

PURPOSES = ("lb", "controlplane", "nodes")
LOGICAL = {"lb": Resource.SG_LB, "controlplane": Resource.SG_CONTROL_PLANE, "nodes": Resource.SG_NODES}
DESCRIPTIONS = {
    "lb": "kubestep: internal NLB in front of the Kubernetes API",
    "controlplane": "kubestep: Kubernetes control plane (API server, etcd)",
    "nodes": "kubestep: Kubernetes worker nodes",
}
# Calico in VXLAN mode (kubestep.bootstrap): its overlay between every node, control plane
# included (https://docs.tigera.io/calico/latest/getting-started/kubernetes/requirements).
VXLAN_PORT = 4789


def _rule(protocol: str, low: int, high: int, *, group: str | None = None, cidr: str | None = None, why: str) -> dict:
    permission: dict = {"IpProtocol": protocol, "FromPort": low, "ToPort": high}
    if group:
        permission["UserIdGroupPairs"] = [{"GroupId": group, "Description": why}]
    if cidr:
        permission["IpRanges"] = [{"CidrIp": cidr, "Description": why}]
    return permission


def rules(groups: dict[str, str], vpc_cidr: str, node_ports: str) -> dict[str, list[dict]]:
    lb, cp, nodes = groups["lb"], groups["controlplane"], groups["nodes"]
    low, high = (int(p) for p in node_ports.split("-"))
    return {
        "lb": [_rule("tcp", 443, 443, cidr=vpc_cidr, why="Kubernetes API from the VPC")],
        "controlplane": [
            # Client IP preservation is off, so API traffic and health checks come from the NLB.
            _rule("tcp", 6443, 6443, group=lb, why="API server from the NLB"),
            # In-cluster clients (kubernetes.default) reach the API server on its own address.
            _rule("tcp", 6443, 6443, group=nodes, why="API server from the nodes"),
            _rule("tcp", 6443, 6443, group=cp, why="API server among replicas"),
            _rule("tcp", 2379, 2380, group=cp, why="etcd client and peer traffic among replicas"),
            _rule("tcp", 10250, 10250, group=cp, why="kubelet among replicas"),
            _rule("udp", VXLAN_PORT, VXLAN_PORT, group=cp, why="Calico VXLAN among replicas"),
            _rule("udp", VXLAN_PORT, VXLAN_PORT, group=nodes, why="Calico VXLAN from nodes"),
        ],
        "nodes": [
            _rule("tcp", 10250, 10250, group=cp, why="kubelet from the control plane"),
            _rule("-1", -1, -1, group=nodes, why="all traffic among nodes (CNI, pods)"),
            _rule("udp", VXLAN_PORT, VXLAN_PORT, group=cp, why="Calico VXLAN from the control plane"),
            _rule("tcp", low, high, cidr=vpc_cidr, why="NodePort services from the VPC"),
        ],
    }


def rule_keys(permission: dict) -> list[tuple]:
    """(protocol, from, to, source) for each source of a permission, as EC2 describes it."""
    head = (str(permission.get("IpProtocol")), permission.get("FromPort", -1), permission.get("ToPort", -1))
    sources = [p["GroupId"] for p in permission.get("UserIdGroupPairs", [])]
    sources += [r["CidrIp"] for r in permission.get("IpRanges", [])]
    return [(*head, source) for source in sources]


def _find(ctx: ClusterContext, purpose: str) -> str | None:
    groups = ctx.ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [ctx.vpc_id]},
            {"Name": "group-name", "Values": [naming.security_group(ctx.uid, purpose)]},
        ]
    )["SecurityGroups"]
    return groups[0]["GroupId"] if groups else None


@step(creates=True)
def ensure_security_groups(ctx: ClusterContext) -> dict:
    """The cluster's three security groups and their rules."""
    groups: dict[str, str] = {}
    for purpose in PURPOSES:
        recorded = ctx.resource_id(LOGICAL[purpose])
        # Looked up by name even when recorded: a group deleted by hand is made again (repair).
        group_id = _find(ctx, purpose)
        if not group_id:
            try:
                group_id = ctx.ec2.create_security_group(
                    GroupName=naming.security_group(ctx.uid, purpose),
                    Description=DESCRIPTIONS[purpose],
                    VpcId=ctx.vpc_id,
                    TagSpecifications=naming.tag_specifications(
                        "security-group",
                        ctx.tags(Name=naming.security_group(ctx.uid, purpose), **{naming.TAG_ROLE: f"sg-{purpose}"}),
                    ),
                )["GroupId"]
            except Exception as exc:
                # Group names are unique per VPC: a concurrent or earlier attempt won.
                if not is_already_exists(exc, Kind.SECURITY_GROUP):
                    raise
                group_id = _find(ctx, purpose)
                if not group_id:
                    ctx.pending(f"security group {purpose} exists but is not visible yet")
        if recorded != group_id:
            ctx.record_resource(LOGICAL[purpose], group_id)
        groups[purpose] = group_id
    node_ports = ctx.spec.spec.networking.node_port_range
    # One describe call instead of an authorize per rule on every re-run.
    present = {
        g["GroupId"]: {key for p in g.get("IpPermissions", []) for key in rule_keys(p)}
        for g in ctx.ec2.describe_security_groups(GroupIds=list(groups.values()))["SecurityGroups"]
    }
    for purpose, permissions in rules(groups, ctx.vpc_cidr, node_ports).items():
        for permission in permissions:
            if set(rule_keys(permission)) <= present.get(groups[purpose], set()):
                continue
            try:
                ctx.ec2.authorize_security_group_ingress(GroupId=groups[purpose], IpPermissions=[permission])
            except Exception as exc:
                if not is_error(exc, PERMISSION_DUPLICATE):
                    raise
    return {"securityGroups": groups}


@step(poll=Poll(deadline=timedelta(minutes=20), interval=10))
def delete_security_groups(ctx: ClusterContext, scope: str) -> dict:
    """Revoke the rules first: groups that reference each other cannot be deleted otherwise."""
    groups = ctx.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [ctx.vpc_id]}, *ctx.ec2_filters(scope)]
    )["SecurityGroups"]
    for group in groups:
        if group.get("IpPermissions"):
            try:
                ctx.ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
            except Exception as exc:
                if not (is_error(exc, PERMISSION_NOT_FOUND) or is_not_found(exc, Kind.SECURITY_GROUP)):
                    raise
    deleted = []
    for group in groups:
        try:
            ctx.ec2.delete_security_group(GroupId=group["GroupId"])
            deleted.append(group["GroupId"])
        except Exception as exc:
            if is_not_found(exc, Kind.SECURITY_GROUP):
                continue
            if is_error(exc, DEPENDENCY_VIOLATION):
                ctx.pending(f"security group {group['GroupId']} is still in use (network interfaces linger)")
            raise
    return {"deleted": deleted}


# ---------------------------------------------------------------- the kind


def find_security_groups(scope: Scope, uid: str | None) -> Iterator[Found]:
    """Security groups give no creation time: the sweep dates them by when it first saw them."""
    for g in scope.clients("ec2").describe_security_groups(Filters=scope.ec2_filters(uid))["SecurityGroups"]:
        found = scope.found(uid, g["GroupId"], naming.tags_dict(g.get("Tags")), name=g["GroupName"])
        if found:
            yield found


def security_group_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """The three groups, each with every rule kubestep gave it."""
    drift: dict[str, str] = {}
    names = {naming.security_group(ctx.uid, p): p for p in PURPOSES}
    groups = ctx.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [ctx.vpc_id]}, {"Name": "group-name", "Values": list(names)}]
    )["SecurityGroups"]
    by_purpose = {names[g["GroupName"]]: g for g in groups}
    for purpose in PURPOSES:
        if purpose not in by_purpose:
            drift[LOGICAL[purpose].value] = MISSING
    if len(by_purpose) < len(PURPOSES):
        return drift  # the rules name the missing group: the repair makes both
    ids = {purpose: g["GroupId"] for purpose, g in by_purpose.items()}
    for purpose, permissions in rules(ids, ctx.vpc_cidr, ctx.spec.spec.networking.node_port_range).items():
        present = {key for p in by_purpose[purpose].get("IpPermissions", []) for key in rule_keys(p)}
        lost = [key for permission in permissions for key in rule_keys(permission) if key not in present]
        if lost:
            described = ", ".join(f"{proto} {low}-{high} from {source}" for proto, low, high, source in lost)
            drift[LOGICAL[purpose].value] = f"rules missing: {described}"
    return drift


KIND = ResourceKind(
    "securityGroups",
    label="SecurityGroup",
    find=find_security_groups,
    ensure=("EnsureSecurityGroups",),
    delete=(DeleteStep(delete_security_groups),),
    drift=security_group_drift,
)
