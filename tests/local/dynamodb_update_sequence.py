"""One sequence of DynamoDB UpdateItem and PutItem requests, condition expressions, failures and
bad expressions among them, sent to moto's own request handler (moto/dynamodb/responses.py
``DynamoHandler``) in this process; prints every answer (or error) and the table's items after
as JSON. ``patched`` applies the emulator's speed fixes first (``fix_moto_performance``),
``moto`` runs moto as it ships: test_moto_speed.py compares the two.

    python tests/local/dynamodb_update_sequence.py patched|moto
"""

from __future__ import annotations

import json
import sys
from typing import Any

ACCOUNT, REGION, TABLE = "123456789012", "us-east-1", "sequence"

# (UpdateExpression, names, values) sent more than once with other values: the cached parse of
# the text must give each request its own tree.
CLUSTER_UPDATE = "SET #f0_0 = :s0, #f1_0 = if_not_exists(#f1_0, :s1), #f2_0.#f2_1 = :s2 REMOVE #f3_0"
DEADLINE_UPDATE = "SET startedAt = if_not_exists(startedAt, :now), #ttl = :ttl ADD attempts :one"
LIST_UPDATE = "SET #l = list_append(if_not_exists(#l, :empty), :x), #n = :n REMOVE #r[0], #r[2]"


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "meta"}}


def requests() -> list[tuple[str, dict[str, Any]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    cluster_names = {"#f0_0": "phase", "#f1_0": "createdAt", "#f2_0": "status", "#f2_1": "nodes", "#f3_0": "error"}
    sent.append(("PutItem", {"Item": {**_key("c1"), "status": {"M": {}}, "error": {"S": "x"}}}))
    for n in range(3):
        sent.append(
            (
                "UpdateItem",
                {
                    "Key": _key("c1"),
                    "UpdateExpression": CLUSTER_UPDATE,
                    "ConditionExpression": "attribute_exists(#n0) AND #n1 <> :v0",
                    "ExpressionAttributeNames": {**cluster_names, "#n0": "pk", "#n1": "phase"},
                    "ExpressionAttributeValues": {
                        ":s0": {"S": f"phase{n}"},
                        ":s1": {"S": f"created{n}"},
                        ":s2": {"M": {"ready": {"N": str(n)}}},
                        ":v0": {"S": "deleting"},
                    },
                    "ReturnValues": ["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"][n],
                },
            )
        )
    # The condition fails: ConditionalCheckFailed, with the old item when asked for it.
    sent.append(
        (
            "UpdateItem",
            {
                "Key": _key("c1"),
                "UpdateExpression": CLUSTER_UPDATE,
                "ConditionExpression": "#n1 = :v0",
                "ExpressionAttributeNames": {**cluster_names, "#n1": "phase"},
                "ExpressionAttributeValues": {
                    ":s0": {"S": "never"},
                    ":s1": {"S": "never"},
                    ":s2": {"M": {}},
                    ":v0": {"S": "deleting"},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
    )
    # New items, created by the update (moto validates the tree twice then), then updated again.
    for n in range(3):
        sent.append(
            (
                "UpdateItem",
                {
                    "Key": _key(f"deadline{n % 2}"),
                    "UpdateExpression": DEADLINE_UPDATE,
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {
                        ":now": {"S": f"t{n}"},
                        ":ttl": {"N": str(100 + n)},
                        ":one": {"N": "1"},
                    },
                    "ReturnValues": "ALL_NEW",
                },
            )
        )
    sent.append(("PutItem", {"Item": {**_key("l1"), "r": {"L": [{"N": str(i)} for i in range(5)]}}}))
    for n in range(3):
        sent.append(
            (
                "UpdateItem",
                {
                    "Key": _key("l1"),
                    "UpdateExpression": LIST_UPDATE,
                    "ExpressionAttributeNames": {"#l": "l", "#n": "n", "#r": "r"},
                    "ExpressionAttributeValues": {
                        ":x": {"L": [{"S": f"x{n}"}]},
                        ":empty": {"L": []},
                        ":n": {"N": str(n)},
                    },
                    "ReturnValues": "ALL_OLD",
                },
            )
        )
    # PutItem with a condition: passes once, then fails (the item exists), with and without ALL_OLD.
    for n in range(3):
        put = {
            "Item": {**_key("p1"), "n": {"N": str(n)}},
            "ConditionExpression": "attribute_not_exists(#n0)",
            "ExpressionAttributeNames": {"#n0": "pk"},
        }
        if n == 2:
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        sent.append(("PutItem", put))
    sent.append(
        (
            "PutItem",
            {
                "Item": {**_key("p1"), "n": {"N": "9"}},
                "ConditionExpression": "n < :max AND (size(pk) > :zero OR attribute_type(n, :t))",
                "ExpressionAttributeValues": {":max": {"N": "5"}, ":zero": {"N": "0"}, ":t": {"S": "N"}},
                "ReturnValues": "ALL_OLD",
            },
        )
    )
    # A condition text sent again naming another attribute; a condition moto cannot read, twice.
    for name in ("missing", "n"):
        sent.append(
            (
                "PutItem",
                {
                    "Item": {**_key("p2"), "n": {"N": "1"}},
                    "ConditionExpression": "attribute_not_exists(#n0)",
                    "ExpressionAttributeNames": {"#n0": name},
                },
            )
        )
    for _ in range(2):
        sent.append(
            (
                "PutItem",
                {
                    "Item": {**_key("p3")},
                    "ConditionExpression": "n $ :v",
                    "ExpressionAttributeValues": {":v": {"N": "1"}},
                },
            )
        )
    # Bad expressions: a syntax error (twice: errors are not cached), and each of the validator's
    # refusals (its passes walk the tree), then the same text again with good values.
    bad = [
        ("SET = :n", {}, {":n": {"N": "1"}}),
        ("SET = :n", {}, {":n": {"N": "1"}}),
        ("SET a = :n SET b = :n", {}, {":n": {"N": "1"}}),
        ("SET a = :n, a = :m", {}, {":n": {"N": "1"}, ":m": {"N": "2"}}),
        ("SET a.b = :n, a = :m", {}, {":n": {"N": "1"}, ":m": {"N": "2"}}),
        ("SET pk = :n", {}, {":n": {"S": "other"}}),
        # One text: two attributes, then one attribute twice (the names decide).
        ("SET #a = :n, #b = :m", {"#a": "x", "#b": "y"}, {":n": {"N": "1"}, ":m": {"N": "2"}}),
        ("SET #a = :n, #b = :m", {"#a": "x", "#b": "x"}, {":n": {"N": "1"}, ":m": {"N": "2"}}),
        ("SET #a = :n, #b = :m", {"#a": "x", "#b": "y"}, {":n": {"N": "3"}, ":m": {"N": "4"}}),
        ("SET a = :missing", {}, {":n": {"N": "1"}}),
        ("SET #missing.b = :n", {"#missing": "nope"}, {":n": {"N": "1"}}),
        ("SET a = b + :n", {}, {":n": {"N": "1"}}),
        ("ADD s :n", {}, {":n": {"S": "not a number or set"}}),
        (
            CLUSTER_UPDATE,
            {"#f0_0": "phase", "#f1_0": "createdAt", "#f2_0": "status", "#f2_1": "nodes", "#f3_0": "error"},
            {":s0": {"N": "1"}},
        ),
    ]
    for expression, names, values in bad:
        update: dict[str, Any] = {
            "Key": _key("c1"),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        sent.append(("UpdateItem", update))
    sent.append(
        (
            "UpdateItem",
            {
                "Key": _key("c1"),
                "UpdateExpression": "SET a = :n, b = :m ADD s :set DELETE d :gone",
                "ExpressionAttributeValues": {
                    ":n": {"N": "1"},
                    ":m": {"M": {"k": {"BOOL": True}}},
                    ":set": {"SS": ["a", "b"]},
                    ":gone": {"SS": ["z"]},
                },
                "ReturnValues": "UPDATED_NEW",
            },
        )
    )
    return sent


def run(patched: bool) -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import DynamoHandler

    from kubestep_local.moto_compat import PatchSet, fix_moto_performance

    patches = PatchSet()
    if patched:
        fix_moto_performance(patches)
    handler = DynamoHandler()
    handler.current_account, handler.region = ACCOUNT, REGION
    handler.body = {
        "TableName": TABLE,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    handler.create_table()
    answers: list[Any] = []
    for action, request in requests():
        handler.body = {"TableName": TABLE, **json.loads(json.dumps(request))}
        try:
            result = getattr(handler, "update_item" if action == "UpdateItem" else "put_item")()
            answers.append(["ok", result.result])
        except Exception as error:  # moto's answer to a bad request is an exception: compare those
            answers.append(["error", type(error).__name__, str(error), getattr(error, "description", None)])
    table = dynamodb_backends[ACCOUNT][REGION].get_table(TABLE)
    items = sorted((item.to_json() for item in table.all_items()), key=lambda i: json.dumps(i, sort_keys=True))
    return {"answers": answers, "items": items}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1] == "patched"), sort_keys=True, default=repr))
