"""DynamoDB updates of the shapes a run makes, applied from a plan, with moto's answers.

Part of the local mode's speed-ups (:mod:`fanout.local.moto.speedups` applies it);
``tests/e2e/test_planned_updates.py`` holds it to moto's own walks.

moto applies an update by copying its parsed tree, walking the copy with ten validators
(values filled in, attributes read, functions evaluated, types and keys checked) and
walking it once more to execute it, each attribute set weighing the whole item again.
A run makes about nine updates per item, all of a few shapes: ``SET`` of a value, of an
attribute or of ``if_not_exists(attribute, value)``, ``REMOVE`` and ``ADD`` of a number,
on top-level attributes. For those, :func:`planned_updates` reads the parsed tree once
into a plan (what each action writes, in the order moto executes them) and applies it
to the item directly:

- A plan is used only once moto's own walks have applied the same expression, with the
  same attribute names, to a table with the same keys: the checks that depend on those
  alone (its syntax, the names defined, one clause of each kind, no overlapping paths,
  no key attribute written, reserved words) passed then and pass now.
- What depends on the call is looked at before anything is written: a value not defined,
  an attribute read that is missing, a map, list or set read (moto shares or changes
  those in place), an ``ADD`` of anything but a number or to anything but a number, a
  type against the table's attribute definitions, an empty string or binary set on a key
  of the table or an index. Any of these, an item that does not exist yet, legacy
  parameters or a table with a stream, and the update goes to moto's walks, which raise
  moto's error or do what moto does.
- The condition is judged as moto judges it (its parser, its evaluation; in a
  transaction, which judged it a moment before, not again:
  :func:`fanout.local.moto.conditions.conditions_judged_once`), then the writes are made
  in moto's order: each ``SET`` and ``ADD`` in the order of the expression, the
  ``REMOVE`` actions before the next of those (moto's ``normalize``). With the item-size
  limit in place (:func:`fanout.local.moto.limits.dynamodb_item_size`) the item is
  weighed once and each set checked against that weight changed by its own attribute,
  which is what weighing it whole at every set gives; an update over the limit stops at
  the set that crosses it, as moto's does, with moto's error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fanout.local.moto import limits
from fanout.local.moto.conditions import in_judged_transaction
from fanout.local.moto.expressions import set_refused

Restore = Callable[[], None]

#: One write of a plan: ("set", name, the name as the expression spells it, operand),
#: ("add", name, value placeholder) or ("remove", name). An operand is ("value", ":v"),
#: ("read", name) or ("if_not_exists", name, ":v").
Step = tuple[Any, ...]

class _Unsure(Exception):
    """This call is left to moto's walks."""


def plan_of(tree: Any, names: dict[str, str]) -> tuple[Step, ...] | None:
    """The writes of a parsed update expression in moto's order, or None for a shape
    this module does not apply (moto's walks do, every time)."""
    from moto.dynamodb.parsing import ast_nodes

    a: Any = ast_nodes
    containers = (a.UpdateExpression, a.UpdateExpressionSetClause,
                  a.UpdateExpressionSetActions, a.UpdateExpressionRemoveClause,
                  a.UpdateExpressionRemoveActions, a.UpdateExpressionAddClause,
                  a.UpdateExpressionAddActions)

    def top_level(path: Any) -> tuple[str, str]:
        """(the attribute's name, the name as spelled: a placeholder or the name)."""
        if type(path) is not a.UpdateExpressionPath or len(path.children) != 1:
            raise _Unsure("a nested path")
        part = path.children[0]
        if type(part) is a.ExpressionAttributeName and part.children[0] in names:
            return str(names[part.children[0]]), str(part.children[0])
        if type(part) is a.ExpressionAttribute:
            return str(part.children[0]), str(part.children[0])
        raise _Unsure(type(part).__name__)

    def placeholder(node: Any) -> str:
        if type(node) is not a.ExpressionAttributeValue:
            raise _Unsure("not a value")
        return str(node.children[0])

    def operand(node: Any) -> Step:
        if type(node) is not a.UpdateExpressionValue or len(node.children) != 1:
            raise _Unsure("an operation")
        inner = node.children[0]
        if type(inner) is a.ExpressionAttributeValue:
            return ("value", placeholder(inner))
        if type(inner) is a.UpdateExpressionPath:
            return ("read", top_level(inner)[0])
        if (type(inner) is a.UpdateExpressionFunction and len(inner.children) == 3
                and inner.children[0] == "if_not_exists"):
            return ("if_not_exists", top_level(inner.children[1])[0],
                    placeholder(inner.children[2]))
        raise _Unsure(type(inner).__name__)

    ordered: list[Step] = []
    removes: list[Step] = []

    def walk(node: Any) -> None:
        kind = type(node)
        if kind is a.UpdateExpressionSetAction:
            path, value = node.children
            ordered.extend(removes)
            removes.clear()
            ordered.append(("set", *top_level(path), operand(value)))
        elif kind is a.UpdateExpressionAddAction:
            path, value = node.children
            ordered.extend(removes)
            removes.clear()
            ordered.append(("add", top_level(path)[0], placeholder(value)))
        elif kind is a.UpdateExpressionRemoveAction and len(node.children) == 1:
            removes.append(("remove", top_level(node.children[0])[0]))
        elif kind in containers:
            for child in node.children:
                walk(child)
        else:
            raise _Unsure(kind.__name__)

    try:
        walk(tree)
    except _Unsure:
        return None
    return (*ordered, *removes)


def _writes(plan: tuple[Step, ...], item: Any, values: Any, table: Any) -> list[Any]:
    """(name, the value it gets, or None to remove it), each; raises :class:`_Unsure`
    where moto's walks would refuse the update or do something this does not."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    attrs = item.attrs
    defined = values if isinstance(values, dict) else {}

    def value(name: str) -> Any:
        raw = defined.get(name)
        if raw is None:
            raise _Unsure("a value not defined")
        return DynamoType(raw)

    def read(name: str) -> Any:
        held = attrs.get(name)
        if held is not None and (type(held) is not DynamoType
                                 or held.type not in limits.SCALAR_TYPES):
            raise _Unsure("a map, list or set read")
        return held

    writes: list[Any] = []
    for step in plan:
        kind = step[0]
        if kind == "remove":
            writes.append((step[1], None))
            continue
        if kind == "add":
            added = value(step[2])
            held = read(step[1])
            if added.type != "N" or (held is not None and held.type != "N"):
                raise _Unsure("an ADD that is not of numbers")
            writes.append((step[1], (DynamoType({"N": "0"}) if held is None else held) + added))
            continue
        _, name, spelled, (how, *args) = step
        if how == "value":
            new = value(args[0])
        elif how == "read":
            new = read(args[0])
            if new is None:
                raise _Unsure("an attribute that does not exist")
        else:
            fallback = value(args[1])
            new = read(args[0])
            new = fallback if new is None else new
        refused = set_refused(table, spelled, new)
        if refused:
            raise _Unsure(refused)
        writes.append((name, new))
    return writes


def _apply(item: Any, writes: list[Any]) -> None:
    """Make the writes in order, each set refused (moto's error) where it would make the
    item larger than the limit in place allows."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge, ItemSizeToUpdateTooLarge

    attrs = item.attrs
    if not limits.item_size_enforced():  # moto's own weighing, at each set
        try:
            for name, new in writes:
                if new is None:
                    attrs.pop(name, None)
                else:
                    attrs[name] = new
        except ItemSizeTooLarge:
            raise ItemSizeToUpdateTooLarge() from None
        return
    weight = limits.item_weight(attrs)
    for name, new in writes:
        old = attrs.get(name)
        was = 0 if old is None else limits.attribute_weight(attrs, name, old)
        if new is None:
            if old is not None:
                del attrs[name]
                weight -= was
            continue
        now = limits.attribute_weight(attrs, name, new)
        if weight - was + now > limits.DYNAMODB_ITEM_BYTES:
            raise ItemSizeToUpdateTooLarge()
        dict.__setitem__(attrs, name, new)
        weight += now - was


def planned_updates() -> Restore:
    """UpdateItem (alone or in a transaction) applied from a plan where it can be (see
    the module's docstring); moto's walks otherwise. Returns the function that undoes it."""
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import ItemSizeToUpdateTooLarge
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing import expressions

    # moto's own names, looked up where moto's update finds them (patches included)
    models_module: Any = models
    parser: Any = getattr(expressions, "UpdateExpressionParser")  # noqa: B009

    inner = DynamoDBBackend.update_item
    #: (expression, attribute names, the table's keys) that moto's walks have applied
    proven: set[tuple[Any, ...]] = set()

    @functools.lru_cache(maxsize=1024)
    def plan_for(expression: str, names: tuple[tuple[str, str], ...]) -> Any:
        return plan_of(parser.make(expression), dict(names))

    def update_item(self: Any, table_name: str, key: dict[str, Any], update_expression: str,
                    expression_attribute_names: Any, expression_attribute_values: Any,
                    attribute_updates: Any = None, expected: Any = None,
                    condition_expression: str | None = None,
                    return_values_on_condition_check_failure: str | None = None) -> Any:
        def walks() -> Any:
            return inner(self, table_name, key, update_expression, expression_attribute_names,
                         expression_attribute_values, attribute_updates, expected,
                         condition_expression, return_values_on_condition_check_failure)

        table = self.get_table(table_name)
        if attribute_updates or expected or not update_expression \
                or table.stream_shard is not None:
            return walks()
        names = tuple(sorted((expression_attribute_names or {}).items()))
        proof = (update_expression, names, tuple(table.table_key_attrs))
        if proof not in proven:
            try:
                item = walks()
            except ItemSizeToUpdateTooLarge:  # refused as it was made: its checks passed
                proven.add(proof)
                raise
            proven.add(proof)
            return item
        plan = plan_for(update_expression, names)
        hash_name, range_name = table.hash_key_attr, table.range_key_attr
        if plan is None or hash_name not in key or (range_name is not None
                                                    and range_name not in key):
            return walks()
        from moto.dynamodb.models.dynamo_type import DynamoType

        item = table.get_item(DynamoType(key[hash_name]),
                              None if range_name is None else DynamoType(key[range_name]))
        if item is None:  # moto makes it, as it does
            return walks()
        if not in_judged_transaction():  # (a transaction's was judged a moment ago)
            condition = models_module.create_condition_expression_parser(
                condition_expression, expression_attribute_names,
                expression_attribute_values)
            if not condition.parse().expr(item):
                if return_values_on_condition_check_failure == "ALL_OLD":
                    raise models_module.ConditionalCheckFailed(
                        item=item.to_json()["Attributes"])
                raise models_module.ConditionalCheckFailed
        try:
            writes = _writes(plan, item, expression_attribute_values, table)
        except _Unsure:
            return walks()
        _apply(item, writes)
        return item

    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]

    def restore() -> None:
        DynamoDBBackend.update_item = inner  # type: ignore[method-assign]

    return restore
