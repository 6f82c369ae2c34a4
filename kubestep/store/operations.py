"""Operation records: one per mutating workflow run, keyed by its id (= the execution name).

An operation record is written once, by its owner: the API (before it starts the execution)
or, for a console start, the execution itself. `create` never overwrites; callers compare
the stored execution ARN with their own to prove who they are (nothing in an input does)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from kubestep.store import keys
from kubestep.store.clusters import stored_form
from kubestep.store.records import Operation
from kubestep.store.table import ConditionFailed, Table, iso, now

OPERATION_TTL = timedelta(days=90)
CAUSE_LIMIT = 4000


class OperationRepository:
    def __init__(self, table: Table):
        self._table = table

    def create(self, operation: Operation) -> tuple[Operation, bool]:
        """Write the record unless one with that id exists. Returns (the stored record, created)."""
        stamp = iso()
        operation = operation.model_copy(update={"started_at": operation.started_at or stamp})
        item = {
            "pk": keys.operation_pk(operation.operation_id),
            "sk": keys.OPERATION_SK,
            "gsi1pk": keys.operations_index(operation.keyed_target),
            "gsi1sk": operation.started_at,
            "gsi2pk": keys.ALL_OPERATIONS_INDEX,
            "gsi2sk": f"{operation.started_at}#{operation.operation_id}",
            "ttl": int((now() + OPERATION_TTL).timestamp()),
            **operation.to_item(),
        }
        if self._table.put_new(item):
            return operation, True
        existing = self.get(operation.operation_id)
        assert existing is not None
        return existing, False

    def get(self, operation_id: str) -> Operation | None:
        return Operation.from_item(self._table.get(keys.operation_pk(operation_id), keys.OPERATION_SK))

    def set(self, operation_id: str, **fields: Any) -> Operation | None:
        """Update fields of an existing record (progress, compensation); None if it is gone."""
        values = {Operation.attribute(k): stored_form(v) for k, v in fields.items()}
        try:
            item = self._table.update(keys.operation_pk(operation_id), keys.OPERATION_SK, values, Attr("pk").exists())
        except ConditionFailed:
            return None
        return Operation.from_item(item)

    def finish(self, operation_id: str, status: str, error: str | None = None, cause: str | None = None) -> bool:
        """Record the outcome once: a finished operation keeps its first outcome."""
        fields: dict[str, Any] = {"status": status, "endedAt": iso(), "compensating": None}
        if error:
            fields["error"] = error
        if cause:
            fields["cause"] = cause[:CAUSE_LIMIT]
        try:
            self._table.update(
                keys.operation_pk(operation_id),
                keys.OPERATION_SK,
                fields,
                Attr("pk").exists() & Attr("endedAt").not_exists(),
                new_item=False,
            )
            return True
        except ConditionFailed:
            return False

    def for_target(
        self, target: keys.Target, limit: int = 20, start: str | None = None
    ) -> tuple[list[Operation], str | None]:
        """Newest first."""
        kwargs: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": Key("gsi1pk").eq(keys.operations_index(target)),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start:
            started_at, _, operation_id = start.partition("|")
            kwargs["ExclusiveStartKey"] = {
                "gsi1pk": keys.operations_index(target),
                "gsi1sk": started_at,
                "pk": keys.operation_pk(operation_id),
                "sk": keys.OPERATION_SK,
            }
        items, last = self._table.query_page(**kwargs)
        token = f"{last['gsi1sk']}|{last['pk'].removeprefix(keys.OPERATION_PREFIX)}" if last else None
        return [o for o in (Operation.from_item(i) for i in items) if o is not None], token

    def all(self, limit: int = 20, start: str | None = None) -> tuple[list[Operation], str | None]:
        """Every target's operations, newest first."""
        kwargs: dict[str, Any] = {
            "IndexName": "gsi2",
            "KeyConditionExpression": Key("gsi2pk").eq(keys.ALL_OPERATIONS_INDEX),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start:
            started_at, _, operation_id = start.partition("|")
            kwargs["ExclusiveStartKey"] = {
                "gsi2pk": keys.ALL_OPERATIONS_INDEX,
                "gsi2sk": f"{started_at}#{operation_id}",
                "pk": keys.operation_pk(operation_id),
                "sk": keys.OPERATION_SK,
            }
        items, last = self._table.query_page(**kwargs)
        token = None
        if last:
            started_at, _, operation_id = last["gsi2sk"].rpartition("#")
            token = f"{started_at}|{operation_id}"
        return [o for o in (Operation.from_item(i) for i in items) if o is not None], token
