"""Kubernetes-style events: the same (object, reason, message) aggregates into one item with a
count, as kubectl shows them; kept 30 days, also after the cluster is gone."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from boto3.dynamodb.conditions import Key

from kubestep.store import keys
from kubestep.store.records import Event
from kubestep.store.table import Table, iso, now

EVENT_TTL = timedelta(days=30)
MESSAGE_LIMIT = 2000


class EventRepository:
    def __init__(self, table: Table):
        self._table = table

    def record(
        self,
        cluster: str,
        type_: str,
        reason: str,
        message: str,
        involved_object: str,
        operation_id: str | None = None,
    ) -> None:
        digest = hashlib.sha1(message.encode(), usedforsecurity=False).hexdigest()[:10]
        stamp = iso()
        values = {
            ":type": type_,
            ":reason": reason,
            ":message": message[:MESSAGE_LIMIT],
            ":object": involved_object,
            ":one": 1,
            ":now": stamp,
            ":ttl": int((now() + EVENT_TTL).timestamp()),
            ":cluster": cluster,
        }
        update = (
            "SET #type = :type, reason = :reason, message = :message, involvedObject = :object, "
            "firstTimestamp = if_not_exists(firstTimestamp, :now), lastTimestamp = :now, #ttl = :ttl, "
            "#cluster = :cluster"
        )
        if operation_id:
            update += ", operationId = :op"
            values[":op"] = operation_id
        self._table.raw_update(
            Key={"pk": keys.events_pk(cluster), "sk": keys.event_sk(involved_object, reason, digest)},
            UpdateExpression=update + " ADD #count :one",
            ExpressionAttributeNames={"#type": "type", "#ttl": "ttl", "#count": "count", "#cluster": "cluster"},
            ExpressionAttributeValues=values,
        )

    def list(self, cluster: str) -> list[Event]:
        items = self._table.query_all(KeyConditionExpression=Key("pk").eq(keys.events_pk(cluster)))
        events = [e for e in (Event.from_item(i) for i in items) if e is not None]
        return sorted(events, key=lambda e: e.last_timestamp or "")
