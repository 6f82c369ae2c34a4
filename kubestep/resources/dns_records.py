"""The cluster's replica names in the service's private hosted zone (`cp-<i>.<uid>.<domain>`):
each replica UPSERTs its own at boot; the delete removes them. Route 53 keeps no tags on a
record: the uid in its name says whose it is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.flow.steps import step
from kubestep.resources import instances
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import DeleteStep, Found, ResourceKind, Scope

UID_LABEL = re.compile(rf"^[^.]+\.([a-z][a-z0-9]{{{naming.UID_LENGTH - 1}}})\.$")


@step
def delete_dns_records(ctx: ClusterContext) -> dict:
    """Every record under `<uid>.<domain>` (only this cluster's replicas ever write there)."""
    network = ctx.network
    if not network.hosted_zone_id or not network.dns_domain:
        return {"deleted": 0}
    route53 = client("route53", ctx.settings.region)
    suffix = f".{ctx.uid}.{network.dns_domain}."
    try:
        pages = route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=network.hosted_zone_id)
        records = [r for page in pages for r in page["ResourceRecordSets"] if r["Name"].endswith(suffix)]
        if records:
            route53.change_resource_record_sets(
                HostedZoneId=network.hosted_zone_id,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in records]},
            )
    except Exception as exc:
        if is_not_found(exc, Kind.HOSTED_ZONE):
            return {"deleted": 0}
        raise
    return {"deleted": len(records)}


def _zones(scope: Scope) -> list[tuple[str, str]]:
    """(zone id, domain with its final dot): the service's zone, as its network record says; with
    no store, every private zone of the account (an inventory of one incarnation's names)."""
    if scope.store is not None:
        network = scope.store.network.get()
        if network is None or not network.hosted_zone_id or not network.dns_domain:
            return []
        return [(network.hosted_zone_id, network.dns_domain.rstrip(".") + ".")]
    route53 = scope.clients("route53")
    pages = route53.get_paginator("list_hosted_zones").paginate()
    return [(z["Id"], z["Name"]) for page in pages for z in page["HostedZones"] if z["Config"].get("PrivateZone")]


def find_records(scope: Scope, uid: str | None) -> Iterator[Found]:
    route53 = scope.clients("route53")
    for zone_id, domain in _zones(scope):
        try:
            pages = route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
            records = [r for page in pages for r in page["ResourceRecordSets"]]
        except Exception as exc:
            if is_not_found(exc, Kind.HOSTED_ZONE):
                continue
            raise
        for record in records:
            owner = UID_LABEL.match(record["Name"].removesuffix(domain))
            if owner is None or not record["Name"].endswith(f".{domain}") or (uid and owner.group(1) != uid):
                continue
            addresses = [r["Value"] for r in record.get("ResourceRecords", [])]
            detail = {"name": record["Name"], "type": record["Type"], "zone": zone_id, "addresses": addresses}
            yield Found(owner.group(1), f"{record['Name']} {record['Type']}", {}, None, detail, tagged=False)


def _replica_addresses(ctx: ClusterContext) -> set[str]:
    groups = [member.asg_name for member in ctx.store.etcd.members(ctx.name) if member.asg_name]
    ids = [m["id"] for group in groups for m in instances.group_instances(ctx, group)]
    if not ids:
        return set()
    reservations = ctx.ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i.get("PrivateIpAddress") for r in reservations for i in r["Instances"]} - {None}


def record_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """Records under the cluster's name that point at no live replica (changed by hand, or left
    by a replica that is gone); the replica's next boot writes its own again."""
    scope = Scope(lambda service: client(service, ctx.settings.region), store=ctx.store)
    records = list(find_records(scope, ctx.uid))
    if not records:
        return {}
    live = _replica_addresses(ctx)
    drift: dict[str, Any] = {}
    for record in records:
        stale = [a for a in record.detail["addresses"] if a not in live]
        if record.detail["type"] == "A" and stale:
            name = record.detail["name"].rstrip(".")
            drift[f"dns/{name}"] = f"points at {', '.join(stale)}, which no live replica has"
    return drift


KIND = ResourceKind(
    "dnsRecords",
    label="DNS record",
    find=find_records,
    delete=(DeleteStep(delete_dns_records, args=()),),
    drift=record_drift,
    blocks_updates=False,  # a replica replaced by an update writes its record at boot
)
