"""Cheaper paths through moto's DynamoDB for the calls a run makes thousands of times.

Same answers as moto's own (``tests/e2e/test_speedups.py``, ``tests/e2e/test_emulation.py``);
applied by :func:`fanout.local.moto.speedups.apply` with the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import Any

from fanout.local.moto import answers

Restore = Callable[[], None]



class _Unsupported(Exception):
    """The fast walk does not cover this value: moto's serializer does it."""


class _ShapeWalk:
    """moto's JSON response serialization of plain dicts, with the field lookups cached."""

    possible_keys = staticmethod(answers.dict_keys)

    def pick(self, value: Any, shape: Any, key: str) -> Any:
        if not isinstance(value, dict):
            raise _Unsupported(type(value).__name__)
        for possible in self.possible_keys(shape, key):
            if "." in possible:
                raise _Unsupported(possible)
            if possible in value:
                return value[possible]
        return None

    def serialize(self, serialized: dict[str, Any], value: Any, shape: Any, key: str) -> None:
        kind = shape.type_name
        name = shape.serialization.get("name", key) if key else key
        if kind == "structure":
            if shape.is_document_type:
                serialized[key] = value
                return
            if value is None:
                return
            wrapper: dict[str, Any] = {} if key else serialized
            for member_key, member_shape in shape.members.items():
                member_shape.parent = shape  # as moto's serializer sets it
                member_value = self.pick(value, member_shape, member_key)
                if member_value is not None:
                    self.serialize(wrapper, member_value, member_shape, member_key)
            if key:
                serialized[name] = wrapper
        elif kind == "map":
            map_obj: dict[str, Any] = {}
            serialized[name] = map_obj
            for sub_key, sub_value in value.items():
                self.serialize(map_obj, sub_value, shape.value, sub_key)
        elif kind == "list":
            list_obj = []
            item_key = shape.member.name
            for item in value:
                holder: dict[str, Any] = {}
                self.serialize(holder, item, shape.member, item_key)
                list_obj.append(holder.get(item_key, item))
            serialized[name] = list_obj
        elif kind == "string":
            if isinstance(value, Enum):
                value = value.value
            serialized[name] = str(value) if value not in [None, {}, []] else value
        elif kind in ("integer", "long"):
            serialized[name] = int(value)
        elif kind in ("float", "double"):
            serialized[name] = float(value)
        elif kind == "boolean":
            serialized[name] = value
        else:  # blob, timestamp, anything else: moto's own rules
            raise _Unsupported(kind)


def plain_strings_and_sizes() -> Restore:
    """A string value's hash, equality and order, and an item's size, computed directly.

    moto keys its tables by ``DynamoType``: every key lookup hashes and compares values
    through ``cast_value``, which asks a value whether it is a number, a set, a list, a map
    or null before it answers a string's own value; and a query weighs every item it
    returns (its 1 MB page) by ``Item.size()``, which copies each map value before it
    weighs it. For a string (``S``) the hash, equality and order are its value's; a size is
    summed as moto sums it, without the copies. Any other type asks moto's own.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    saved = {name: DynamoType.__dict__[name] for name in ("__hash__", "__eq__", "__lt__",
                                                          "size")}
    original_item_size = Item.__dict__["size"]
    original_hash, original_eq = saved["__hash__"], saved["__eq__"]
    original_lt, original_size = saved["__lt__"], saved["size"]

    def hash_(self: Any) -> int:
        if self.type == "S":
            return hash(("S", self.value))
        return int(original_hash(self))

    def eq(self: Any, other: Any) -> bool:
        if self.type == "S" and type(other) is DynamoType and other.type == "S":
            return bool(self.value == other.value)
        return bool(original_eq(self, other))

    def lt(self: Any, other: Any) -> bool:
        if self.type == "S" and type(other) is DynamoType and other.type == "S":
            return bool(self.value < other.value)
        return bool(original_lt(self, other))

    def size(self: Any) -> int:
        kind, value = self.type, self.value
        if kind == "S":
            return len(value if isinstance(value, bytes) else value.encode("utf-8"))
        if kind == "N":
            return len(str(value))
        if kind == "M":
            return sum(len(key if isinstance(key, bytes) else key.encode("utf-8"))
                       + (held if type(held) is DynamoType else DynamoType(held)).size()
                       for key, held in value.items())
        if kind == "L":
            return sum(held.size() for held in value)
        return int(original_size(self))

    def item_size(self: Any) -> int:
        total = 0
        for key, held in self.attrs.items():
            total += len(key if isinstance(key, bytes) else key.encode("utf-8"))
            raw = held.value
            if type(held) is DynamoType and type(raw) is str and held.type in ("S", "N"):
                total += len(raw.encode("utf-8")) if held.type == "S" else len(raw)
            else:
                total += held.size()
        return total

    DynamoType.__hash__ = hash_  # type: ignore[method-assign]
    DynamoType.__eq__ = eq  # type: ignore[method-assign]
    DynamoType.__lt__ = lt  # type: ignore[method-assign]
    DynamoType.size = size  # type: ignore[method-assign]
    Item.size = item_size  # type: ignore[method-assign]

    def restore() -> None:
        for name, function in saved.items():
            setattr(DynamoType, name, function)
        Item.size = original_item_size  # type: ignore[method-assign]

    return restore


def fast_dynamodb_serializer() -> Restore:
    """Serialize DynamoDB answers by :class:`_ShapeWalk`; moto's serializer for the rest.

    moto's ``DynamoResult`` converts its answer's items to plain values as it is made (a
    walk over every attribute); here it keeps them as they are until the answer is
    written, in the same serialized call: a direct client's parsed answer
    (:class:`~fanout.local.moto.answers.ParsedWalk`) converts each value as it meets it,
    every other path converts the answer first, as moto does.
    """
    from moto import settings
    from moto.core.responses import ActionResult
    from moto.dynamodb.models.utilities import dynamo_to_dict
    from moto.dynamodb.responses import DynamoResult

    walk = _ShapeWalk()
    parsed_walk = answers.ParsedWalk(walk.possible_keys)
    original = DynamoResult.execute_result
    original_init = DynamoResult.__init__

    def init(self: Any, result: object) -> None:
        ActionResult.__init__(self, result)
        self.unconverted = True

    def converted(self: Any) -> Any:
        if getattr(self, "unconverted", False):
            self._result = dynamo_to_dict(self._result)
            self.unconverted = False
        return self._result

    def execute_result(self: Any, context: Any) -> Any:
        transformers = getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        output_shape = context.operation_model.output_shape
        result = self.result
        if (transformers or output_shape is None or isinstance(result, Exception)
                or context.operation_model.has_event_stream_output):
            converted(self)
            return original(self, context)
        serializer = context.serializer_class(
            operation_model=context.operation_model,
            pretty_print=settings.PRETTIFY_RESPONSES,
        )
        if answers.wanted():  # a direct client's call: the answer as botocore parses it
            try:
                answers.hand_over(parsed_walk.parse(result, output_shape))
            except answers.Unsupported:
                pass
            else:
                return answers.handed_response(serializer)
        result = converted(self)
        body: dict[str, Any] = serializer.MAP_TYPE()
        try:
            walk.serialize(body, result, output_shape, "")
        except _Unsupported:
            return original(self, context)
        resp = serializer._serialized_result_to_response(
            serializer._create_default_response(), result, output_shape, body
        )
        return resp["status_code"], resp["headers"], resp["body"]

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    DynamoResult.__init__ = init  # type: ignore[method-assign]

    def restore() -> None:
        DynamoResult.execute_result = original  # type: ignore[method-assign]
        DynamoResult.__init__ = original_init  # type: ignore[method-assign]

    return restore


def cheap_transactions() -> Restore:
    """TransactWriteItems and Query without moto's walks over the whole table.

    TransactWriteItems without moto's copy of every table it touches (O(table) per call):
    moto deep-copies each table to roll a cancelled transaction back; with the items of a
    run in one table that makes every launch slower than the last. Instead, the items the
    transaction names are saved and put back. Calls are serialized (see :func:`take_over`),
    so nothing else writes in between. Returns the function that undoes the change.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            name = op.get("TableName")
            if not name or name not in self.tables:
                continue
            table = self.tables[name]
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            current = self.get_item(name, key)
            attrs = detached(current.to_json()["Attributes"]) if current else None
            saved.append((name, key, attrs))
        Table.__deepcopy__ = lambda table, memo: table  # type: ignore[attr-defined]
        try:
            original(self, transact_items)
        except Exception:
            for name, key, attrs in reversed(saved):
                if attrs is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, attrs)
            raise
        finally:
            del Table.__deepcopy__  # type: ignore[attr-defined]

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    # A query on the table's own key reads every item of the table, sorted, to keep those
    # of one partition. Give it the partition (and, for begins_with or between, the
    # matching items: closing a run reads it a page at a time): moto's own key condition,
    # filters and order still apply to what it gets.
    original_query = Table.query

    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any,
              *args: Any, **kwargs: Any) -> Any:
        # moto passes index_name positionally (8th after self), sometimes by keyword.
        index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
        if index_name or not self.range_key_attr or hash_key is None:
            return original_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        items = list(self.items.get(hash_key, {}).values())
        if str(range_comparison).upper() == "BEGINS_WITH" and range_objs:
            prefix = range_objs[0].value
            items = [i for i in items if str(i.range_key.value).startswith(prefix)]
        elif str(range_comparison).upper() == "BETWEEN" and len(range_objs) == 2:
            low, high = str(range_objs[0].value), str(range_objs[1].value)
            items = [i for i in items if low <= str(i.range_key.value) <= high]
        items.sort(key=lambda item: item.range_key)
        self.all_items = lambda: items
        try:
            return original_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]

    def restore() -> None:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        Table.query = original_query  # type: ignore[method-assign]

    return restore


def detached(attrs: dict[str, Any]) -> dict[str, Any]:
    """A copy of an item's attributes sharing nothing with the table (JSON is the fast way)."""
    import copy

    try:
        copied: dict[str, Any] = json.loads(json.dumps(attrs))
    except (TypeError, ValueError):  # a value JSON cannot carry (bytes): copy it the slow way
        copied = copy.deepcopy(attrs)
    return copied


#: Two writes to one item this close together (seconds) from two callers were "at once":
#: a DynamoDB transaction holds its items for about this long (faults ``ddb_conflict``).
CONFLICT_WINDOW_SECONDS = 0.05
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"


class Contention:
    """What moto never does and DynamoDB does under load (docs/local-mode.md, "Faults"):

    - ``ddb_conflict=P``: a TransactWriteItems that touches an item another caller (thread)
      wrote in the last :data:`CONFLICT_WINDOW_SECONDS` is cancelled, with probability P,
      with reason ``TransactionConflict`` on that item (``None`` on the others), as DynamoDB
      cancels a transaction that meets another one in progress on one of its items.
    - ``ddb_hot_key=WCU``: one item takes at most WCU write units in any second (a write
      of up to 1 KB costs 1, 2 inside a transaction); beyond, a transaction is cancelled
      with reason ``ThrottlingError`` and a plain write refused with
      ``ProvisionedThroughputExceededException``. Refused writes cost nothing.
    """

    def __init__(self, conflict: float, hot_key_wcu: float, roll: Callable[[str], bool],
                 note: Callable[[str], None], clock: Callable[[], float] | None = None
                 ) -> None:
        import time

        self.conflict, self.hot_key_wcu, self.roll, self.note = conflict, hot_key_wcu, roll, note
        self.clock = clock or time.monotonic
        self._touched: dict[tuple[str, str], tuple[float, int]] = {}
        self._units: dict[tuple[str, str], list[tuple[float, int]]] = {}

    @staticmethod
    def key(params: dict[str, Any]) -> tuple[str, str]:
        from fanout.schema import PARTITION_KEY, SORT_KEY

        attrs = params.get("Key") or params.get("Item") or {}
        return (json.dumps(attrs.get(PARTITION_KEY), sort_keys=True),
                json.dumps(attrs.get(SORT_KEY), sort_keys=True))

    def _used(self, key: tuple[str, str], now: float) -> int:
        recent = [(at, units) for at, units in self._units.get(key, []) if now - at < 1.0]
        self._units[key] = recent
        return sum(units for _, units in recent)

    def transaction(self, actions: list[dict[str, Any]]) -> None:
        """Raise as DynamoDB would cancel this transaction, or count its writes."""
        import threading

        now, me = self.clock(), threading.get_ident()
        keys = [self.key(next(iter(a.values()))) for a in actions]
        written = [k for a, k in zip(actions, keys, strict=True) if "ConditionCheck" not in a]
        reasons: list[str | None] = [None] * len(keys)
        for n, key in enumerate(keys):
            at, who = self._touched.get(key, (-1e9, me))
            if self.conflict and who != me and now - at < CONFLICT_WINDOW_SECONDS \
                    and self.roll("ddb_conflict"):
                reasons[n] = "TransactionConflict"
            elif key in written and self.hot_key_wcu and \
                    self._used(key, now) + 2 > self.hot_key_wcu:
                reasons[n] = "ThrottlingError"
        if any(reasons):
            if "TransactionConflict" not in reasons:
                self.note("ddb_hot_key")
            raise _cancelled(reasons)
        for key in written:
            self._touched[key] = (now, me)
            self._units.setdefault(key, []).append((now, 2))

    def write(self, params: dict[str, Any]) -> None:
        """Raise as DynamoDB would throttle this plain write, or count it."""
        import threading

        now, key = self.clock(), self.key(params)
        if self.hot_key_wcu and self._used(key, now) + 1 > self.hot_key_wcu:
            self.note("ddb_hot_key")
            from moto.dynamodb.exceptions import DynamodbException

            raise DynamodbException(
                _ERROR_PREFIX + "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was "
                "exceeded. Consider increasing your provisioning level with the "
                "UpdateTable API.")
        self._touched[key] = (now, threading.get_ident())
        self._units.setdefault(key, []).append((now, 1))


def _cancelled(reasons: list[str | None]) -> Exception:
    from moto.dynamodb.exceptions import TransactionCanceledException

    messages = {"TransactionConflict": "Transaction is ongoing for the item",
                "ThrottlingError": "Throughput exceeds the current capacity for one or "
                                   "more items"}
    return TransactionCanceledException(
        [(r, messages.get(r or ""), None) for r in reasons])


def contention(emulated: Contention) -> Restore:
    """Have moto's DynamoDB answer as :class:`Contention` says (calls are serialized, so
    the handlers' state needs no lock of its own)."""
    from moto.dynamodb.responses import DynamoHandler

    saved = {name: getattr(DynamoHandler, name)
             for name in ("transact_write_items", "put_item", "update_item", "delete_item")}

    def wrap(name: str) -> Any:
        original = saved[name]

        def action(self: Any) -> Any:
            if name == "transact_write_items":
                emulated.transaction(self.body["TransactItems"])
            else:
                emulated.write(self.body)
            return original(self)

        return action

    for name in saved:
        setattr(DynamoHandler, name, wrap(name))

    def restore() -> None:
        for name, original in saved.items():
            setattr(DynamoHandler, name, original)

    return restore
