"""The single table's low-level access: consistent reads, partial updates by attribute path,
conditional writes and paginated queries. Repositories build on this; nothing else does."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase
from botocore.exceptions import ClientError

from kubestep import aws
from kubestep.aws.errors import is_condition_failed
from kubestep.errors import Throttled


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    return (moment or now()).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def dynamo_safe(value: Any) -> Any:
    """Floats as Decimals (the only number type DynamoDB's serializer takes), recursively."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: dynamo_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [dynamo_safe(v) for v in value]
    return value


# BatchGetItem's unprocessed keys: asked again this many times in all, backing off 50 ms..1 s.
UNPROCESSED_ATTEMPTS = 6
# The most keys one BatchGetItem may ask for (DynamoDB API reference, BatchGetItem).
BATCH_GET_LIMIT = 100


class ConditionFailed(Exception):
    """A conditional write lost (the item exists, or no longer matches)."""


class Table:
    def __init__(self, table_name: str, dynamodb: Any = None):
        resource = dynamodb or aws.resource("dynamodb")
        self.name = table_name
        self.table = resource.Table(table_name)
        self.client = self.table.meta.client

    def get(self, pk: str, sk: str) -> dict | None:
        return self.table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")

    def get_many(self, item_keys: list[tuple[str, str]], attributes: tuple[str, ...] = ()) -> list[dict | None]:
        """Consistent reads of distinct items in BatchGetItem calls of at most 100 keys (its
        limit), in the order asked (None: no such item); with `attributes`, only those (and the
        key) of each item. Keys DynamoDB leaves unprocessed (over the table's throughput) are
        asked again after a short back-off; botocore does not retry those itself."""
        found: dict[tuple[str, str], dict] = {}
        for start in range(0, len(item_keys), BATCH_GET_LIMIT):
            found.update(self._get_batch(item_keys[start : start + BATCH_GET_LIMIT], attributes))
        return [found.get(k) for k in item_keys]

    def _get_batch(self, item_keys: list[tuple[str, str]], attributes: tuple[str, ...]) -> dict[tuple[str, str], dict]:
        found: dict[tuple[str, str], dict] = {}
        asked: dict[str, Any] = {"Keys": [{"pk": pk, "sk": sk} for pk, sk in item_keys], "ConsistentRead": True}
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(("pk", "sk", *attributes))}
            asked |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        request: dict[str, Any] = {self.name: asked}
        for attempt in range(UNPROCESSED_ATTEMPTS):
            answer = self.client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self.name, []):
                found[(item["pk"], item["sk"])] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(1.0, 0.05 * 2**attempt))
        left = len(request[self.name]["Keys"])
        raise Throttled(f"DynamoDB left {left} keys unprocessed {UNPROCESSED_ATTEMPTS} times")

    def put(self, item: dict, condition: ConditionBase | str | None = None) -> None:
        kwargs: dict[str, Any] = {"Item": dynamo_safe(item)}
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        try:
            self.table.put_item(**kwargs)
        except ClientError as exc:
            if is_condition_failed(exc):
                raise ConditionFailed(str(exc)) from None
            raise

    def put_new(self, item: dict) -> bool:
        """Put unless an item with that key exists; True if this call wrote it."""
        try:
            self.put(item, Attr("pk").not_exists())
            return True
        except ConditionFailed:
            return False

    def update(
        self,
        pk: str,
        sk: str,
        fields: dict[str, Any],
        condition: ConditionBase | None = None,
        *,
        remove: tuple[str, ...] = (),
        if_not_exists: tuple[str, ...] = (),
        new_item: bool = True,
    ) -> dict:
        """SET each field (a dotted key updates one entry of a map attribute without touching its
        siblings; a value of None removes the attribute); returns the new item, or {} with
        `new_item=False` (DynamoDB then sends nothing back: a cluster record is kilobytes)."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        removes: list[str] = []

        # Placeholders of our own (#f…, :s…): boto3's condition builder names its own #n0/:v0,
        # and the two sets are merged into one request.
        def path_of(key: str, i: int) -> str:
            parts = key.split(".")
            for j, part in enumerate(parts):
                names[f"#f{i}_{j}"] = part
            return ".".join(f"#f{i}_{j}" for j in range(len(parts)))

        for i, (key, value) in enumerate(fields.items()):
            path = path_of(key, i)
            if value is None:
                removes.append(path)
            elif key in if_not_exists:
                values[f":s{i}"] = dynamo_safe(value)
                sets.append(f"{path} = if_not_exists({path}, :s{i})")
            else:
                values[f":s{i}"] = dynamo_safe(value)
                sets.append(f"{path} = :s{i}")
        for k, key in enumerate(remove, start=len(fields)):
            removes.append(path_of(key, k))
        expression = []
        if sets:
            expression.append("SET " + ", ".join(sets))
        if removes:
            expression.append("REMOVE " + ", ".join(removes))
        kwargs: dict[str, Any] = {
            "Key": {"pk": pk, "sk": sk},
            "UpdateExpression": " ".join(expression),
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW" if new_item else "NONE",
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        try:
            return self.table.update_item(**kwargs).get("Attributes", {})
        except ClientError as exc:
            if is_condition_failed(exc):
                raise ConditionFailed(str(exc)) from None
            raise

    def raw_update(self, **kwargs: Any) -> dict:
        try:
            return self.table.update_item(**kwargs).get("Attributes", {})
        except ClientError as exc:
            if is_condition_failed(exc):
                raise ConditionFailed(str(exc)) from None
            raise

    def delete(self, pk: str, sk: str, condition: ConditionBase | None = None) -> bool:
        kwargs: dict[str, Any] = {"Key": {"pk": pk, "sk": sk}}
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        try:
            self.table.delete_item(**kwargs)
            return True
        except ClientError as exc:
            if is_condition_failed(exc):
                return False
            raise

    def query_all(self, **kwargs: Any) -> list[dict]:
        items: list[dict] = []
        while True:
            page = self.table.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def query_page(self, **kwargs: Any) -> tuple[list[dict], dict | None]:
        page = self.table.query(**kwargs)
        return page.get("Items", []), page.get("LastEvaluatedKey")

    def transact_put(self, items: list[tuple[dict, ConditionBase | str | None]]) -> None:
        """All or nothing; ConditionFailed if any condition fails. (The resource's client
        serializes plain Python values itself.)"""
        transact = []
        for item, condition in items:
            put: dict[str, Any] = {"TableName": self.name, "Item": dynamo_safe(item)}
            if condition is not None:
                # Only attribute_not_exists(pk) is used in transactions: a plain string condition.
                put["ConditionExpression"] = condition
            transact.append({"Put": put})
        try:
            self.client.transact_write_items(TransactItems=transact)
        except ClientError as exc:
            if is_condition_failed(exc):
                raise ConditionFailed(str(exc)) from None
            raise

    def delete_all(self, items: list[dict]) -> int:
        with self.table.batch_writer() as batch:
            for item in items:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
        return len(items)
