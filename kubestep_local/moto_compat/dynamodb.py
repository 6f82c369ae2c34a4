"""DynamoDB: item operations' answers sent as moto builds them; transactions that copy only the
items they name; updates that copy an item only for a stream; update expressions parsed once per
text, their trees walked by node class and checked once per text; condition expressions cut into
tokens once per text; items' JSON and size computed in one pass, an item built in one pass, an
update's old image read without a copy, and a projection of top-level attributes converting only
those."""

from __future__ import annotations

import base64
import copy
import threading
import weakref
from typing import Any

from kubestep_local.moto_compat.core import PatchSet

# Item operations whose results are plain data (no timestamps or blobs to format).
DYNAMODB_DATA_OPERATIONS = frozenset(
    ("dynamodb", op)
    for op in (
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    )
)


def send_items_as_built(patches: PatchSet) -> None:
    """DynamoDB's item operations return dicts already in the wire format (moto's
    ``dynamo_to_dict``); moto's generic serializer still walks every attribute value against the
    output shape, which was half of the emulator's time. Those results go out as they are (a
    speed fix only: the answer is the same bytes)."""
    from moto.core.serialize import BaseJSONSerializer

    original_result = BaseJSONSerializer._serialize_result

    def _serialize_result(self: Any, resp: Any, result: Any) -> Any:
        model = self.operation_model
        if isinstance(result, dict) and (model.service_model.service_name, model.name) in DYNAMODB_DATA_OPERATIONS:
            return self._serialized_result_to_response(resp, result, model.output_shape, result)
        return original_result(self, resp, result)

    patches.set(BaseJSONSerializer, "_serialize_result", _serialize_result)


class _KeepTables:
    """moto's ``copy`` module as its DynamoDB backend sees it: a table is not copied
    (``transact_write_items``), nor the item an update on a table without a stream is about to
    change (``update_item``, while ``_UPDATING_WITHOUT_STREAM`` says so)."""

    def __init__(self, table_class: type) -> None:
        self._table_class = table_class

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_class):
            return value
        if getattr(_UPDATING_WITHOUT_STREAM, "active", False):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def roll_back_only_touched_items(patches: PatchSet) -> None:
    """TransactWriteItems is all or nothing. moto makes it so by deep-copying every table the
    transaction names, all of its items, before each transaction, and putting the copy back on
    failure (moto/dynamodb/models/__init__.py ``transact_write_items``): the cost grows with the
    table, i.e. with the number of clusters. The items a transaction can change are the ones it
    names, so only those are copied, and put back as they were if the transaction fails (a speed
    fix only: the answers and the table after a cancelled transaction are the same)."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = [_saved_item(self, op) for item in transact_items for op in item.values() if isinstance(op, dict)]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, before in (s for s in saved if s is not None):
                _put_back(table, hash_key, range_key, before)
            raise

    patches.set(models, "copy", _KeepTables(Table))
    patches.set(models.DynamoDBBackend, "transact_write_items", transact_write_items)


# Set while this thread runs moto's ``update_item`` for a table that has no stream.
_UPDATING_WITHOUT_STREAM = threading.local()


def copy_updated_items_only_for_streams(patches: PatchSet) -> None:
    """Before every UpdateItem, moto's backend deep-copies the whole item (moto/dynamodb/models/
    __init__.py ``update_item``: ``orig_item``), whose only reader is the table's stream (the
    item's old image, ``stream_shard.add``); a quarter of UpdateItem's time, the emulator's
    costliest action. On a table without a stream (kubestep's have none) the copy is skipped;
    with a stream, it is made as before (a speed fix only: the answer, the item and the stream
    records are the same). Must follow ``roll_back_only_touched_items`` (its ``copy``)."""
    from moto.dynamodb import models

    original = models.DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        table = self.tables.get(table_name)
        if table is None or table.stream_shard is not None:
            return original(self, table_name, *args, **kwargs)
        _UPDATING_WITHOUT_STREAM.active = True
        try:
            return original(self, table_name, *args, **kwargs)
        finally:
            _UPDATING_WITHOUT_STREAM.active = False

    patches.set(models.DynamoDBBackend, "update_item", update_item)


def _saved_item(backend: Any, op: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    """(table, hash key, range key, a copy of the item or None) for one operation of a transaction."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = backend.tables.get(op.get("TableName"))
    key = op.get("Key") or op.get("Item")
    if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
        return None  # moto rejects the operation before it changes anything
    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
    if table.range_key_attr is not None and range_key is None:
        return None
    return table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))


def _put_back(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    if range_key is None:
        if before is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = before
        return
    versions = table.items[hash_key]
    if before is None:
        versions.pop(range_key, None)
        if not versions:
            table.items.pop(hash_key, None)
    else:
        versions[range_key] = before


# Distinct update expressions kubestep sends: one per shape of a store write, a few hundred at most.
MAX_PARSED_UPDATE_EXPRESSIONS = 4096


def parse_each_update_expression_once(patches: PatchSet) -> None:
    """moto parses an UpdateItem's UpdateExpression twice per request (moto/dynamodb/responses.py
    ``update_item`` to find the placeholders it uses, models/__init__.py ``update_item`` to
    validate it), and its validator then deep-copies the tree (parsing/validators.py
    ``Validator.__init__``), which costs twice a parse: UpdateItem was the emulator's costliest
    action. The tree of one text is always the same and those two callers only read it, so each
    text is parsed once; the validator, which rewrites its copy, gets a copy of the cached tree
    made node by node (``copy_plain_tree``: new nodes and lists, the same str and int leaves),
    a tenth of a parse; a tree holding anything else is parsed afresh for it instead. Syntax
    errors are not cached; any other deep copy the validators make is unchanged (a speed fix
    only: the answer is the same)."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    parse = UpdateExpressionParser.make
    lock = threading.Lock()
    trees: dict[str, Any] = {}
    texts: dict[int, str] = {}  # id of a cached tree -> its text (cached trees live on: ids hold)
    plain: dict[int, bool] = {}  # id of a cached tree -> whether ``copy_plain_tree`` copies it

    def make(cls: Any, expression: str) -> Any:
        tree = trees.get(expression)
        if tree is None:
            tree = parse(expression)
            with lock:
                if len(trees) >= MAX_PARSED_UPDATE_EXPRESSIONS:
                    trees.clear()
                    texts.clear()
                    plain.clear()
                trees[expression] = tree
                texts[id(tree)] = expression
                plain[id(tree)] = tree.parent is None and is_plain_tree(tree)
        return tree

    def deepcopy(value: Any, memo: Any = None) -> Any:
        text = texts.get(id(value))
        if text is not None and trees.get(text) is value:
            tree = copy_plain_tree(value) if plain.get(id(value)) else parse(text)
            _VALIDATED_TREE_TEXTS[tree] = text
            return tree
        return copy.deepcopy(value, memo)

    patches.set(UpdateExpressionParser, "make", classmethod(make))
    patches.set(validators, "deepcopy", deepcopy)


# The validator's own tree (its root) -> the UpdateExpression text it was parsed or copied from.
_VALIDATED_TREE_TEXTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def check_each_update_text_once(patches: PatchSet) -> None:
    """The first two of moto's validator passes only check the tree they are given, and at every
    node of it search its subtree again (moto/dynamodb/parsing/validators.py
    ``ActionCountValidator``: one SET, REMOVE, ADD, DELETE clause each; ``OverlappingPathsValidator``:
    no path set twice, by text or by the attribute names' values): a quarter of UpdateItem's time.
    They run first, on the validator's fresh tree (``parse_each_update_expression_once``), so
    what they find depends on the expression's text alone, and on its attribute names for the
    second. Once a text (with those names) has passed a check, its trees skip it; a tree that
    fails, or one of another origin, is checked by moto each time (a speed fix only: the same
    requests are refused, with the same errors)."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

    lock = threading.Lock()
    passed: set[tuple[Any, ...]] = set()

    def traverse(self: Any, node: Any) -> Any:
        text = _VALIDATED_TREE_TEXTS.get(node)
        names = getattr(self, "expression_attribute_names", None) or {}
        key: tuple[Any, ...] | None = None
        if text is not None:
            key = (type(self), text, tuple(sorted(names.items())))
            try:
                if key in passed:
                    return node
            except TypeError:  # an unhashable attribute name value: moto refuses it itself
                key = None
        checked = DepthFirstTraverser.traverse(self, node)
        if key is not None:
            with lock:
                if len(passed) >= MAX_PARSED_UPDATE_EXPRESSIONS:
                    passed.clear()
                passed.add(key)
        return checked

    for check in (ActionCountValidator, OverlappingPathsValidator):
        patches.set(check, "traverse", traverse)


# What a freshly parsed update expression's nodes hold (moto/dynamodb/parsing/ast_nodes.py
# ``Node.__init__``): their class name, their children, their parent.
_PLAIN_NODE_ATTRIBUTES = frozenset(("type", "children", "parent"))


def is_plain_tree(node: Any) -> bool:
    """Whether every node of the tree holds only ``_PLAIN_NODE_ATTRIBUTES`` and every other
    child is a str or an int (all a parse makes): what ``copy_plain_tree`` copies as deepcopy."""
    from moto.dynamodb.parsing.ast_nodes import Node

    if not isinstance(node, Node):
        return type(node) in (str, int)
    if vars(node).keys() != _PLAIN_NODE_ATTRIBUTES or not isinstance(node.children, list | None):
        return False
    return all(is_plain_tree(child) for child in node.children or ())


def copy_plain_tree(node: Any, parent: Any = None) -> Any:
    """``copy.deepcopy`` of a tree ``is_plain_tree`` accepts: new nodes, new lists of children,
    each node's parent its copied parent, the same (immutable) leaves."""
    if type(node) in (str, int):
        return node
    copied = object.__new__(type(node))
    children = node.children
    copied.__dict__.update(
        type=node.type,
        parent=parent,
        children=None if children is None else [copy_plain_tree(child, copied) for child in children],
    )
    return copied


def traverse_update_trees_by_node_type(patches: PatchSet) -> None:
    """moto validates an UpdateItem's expression tree with ten passes (moto/dynamodb/parsing/
    validators.py ``UpdateExpressionValidator.get_ast_processors``), each a walk of the whole tree
    (parsing/ast_nodes.py ``DepthFirstTraverser.traverse_node_recursively``) that, at every node,
    asks ``isinstance`` of abstract classes (slow checks through ``ABCMeta``) and rebuilds the
    pass's processing map twice: half of UpdateItem's time. Which processor a node gets depends
    only on its class, so each walk looks it up once per class; nodes are visited, processed and
    replaced in the same order, with the same hooks (a speed fix only: the same answers and
    errors). A pass whose class changes how moto walks is walked by moto."""
    from moto.dynamodb.parsing import ast_nodes

    traverser = ast_nodes.DepthFirstTraverser
    moto_walking = (traverser.traverse_node_recursively, traverser.process, traverser.nodes_to_be_processed)
    moto_hook = traverser.pre_processing_of_child
    node_class = ast_nodes.Node
    is_node: dict[type, bool] = {}
    # A pass's node classes (its map's keys, in order) -> node class -> that class's processor's
    # position in the map, or -1 (none: the node is left as it is).
    positions: dict[tuple[type, ...], dict[type, int]] = {}

    def traverse(self: Any, node: Any) -> Any:
        walker = type(self)
        if (walker.traverse_node_recursively, walker.process, walker.nodes_to_be_processed) != moto_walking:
            return self.traverse_node_recursively(node)
        processing = self._processing_map()
        kinds = tuple(processing)
        processors = tuple(processing.values())
        position_of = positions.setdefault(kinds, {})
        hook = None if walker.pre_processing_of_child is moto_hook else self.pre_processing_of_child

        def visit(node: Any, child_id: int) -> Any:
            cls = type(node)
            a_node = is_node.get(cls)
            if a_node is None:
                a_node = is_node[cls] = isinstance(node, node_class)
            if not a_node:
                return node
            parent = node.parent
            if node.children is not None:
                for i, child in enumerate(node.children):
                    if hook is not None:
                        hook(node, i)
                    visit(child, i)
            position = position_of.get(cls)
            if position is None:
                position = position_of[cls] = next((i for i, k in enumerate(kinds) if isinstance(node, k)), -1)
            if position >= 0:
                node = processors[position](node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
            return node

        return visit(node, -1)

    traverse.__wrapped__ = traverser.traverse  # type: ignore[attr-defined]  # moto's, for the tests
    patches.set(traverser, "traverse", traverse)


def search_update_trees_by_node_type(patches: PatchSet) -> None:
    """moto's ``Node.find_clauses`` (moto/dynamodb/parsing/ast_nodes.py), which its validator
    and UpdateItem handler call on every node, asks ``isinstance`` of two abstract classes
    (``ABCMeta``) at each child to decide whether to search below it. The answer depends only on
    the child's class, so it is asked once per class; the clauses are found in the same order (a
    speed fix only)."""
    from moto.dynamodb.parsing import ast_nodes

    searched_classes = (ast_nodes.Expression, ast_nodes.UpdateExpressionFunction)
    is_searched: dict[type, bool] = {}

    def find_clauses(self: Any, clause_types: list[type]) -> list[Any]:
        clauses = []
        for child in self.children or []:
            cls = type(child)
            if cls in clause_types:
                clauses.append(child)
                continue
            searched = is_searched.get(cls)
            if searched is None:
                searched = is_searched[cls] = isinstance(child, searched_classes)
            if searched:
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    find_clauses.__wrapped__ = ast_nodes.Node.find_clauses  # type: ignore[attr-defined]  # moto's
    patches.set(ast_nodes.Node, "find_clauses", find_clauses)


# Distinct condition expressions kubestep sends: a few dozen.
MAX_LEXED_CONDITION_EXPRESSIONS = 4096


def lex_each_condition_expression_once(patches: PatchSet) -> None:
    """moto parses a ConditionExpression twice per UpdateItem and PutItem (moto/dynamodb/
    responses.py ``update_item``/``put_item`` to find the placeholders it uses, then the backend
    to evaluate it), and each parse starts by cutting the text into tokens, trying a dozen
    regular expressions at each (comparisons.py ``ConditionExpressionParser.
    _lex_condition_expression``): a third of a conditional PutItem's time. The tokens depend on
    the text alone (names and values are looked up in later steps), so each text is cut once;
    each parse gets its own tokens (the same tuples, each with a new empty list of children) in
    the same order. A text that does not cut is not cached: it raises moto's error each time (a
    speed fix only: the answer is the same)."""
    from collections import deque

    from moto.dynamodb.comparisons import ConditionExpressionParser

    moto_lex = ConditionExpressionParser._lex_condition_expression
    lock = threading.Lock()
    lexed: dict[str, tuple[Any, ...]] = {}

    def _lex_condition_expression(self: Any) -> Any:
        text = self.condition_expression
        tokens = lexed.get(text)
        if tokens is None:
            tokens = tuple(moto_lex(self))
            with lock:
                if len(lexed) >= MAX_LEXED_CONDITION_EXPRESSIONS:
                    lexed.clear()
                lexed[text] = tokens
        return deque(token._replace(children=[]) for token in tokens)

    _lex_condition_expression.__wrapped__ = moto_lex  # type: ignore[attr-defined]  # moto's, for the tests
    patches.set(ConditionExpressionParser, "_lex_condition_expression", _lex_condition_expression)


# The items moto's ``Table.all_items`` gives the Query running on this thread: (table, items).
_QUERY_CANDIDATES = threading.local()


def query_only_matching_items(patches: PatchSet) -> None:
    """moto answers every Query by sorting every item of the table (``Table.all_items``), then
    keeping those of the asked partition (moto/dynamodb/models/table.py ``Table.query``): a read of
    one cluster's partition cost in proportion to every cluster, report and event in the table,
    and Query was the emulator's costliest read. While a Query runs, ``all_items`` gives it only
    the items its key condition can keep (``query_candidates``); moto's own filtering, sorting and
    paging run on those unchanged, so the answer is the same (a speed fix only). No index is kept
    beside the table: the candidates are read from ``Table.items`` at each Query, so no write
    path (put, update, delete, batch, transaction, a restored table) can leave them stale."""
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items

    def all_items(self: Any) -> list[Any]:
        narrowed = getattr(_QUERY_CANDIDATES, "value", None)
        if narrowed is not None and narrowed[0] is self:
            return narrowed[1]
        return original_all_items(self)

    def query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: Any,
        projection_expressions: Any,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        hash_key_conditions: list[tuple[str, Any]] | None = None,
        range_key_conditions: Any = None,
        **filter_kwargs: Any,
    ) -> Any:
        candidates = query_candidates(self, hash_key, index_name, hash_key_conditions)
        _QUERY_CANDIDATES.value = None if candidates is None else (self, candidates)
        try:
            return original_query(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name,
                consistent_read,
                filter_expression,
                hash_key_conditions=hash_key_conditions,
                range_key_conditions=range_key_conditions,
                **filter_kwargs,
            )
        finally:
            _QUERY_CANDIDATES.value = None

    patches.set(Table, "all_items", all_items)
    patches.set(Table, "query", query)


def query_candidates(
    table: Any, hash_key: Any, index_name: str | None, hash_key_conditions: list[tuple[str, Any]] | None
) -> list[Any] | None:
    """Every item a Query's partition key condition keeps, in no particular order (moto sorts
    them itself, on keys unique per item), or None to let moto read the whole table.

    On the table, the partition is ``Table.items[hash_key]``: moto files each item under its
    hash key, and ``DynamoType`` hashes by what it compares. On an index, one pass over the items
    with moto's own test (the attribute present and equal), without sorting the whole table: an
    item without the attribute is not in a sparse index, one whose attribute changed answers by
    its value now."""
    if not index_name:
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)  # .get: ``items`` is a defaultdict
        if partition is None:
            return []
        return list(partition.values()) if table.range_key_attr else [partition]
    if not hash_key_conditions or index_name not in {i.name for i in table.all_indexes()}:
        return None  # moto's own answer (its error for an unknown index)
    found = []
    for stored in table.items.values():
        for item in stored.values() if table.range_key_attr else (stored,):
            if all(_equal(item.attrs.get(name), value) for name, value in hash_key_conditions):
                found.append(item)
    return found


def _equal(stored: Any, wanted: Any) -> bool:
    return bool(stored) and stored == wanted


# Values moto keeps in a DynamoType that ``copy.deepcopy`` gives back as they are.
_IMMUTABLE = (str, bytes, int, float, bool, type(None))


def build_item_json_in_one_pass(patches: PatchSet) -> None:
    """moto's ``DynamoType.to_regular_json`` deep-copies its value, then calls itself on each
    nested value, which deep-copies that again (moto/dynamodb/models/dynamo_type.py): a value
    nested n deep is copied n times, and ``Item.to_json`` runs it on every map and list
    attribute, twice per UpdateItem (the old and the new image). Half of UpdateItem's time went
    there on kubestep's cluster record, a map of maps. The same JSON is built in one pass: fresh
    dicts and lists, the same leaves, binary decoded as before (a speed fix only: the answer is
    the same, and shares nothing mutable with the stored item)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    moto_own = DynamoType.to_regular_json

    def regular(value: Any) -> Any:
        if isinstance(value, DynamoType):
            return value.to_regular_json()
        if isinstance(value, _IMMUTABLE):
            return value
        return copy.deepcopy(value)

    def to_regular_json(self: Any) -> dict[str, Any]:
        value = self.value
        if isinstance(value, dict):
            value = {key: regular(nested) for key, nested in value.items()}
        elif isinstance(value, list):
            value = [regular(nested) for nested in value]
        else:
            value = regular(value)
        if self.is_binary() and isinstance(value, str):
            value = base64.b64decode(value)
        return {self.type: value}

    to_regular_json.__wrapped__ = moto_own  # type: ignore[attr-defined]  # moto's, for the tests
    patches.set(DynamoType, "to_regular_json", to_regular_json)


class _ReadItemsInPlace:
    """moto's ``copy`` module as its DynamoDB request handlers see it: an item is not copied."""

    def __init__(self, item_class: type) -> None:
        self._item_class = item_class

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._item_class):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def read_old_image_without_a_copy(patches: PatchSet) -> None:
    """moto's UpdateItem handler deep-copies the item before the update (moto/dynamodb/
    responses.py ``update_item``: ``existing_item``) only to read its JSON once, before the
    update runs, for the ALL_OLD, UPDATED_OLD and UPDATED_NEW answers. ``Item.to_json`` builds
    fresh dicts and lists around immutable leaves (as moto's own PutItem handler relies on, reading
    the old item without a copy), so the old image read from the item itself is the same; the
    copy was a fifth of UpdateItem's time (a speed fix only: the answer is the same)."""
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import Item

    patches.set(responses, "copy", _ReadItemsInPlace(Item))


def size_items_in_one_pass(patches: PatchSet) -> None:
    """moto's ``DynamoType.size`` rebuilds every value of a map as a new DynamoType, which
    rebuilds everything below it, before sizing it (moto/dynamodb/models/dynamo_type.py
    ``size``): sizing a map nested n deep rebuilds its leaves n times. moto sizes every item
    it answers a BatchGetItem with (twice), a Query or Scan with, and the whole item again at
    each attribute it sets (``LimitedSizeDict``): a third of BatchGetItem's time on kubestep's
    cluster record. The same sizes are summed without the rebuilds (a speed fix only: the
    400 KB item limit and the 16 MB and 1 MB result limits apply at the same bytes)."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    moto_own = DynamoType.size

    def sized(value: Any) -> int:
        # What ``DynamoType(value).size()`` gives, without the copy when it is a DynamoType.
        return (value if type(value) is DynamoType else DynamoType(value)).size()

    def size(self: Any) -> int:
        value = self.value
        if self.is_number():
            return len(str(value))
        if self.is_set():  # each member sized as a value of the set's scalar type
            if self.type[0] == "N":
                return sum(len(str(member)) for member in value)
            return sum(bytesize(member) for member in value)
        if self.is_list():
            return sum(member.size() for member in value)
        if self.is_map():
            return sum(bytesize(key) + sized(member) for key, member in value.items())
        if isinstance(value, bool):
            return 1
        return bytesize(value)

    size.__wrapped__ = moto_own  # type: ignore[attr-defined]  # moto's, for the tests
    patches.set(DynamoType, "size", size)


def project_only_the_named_attributes(patches: PatchSet) -> None:
    """moto projects an item (a read's ProjectionExpression) by converting the whole item to
    Python values once per attribute named (moto/dynamodb/models/dynamo_type.py ``Item.project``:
    ``self.to_regular_json()`` inside its loop over the expressions), then picking the named
    ones: five names read from a cluster record converted it five times. When every name is a
    top-level attribute, only those attributes are converted, once each, the same way (the
    item's other attributes never reach the answer); a nested path or a list element is
    projected by moto as before (a speed fix only: the answer is the same)."""
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.dynamo_type import Item

    moto_own = Item.project

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        names = [path[0] for path in projection_expressions if len(path) == 1 and "[" not in path[0]]
        if len(names) != len(projection_expressions):
            return moto_own(self, projection_expressions)
        picked = {
            name: dynamo_type.deserializer.deserialize(self.attrs[name].to_regular_json())
            for name in dict.fromkeys(names)
            if name in self.attrs
        }
        return Item(
            hash_key=self.hash_key, range_key=self.range_key, attrs=dynamo_type.serializer.serialize(picked)["M"]
        )

    project.__wrapped__ = moto_own  # type: ignore[attr-defined]  # moto's, for the tests
    patches.set(Item, "project", project)


# moto's item size limit (moto/dynamodb/models/dynamo_type.py ``LimitedSizeDict``): DynamoDB's
# 400 KB, which moto measured between 409 and 410 KB.
MOTO_ITEM_SIZE_LIMIT = 405000


def build_items_in_one_pass(patches: PatchSet) -> None:
    """moto builds an item attribute by attribute into a ``LimitedSizeDict``, which sizes every
    attribute already there at each one it adds, to refuse an item over 400 KB (moto/dynamodb/
    models/dynamo_type.py ``Item.__init__``, ``LimitedSizeDict.__setitem__``): every PutItem
    and every projected read sized its item once per attribute. Nothing changes the attributes
    while the item is built, so a running total gives the same sizes: the item is refused at
    the same attribute, with the same error (DynamoDB developer guide, "Item sizes"; a speed
    fix only). Later writes to an item's attributes go through moto's check as before."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    moto_own = Item.__init__

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        total = 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            total += bytesize(key) + typed.size()
            if total > MOTO_ITEM_SIZE_LIMIT:
                raise ItemSizeTooLarge
            dict.__setitem__(self.attrs, key, typed)

    __init__.__wrapped__ = moto_own  # type: ignore[attr-defined]  # moto's, for the tests
    patches.set(Item, "__init__", __init__)
