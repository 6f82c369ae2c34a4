"""`aws dynamodb put-item | get-item | update-item` as the bootstrap script calls them, over a
dict of items keyed `pk|sk`, with DynamoDB's condition-expression semantics for what the script
writes (AWS docs: "Condition and filter expressions, operators, and functions" in the DynamoDB
Developer Guide): comparisons `= <> < <= > >=` between attribute paths, `#names` and `:values`
(strings compare by code point, numbers numerically; a comparison with a missing attribute is
false), `attribute_exists` / `attribute_not_exists`, `AND` / `OR` / `NOT` and parentheses.
Standard library only, but for `--query` with JSON output, which the AWS CLI evaluates with the
`jmespath` library (aws-cli `awscli/formatter.py`, FullyBufferedFormatter): the stand-in uses the
same library (the recording stub, run with `python -S`, is given its directory)."""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from typing import Any

CONDITIONAL_FAILED = (
    "An error occurred (ConditionalCheckFailedException) when calling the {} operation: "
    "The conditional request failed\n"
)
TOKEN = re.compile(r"\s*(<>|<=|>=|=|<|>|\(|\)|,|[#:]?[A-Za-z_][A-Za-z0-9_]*)")


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def item_key(pk: str, sk: str) -> str:
    """How the stand-in files an item: its partition and sort key (the caller's, never its own)."""
    return f"{pk}|{sk}"


def key_of(item: dict[str, Any]) -> str:
    return item_key(item["pk"]["S"], item["sk"]["S"])


class Condition:
    """A parsed condition expression, evaluated against one item (or None: no item)."""

    def __init__(self, text: str, names: dict[str, str], values: dict[str, dict[str, str]]):
        self.tokens = []
        position = 0
        while position < len(text.rstrip()):
            match = TOKEN.match(text, position)
            if not match:
                raise ValueError(f"cannot parse condition expression at {text[position:]!r}")
            self.tokens.append(match.group(1))
            position = match.end()
        self.names, self.values = names, values

    def evaluate(self, item: dict[str, Any] | None) -> bool:
        self.item, self.position = item or {}, 0
        result = self._or()
        if self.position != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.position]!r} in condition expression")
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise ValueError(f"expected {expected or 'a token'} in condition expression, got {token!r}")
        self.position += 1
        return token

    def _or(self) -> bool:
        result = self._and()
        while (self._peek() or "").upper() == "OR":
            self._take()
            right = self._and()
            result = result or right
        return result

    def _and(self) -> bool:
        result = self._not()
        while (self._peek() or "").upper() == "AND":
            self._take()
            right = self._not()
            result = result and right
        return result

    def _not(self) -> bool:
        if (self._peek() or "").upper() == "NOT":
            self._take()
            return not self._not()
        return self._primary()

    def _primary(self) -> bool:
        token = self._peek()
        if token == "(":
            self._take()
            result = self._or()
            self._take(")")
            return result
        if token in ("attribute_exists", "attribute_not_exists"):
            self._take()
            self._take("(")
            exists = self._attribute_name(self._take()) in self.item
            self._take(")")
            return exists if token == "attribute_exists" else not exists
        left = self._operand(self._take())
        operator = self._take()
        right = self._operand(self._take())
        return compare(left, operator, right)

    def _attribute_name(self, token: str) -> str:
        return self.names[token] if token.startswith("#") else token

    def _operand(self, token: str) -> dict[str, str] | None:
        if token.startswith(":"):
            return self.values[token]
        return self.item.get(self._attribute_name(token))


def compare(left: dict[str, str] | None, operator: str, right: dict[str, str] | None) -> bool:
    if left is None or right is None or set(left) != set(right):
        return False
    (kind,) = left
    a, b = left[kind], right[kind]
    if kind == "N":
        a, b = Decimal(a), Decimal(b)
    return {
        "=": a == b,
        "<>": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[operator]


def _condition_holds(args: list[str], item: dict[str, Any] | None) -> bool:
    expression = option(args, "--condition-expression")
    if not expression:
        return True
    names = json.loads(option(args, "--expression-attribute-names") or "{}")
    values = json.loads(option(args, "--expression-attribute-values") or "{}")
    return Condition(expression, names, values).evaluate(item)


def text_query(item: dict[str, Any], query: str) -> str:
    """`--query 'Item.[status.S, replica.N]' --output text`."""
    fields = re.findall(r"(\w+)\.([SNB])", query.split("[", 1)[1])
    return "\t".join(str(item.get(name, {}).get(kind, "None")) for name, kind in fields)


def print_json_query(response: dict[str, Any], query: str) -> None:
    """`--query EXPRESSION --output json`: the expression over the response, printed as JSON
    unless empty (the CLI's JSONFormatter prints nothing for an empty result)."""
    import jmespath

    result = jmespath.search(query, response)
    if result:
        print(json.dumps(result, indent=4))


def run(items: dict[str, Any], operation: str, args: list[str]) -> int:
    """One CLI call against `items` (changed in place); prints what the CLI prints."""
    if operation == "put-item":
        item = json.loads(option(args, "--item"))
        if not _condition_holds(args, items.get(key_of(item))):
            sys.stderr.write(CONDITIONAL_FAILED.format("PutItem"))
            return 254
        items[key_of(item)] = item
    elif operation == "get-item":
        item = items.get(key_of(json.loads(option(args, "--key"))))
        query = option(args, "--query")
        if query and option(args, "--output") == "json":
            print_json_query({"Item": item} if item is not None else {}, query)
        elif item is None:
            # No item: GetItem answers `{}`, which the CLI's JSON output prints as nothing at all
            # (aws-cli `awscli/formatter.py`, JSONFormatter skips an empty response); a text
            # query of a missing value prints `None`.
            if query:
                print("None")
        else:
            print(text_query(item, query) if query else json.dumps({"Item": item}))
    elif operation == "update-item":
        key = key_of(json.loads(option(args, "--key")))
        item = items.get(key)
        if not _condition_holds(args, item):
            sys.stderr.write(CONDITIONAL_FAILED.format("UpdateItem"))
            return 254
        item = item or json.loads(option(args, "--key"))
        names = json.loads(option(args, "--expression-attribute-names") or "{}")
        values = json.loads(option(args, "--expression-attribute-values"))
        for assignment in option(args, "--update-expression").removeprefix("SET ").split(","):
            target, value = (part.strip() for part in assignment.split("="))
            item[names.get(target, target)] = values[value]
        items[key] = item
    else:
        sys.stderr.write(f"dynamodb {operation} is not modelled\n")
        return 2
    return 0
