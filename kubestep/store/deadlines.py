"""When an operation first ran a polling step: a step's deadline survives Lambda retries and
the state machine's Retry, so a slow resource times out once, at the declared deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

from kubestep.store import keys
from kubestep.store.table import Table, iso, now, parse_iso

DEADLINE_TTL = timedelta(days=2)


class DeadlineRepository:
    def __init__(self, table: Table):
        self._table = table

    def started(self, operation_id: str, step: str) -> tuple[datetime, bool]:
        """When the operation's step first waited, and whether that is now (its first wait)."""
        moment = iso()
        result = self._table.raw_update(
            Key={"pk": keys.deadline_pk(operation_id), "sk": step},
            UpdateExpression="SET startedAt = if_not_exists(startedAt, :now), #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":now": moment, ":ttl": int((now() + DEADLINE_TTL).timestamp())},
            ReturnValues="ALL_NEW",
        )
        return parse_iso(result["startedAt"]), result["startedAt"] == moment

    def reset(self, operation_id: str, step: str) -> None:
        self._table.delete(keys.deadline_pk(operation_id), step)
