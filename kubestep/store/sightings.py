"""When the orphan sweeper first saw a resource it cannot date (security groups and target
groups carry no creation time): its age is counted from then, so a grace period protects it as
it protects everything else, and nothing undatable counts as old the first time it is seen."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from boto3.dynamodb.conditions import Key

from kubestep.store import keys
from kubestep.store.table import Table, iso, parse_iso

# Longer than the longest grace period (30 days): a sighting outlives every decision it informs.
SIGHTING_TTL = timedelta(days=90)


class SightingRepository:
    def __init__(self, table: Table):
        self._table = table

    def first_seen(self, uid: str, resource_ids: Iterable[str], now: datetime) -> dict[str, datetime]:
        """Each resource's first sighting; those never seen before are recorded as seen `now`."""
        wanted = set(resource_ids)
        if not wanted:
            return {}
        items = self._table.query_all(KeyConditionExpression=Key("pk").eq(keys.orphan_pk(uid)), ConsistentRead=True)
        seen = {
            item["sk"].removeprefix(keys.SIGHTING_PREFIX): parse_iso(item["firstSeen"])
            for item in items
            if item["sk"].removeprefix(keys.SIGHTING_PREFIX) in wanted
        }
        for resource_id in sorted(wanted - set(seen)):
            item = {
                "pk": keys.orphan_pk(uid),
                "sk": keys.sighting_sk(resource_id),
                "firstSeen": iso(now),
                "ttl": int((now + SIGHTING_TTL).timestamp()),
            }
            if not self._table.put_new(item):  # another sweep recorded it first: its time counts
                stored = self._table.get(keys.orphan_pk(uid), keys.sighting_sk(resource_id))
                seen[resource_id] = parse_iso(stored["firstSeen"]) if stored else now
                continue
            seen[resource_id] = now
        return seen
