"""Where control-plane replicas and node pools go (from the seed architecture):

- dedicated VPC: one replica in each of the cluster's zones (default: all the service's
  zones), in that zone's private subnet;
- existing VPC with one subnet: three replicas in that subnet; with 3 or 5 subnets, one each."""

from __future__ import annotations

from dataclasses import dataclass

from kubestep.models import AWSNodePool
from kubestep.resources.context import ClusterContext

REPLICAS_IN_ONE_SUBNET = 3


@dataclass(frozen=True)
class Replica:
    index: int
    zone: str
    subnet_id: str


def replicas(ctx: ClusterContext) -> list[Replica]:
    cp = ctx.spec.spec.control_plane
    service = ctx.settings.service.spec
    network = ctx.network
    if service.dedicated_vpc:
        zones = cp.availability_zones or service.dedicated_vpc.availability_zones
        return [Replica(i, az, _private_subnet(ctx, az)) for i, az in enumerate(zones)]
    subnets = cp.subnet_ids or service.existing_vpc.subnet_ids[:1]  # type: ignore[union-attr]
    zone_of = {subnet: info.zone for subnet, info in network.subnets.items()}
    if len(subnets) == 1:
        return [Replica(i, zone_of[subnets[0]], subnets[0]) for i in range(REPLICAS_IN_ONE_SUBNET)]
    return [Replica(i, zone_of[s], s) for i, s in enumerate(subnets)]


def node_pool_subnet(ctx: ClusterContext, pool: AWSNodePool) -> tuple[str, str]:
    """(zone, subnet id) of a node pool; default: the first replica's."""
    network = ctx.network
    if pool.spec.subnet_id:
        return network.subnets[pool.spec.subnet_id].zone, pool.spec.subnet_id
    if pool.spec.availability_zone:
        zone = pool.spec.availability_zone
        return zone, _private_subnet(ctx, zone)
    first = replicas(ctx)[0]
    return first.zone, first.subnet_id


def _private_subnet(ctx: ClusterContext, zone: str) -> str:
    subnet = ctx.network.zones[zone].private_subnet_id
    assert subnet, f"zone {zone} has no private subnet recorded"
    return subnet
