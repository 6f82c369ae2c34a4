"""The cluster's replica names in the service's private hosted zone (`cp-<i>.<uid>.<domain>`):
the instances keep them current; the delete removes them."""

from __future__ import annotations

from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext


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
