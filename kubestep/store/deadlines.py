"""When an operation first ran a polling step, and how many times it has found it pending: a
step's deadline survives Lambda retries and the state machine's Retry, so a slow resource times
out once, at the declared deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kubestep.store import keys
from kubestep.store.table import Table, iso, now, parse_iso

DEADLINE_TTL = timedelta(days=2)


@dataclass(frozen=True)
class Waiting:
    """A step's waiting so far: since when, and how many attempts found it pending (this one
    included)."""

    started_at: datetime
    attempts: int

    @property
    def first(self) -> bool:
        return self.attempts == 1


class DeadlineRepository:
    def __init__(self, table: Table):
        self._table = table

    def started(self, operation_id: str, step: str) -> Waiting:
        """Count one more pending attempt of the operation's step; when it first waited."""
        result = self._table.raw_update(
            Key={"pk": keys.deadline_pk(operation_id), "sk": step},
            UpdateExpression="SET startedAt = if_not_exists(startedAt, :now), #ttl = :ttl ADD attempts :one",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":now": iso(), ":ttl": int((now() + DEADLINE_TTL).timestamp()), ":one": 1},
            ReturnValues="ALL_NEW",
        )
        return Waiting(parse_iso(result["startedAt"]), int(result["attempts"]))

    def reset(self, operation_id: str, step: str) -> None:
        self._table.delete(keys.deadline_pk(operation_id), step)
