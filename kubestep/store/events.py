"""Kubernetes-style events: the same (object, reason, message) of one cluster incarnation
aggregates into one item with a count, as kubectl shows them; kept 30 days, also after the
cluster is gone. Each carries the uid of the incarnation it is about, so the events of a
cluster deleted and created again under the same name are told apart (and never aggregate)."""

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
        *,
        uid: str | None = None,
    ) -> None:
        uid = uid or self._uid_of(cluster, operation_id)
        digest = hashlib.sha1(f"{uid or ''}\n{message}".encode(), usedforsecurity=False).hexdigest()[:10]
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
        if uid:
            update += ", #uid = :uid"
            values[":uid"] = uid
        self._table.raw_update(
            Key={"pk": keys.events_pk(cluster), "sk": keys.event_sk(involved_object, reason, digest)},
            UpdateExpression=update + " ADD #count :one",
            ExpressionAttributeNames={
                "#type": "type",
                "#ttl": "ttl",
                "#count": "count",
                "#cluster": "cluster",
                **({"#uid": "uid"} if uid else {}),
            },
            ExpressionAttributeValues=values,
        )

    def _uid_of(self, cluster: str, operation_id: str | None) -> str | None:
        """The incarnation an event is about: its operation's (written once, at its start, and
        kept after the cluster is deleted), else the cluster record's (the record is gone only
        after its delete operation's last event)."""
        if operation_id:
            operation = self._table.get(keys.operation_pk(operation_id), keys.OPERATION_SK)
            if operation and operation.get("target") == cluster and operation.get("uid"):
                return str(operation["uid"])
        record = self._table.get(keys.cluster_pk(cluster), keys.CLUSTER_SK)
        return str(record["uid"]) if record and record.get("uid") else None

    def list(self, cluster: str) -> list[Event]:
        items = self._table.query_all(KeyConditionExpression=Key("pk").eq(keys.events_pk(cluster)))
        events = [e for e in (Event.from_item(i) for i in items) if e is not None]
        return sorted(events, key=lambda e: e.last_timestamp or "")
