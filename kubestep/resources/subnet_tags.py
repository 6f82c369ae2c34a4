"""`kubernetes.io/cluster/<uid>=shared` on the subnets of the cluster's Service load balancers
while the cluster lives: the AWS cloud controller manager picks subnets for a Service of type
LoadBalancer among those carrying the cluster's tag (and `kubernetes.io/role/elb` or
`internal-elb`, set on the dedicated VPC's subnets when they are made). Those are
`spec.networking.serviceLoadBalancerSubnetIDs` when the cluster names them, else the service's
subnets."""

from __future__ import annotations

from kubestep import naming
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import DeleteStep, ResourceKind
from kubestep.store import NetworkRecord


def subnet_ids(ctx: ClusterContext) -> list[str]:
    # No record: the orphan sweeper deleting what a lost record's cluster left (kubestep.resources.orphans).
    named = ctx.record.spec.spec.networking.service_load_balancer_subnet_ids if ctx.record else None
    return load_balancer_subnet_ids(named, ctx.network)


def load_balancer_subnet_ids(named: list[str] | None, network: NetworkRecord) -> list[str]:
    """The subnets a cluster tags: those its spec names, else the service's."""
    if named:
        return sorted(set(named))
    if network.subnets:  # existing VPC
        return sorted(network.subnets)
    ids = []
    for zone in network.zones.values():
        ids += [s for s in (zone.private_subnet_id, zone.public_subnet_id) if s]
    return sorted(ids)


@step(creates=True)
def tag_subnets(ctx: ClusterContext) -> dict:
    """Mark the service's subnets as shared by this cluster."""
    ids = subnet_ids(ctx)
    key = naming.k8s_cluster_tag(ctx.uid)
    tagged = ctx.ec2.describe_tags(
        Filters=[
            {"Name": "resource-id", "Values": ids},
            {"Name": "key", "Values": [key]},
            {"Name": "value", "Values": ["shared"]},
        ]
    )["Tags"]
    missing = sorted(set(ids) - {t["ResourceId"] for t in tagged})
    if missing:  # a re-run finds them tagged and changes nothing
        ctx.ec2.create_tags(Resources=missing, Tags=[{"Key": key, "Value": "shared"}])
    return {"subnets": len(ids)}


@step
def untag_subnets(ctx: ClusterContext) -> dict:
    """Remove this cluster's tag from the service's subnets, and from any subnet still carrying it
    (subnets the record no longer names, or named by a record that is gone)."""
    tag = naming.k8s_cluster_tag(ctx.uid)
    tagged = ctx.ec2.describe_subnets(Filters=[{"Name": "tag-key", "Values": [tag]}])["Subnets"]
    ids = sorted(set(subnet_ids(ctx)) | {s["SubnetId"] for s in tagged})
    ctx.ec2.delete_tags(Resources=ids, Tags=[{"Key": tag}])
    return {"subnets": len(ids)}


# Not a resource: the cluster's mark on the service's shared subnets, taken off by a whole delete.
KIND = ResourceKind(
    "subnetTags", ensure=("TagSubnets",), delete=(DeleteStep(untag_subnets, args=(), whole_cluster_only=True),)
)
