"""`kubernetes.io/cluster/<uid>=shared` on the subnets a cluster's spec names for its Service load
balancers (`spec.networking.serviceLoadBalancerSubnetIDs`), while the cluster lives; the
service's own subnets are left untagged.

Why: the AWS cloud controller manager (kubernetes/cloud-provider-aws,
pkg/providers/v1/aws.go `findSubnets`, with tags.go `hasClusterTag` / `hasNoClusterPrefixTag`)
considers a subnet of its VPC when it carries the cluster's tag **or no `kubernetes.io/cluster/`
tag at all**; `findELBSubnets` then picks one per zone, preferring `kubernetes.io/role/elb`
(internet-facing) or `internal-elb` (internal), which the dedicated VPC's subnets get when they
are made. So the service's subnets, untagged, are found by every cluster, and a subnet tagged for
one cluster is ignored by every other. A tag per cluster on them bought nothing, and since EC2
holds 50 tags per resource it capped one network at about 46 clusters. A subnet the spec names
is tagged so this cluster finds it even when other clusters that name it tagged it too.

A delete removes the cluster's tag wherever it is (`untag_subnets`), also from the service's
subnets, where clusters created before this rule put it."""

from __future__ import annotations

from kubestep import naming
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import DeleteStep, ResourceKind


def subnet_ids(ctx: ClusterContext) -> list[str]:
    # No record: the orphan sweeper deleting what a lost record's cluster left (kubestep.resources.orphans).
    named = ctx.record.spec.spec.networking.service_load_balancer_subnet_ids if ctx.record else None
    return tagged_subnet_ids(named)


def tagged_subnet_ids(named: list[str] | None) -> list[str]:
    """The subnets a cluster tags: those its spec names (none by default)."""
    return sorted(set(named or ()))


@step(creates=True)
def tag_subnets(ctx: ClusterContext) -> dict:
    """Mark the subnets the spec names for Service load balancers as shared by this cluster."""
    ids = subnet_ids(ctx)
    if not ids:
        return {"subnets": 0}
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
    """Remove this cluster's tag from the subnets the spec names and from any subnet still
    carrying it (subnets the record no longer names, the service's subnets an earlier rule
    tagged, or those of a record that is gone)."""
    tag = naming.k8s_cluster_tag(ctx.uid)
    tagged = ctx.ec2.describe_subnets(Filters=[{"Name": "tag-key", "Values": [tag]}])["Subnets"]
    ids = sorted(set(subnet_ids(ctx)) | {s["SubnetId"] for s in tagged})
    if ids:
        ctx.ec2.delete_tags(Resources=ids, Tags=[{"Key": tag}])
    return {"subnets": len(ids)}


# Not a resource: the cluster's mark on the subnets it names, taken off by a whole delete.
KIND = ResourceKind(
    "subnetTags", ensure=("TagSubnets",), delete=(DeleteStep(untag_subnets, args=(), whole_cluster_only=True),)
)
