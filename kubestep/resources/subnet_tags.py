"""`kubernetes.io/cluster/<uid>=shared` on the service's subnets while the cluster lives: the
AWS cloud controller manager picks subnets for Service load balancers by it."""

from __future__ import annotations

from kubestep import naming
from kubestep.resources.context import ClusterContext


def subnet_ids(ctx: ClusterContext) -> list[str]:
    network = ctx.network
    if "subnets" in network:  # existing VPC
        return sorted(network["subnets"])
    ids = []
    for zone in network["zones"].values():
        ids += [zone[k] for k in ("privateSubnetId", "publicSubnetId") if zone.get(k)]
    return sorted(ids)


def tag(ctx: ClusterContext) -> dict:
    ids = subnet_ids(ctx)
    ctx.ec2.create_tags(Resources=ids, Tags=[{"Key": naming.k8s_cluster_tag(ctx.uid), "Value": "shared"}])
    return {"subnets": len(ids)}


def untag(ctx: ClusterContext) -> dict:
    ids = subnet_ids(ctx)
    ctx.ec2.delete_tags(Resources=ids, Tags=[{"Key": naming.k8s_cluster_tag(ctx.uid)}])
    return {"subnets": len(ids)}
