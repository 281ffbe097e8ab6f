"""Cheaper paths through moto's DynamoDB condition expressions, same answers.

Part of the local mode's speed-ups (:mod:`fanout.local.moto.speedups`, which applies
them); ``tests/e2e/test_speedups.py`` checks each against moto's own parses
(``tests/e2e/test_planned_updates.py`` the conditions judged once).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

Restore = Callable[[], None]


def cached_condition_lexing() -> Restore:
    """Lex each DynamoDB condition expression once.

    moto splits a condition expression into tokens with a dozen regular expressions, token
    by token, on every conditional write (several per item), before it puts the names and
    values in. The tokens depend on the expression's text alone and are immutable tuples:
    each parse gets a fresh deque of the same tokens, which it consumes as moto's would.
    """
    from collections import deque

    from moto.dynamodb import comparisons

    Parser = getattr(comparisons, "ConditionExpressionParser")  # noqa: B009
    original = Parser.__dict__["_lex_condition_expression"]
    lexed: dict[str, tuple[Any, ...]] = {}

    def lex(self: Any) -> Any:
        text = self.condition_expression
        tokens = lexed.get(text)
        if tokens is None:
            tokens = tuple(original(self))
            if len(lexed) > 4096:
                lexed.clear()
            lexed[text] = tokens
        return deque(tokens)

    Parser._lex_condition_expression = lex

    def restore() -> None:
        Parser._lex_condition_expression = original

    return restore


def cached_condition_parses() -> Restore:
    """Parse each DynamoDB condition once per expression, names and value placeholders.

    moto parses a condition expression (paths, functions, comparisons, AND/OR, names and
    values put in) on every conditional write, and the run makes several per item, most with
    the same expression and names but values of their own (a lease's ``:now``, a counter's
    ``:prev``). The parse depends on the expression's text, the attribute names and which
    value placeholders are defined, never on the values themselves: moto only looks a value
    up and wraps it in an ``AttributeValue`` leaf, read when the condition is judged (but
    for ``BETWEEN``, which refuses a NULL bound as it is built: a call with a NULL value is
    parsed by moto's own parse). So a parse is kept per (text, every name, the placeholders
    the text may name), made once with a hole in each value's leaf; each call gets a copy of
    the nodes above the holes with its own values in them, sharing the rest of the kept
    tree (a tree, or a branch, without values is given as it is: it is only read), and the
    names and values found noted as the parse notes them. A parse
    that fails is not kept: moto's own parse runs on the call's own values and raises moto's
    error.
    """
    from moto.dynamodb import comparisons

    Parser = getattr(comparisons, "ConditionExpressionParser")  # noqa: B009
    Value = getattr(comparisons, "AttributeValue")  # noqa: B009
    Op, Func = getattr(comparisons, "Op"), getattr(comparisons, "Func")  # noqa: B009
    original = Parser.__dict__["parse"]
    #: (text, names, placeholders) -> (the tree, ids of its nodes holding a hole, the names
    #: and values the parse found)
    parsed: dict[tuple[Any, ...], tuple[Any, frozenset[int], list[str], list[str]]] = {}

    class Hole(str):
        """A value's place in a kept tree (what a value's leaf holds until it is filled)."""

    def fill(node: Any, values: dict[str, Any], memo: dict[int, Any],
             holed: frozenset[int]) -> Any:
        if id(node) not in holed:  # nothing to fill below: the kept node, only read
            return node
        done = memo.get(id(node))
        if done is not None:
            return done
        if isinstance(node, Value):
            new = Value(values[node.value]) if isinstance(node.value, Hole) else node
        elif isinstance(node, (list, tuple)):
            new = type(node)(fill(child, values, memo, holed) for child in node)
        elif isinstance(node, (Op, Func)):
            new = copy.copy(node)
            for name, child in vars(node).items():
                if isinstance(child, (Op, Func, Value, list, tuple)):
                    setattr(new, name, fill(child, values, memo, holed))
        else:
            new = node
        memo[id(node)] = new
        return new

    def holes_in(node: Any, holed: set[int]) -> bool:
        """Whether ``node`` holds a hole; the ids of every node that does, into ``holed``."""
        if isinstance(node, Value):
            found = isinstance(node.value, Hole)
        elif isinstance(node, (list, tuple)):
            found = any([holes_in(child, holed) for child in node])
        elif isinstance(node, (Op, Func)):
            found = any([holes_in(child, holed) for child in vars(node).values()])
        else:
            found = False
        if found:
            holed.add(id(node))
        return found

    def parse(self: Any) -> Any:
        text = self.condition_expression
        if not text:
            return original(self)
        values = self.expression_attribute_values or {}
        names = self.expression_attribute_names or {}
        key = (text, tuple(sorted(names.items())), tuple(sorted(k for k in values if k in text)))
        if any("NULL" in values[k] for k in key[2]):
            return original(self)  # BETWEEN refuses a NULL bound as its tree is built
        kept = parsed.get(key)
        if kept is None:
            names_before = len(self.expr_attr_names_found)
            values_before = len(self.expr_attr_values_found)
            self.expression_attribute_values = {k: {"S": Hole(k)} for k in key[2]}
            try:
                tree = original(self)
            except Exception:  # moto's own parse, on the call's values, raises moto's error
                del self.expr_attr_names_found[names_before:]
                del self.expr_attr_values_found[values_before:]
                self.expression_attribute_values = values
                return original(self)
            finally:
                self.expression_attribute_values = values
            if len(parsed) > 4096:
                parsed.clear()
            holed: set[int] = set()
            holes_in(tree, holed)
            parsed[key] = kept = (tree, frozenset(holed),
                                  self.expr_attr_names_found[names_before:],
                                  self.expr_attr_values_found[values_before:])
        else:
            self.expr_attr_names_found.extend(kept[2])
            self.expr_attr_values_found.extend(kept[3])
        tree, holes = kept[0], kept[1]
        return fill(tree, values, {}, holes) if holes else tree

    Parser.parse = parse

    def restore() -> None:
        Parser.parse = original

    return restore


#: Set while moto applies a transaction's writes, each condition judged just before
#: (:func:`conditions_judged_once`); read by :mod:`fanout.local.moto.updates` too.
JUDGED = threading.local()


def in_judged_transaction() -> bool:
    """Whether this write's condition was judged a moment ago by its transaction."""
    return bool(getattr(JUDGED, "now", False))


def conditions_judged_once() -> Restore:
    """A transaction's Put judges its condition once, not twice.

    moto's TransactWriteItems judges each write's condition on the item it reads, then
    hands the write to PutItem or UpdateItem with the same condition, which read the same
    item again and judge it again. Nothing can change the item in between (calls are
    serialized, and a transaction names an item once), so the second verdict is the
    first's: a Put made by a transaction is handed on without its condition (an update
    from a plan skips it too, :mod:`fanout.local.moto.updates`).
    """
    from moto.dynamodb.models import DynamoDBBackend

    transact, put = DynamoDBBackend.transact_write_items, DynamoDBBackend.put_item

    def transact_write_items(self: Any, transact_items: Any) -> Any:
        JUDGED.now = True
        try:
            return transact(self, transact_items)
        finally:
            JUDGED.now = False

    def put_item(self: Any, table_name: str, item_attrs: Any, expected: Any = None,
                 condition_expression: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if getattr(JUDGED, "now", False) and not expected:
            condition_expression = None
        return put(self, table_name, item_attrs, expected, condition_expression,
                   *args, **kwargs)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend.put_item = put_item  # type: ignore[method-assign]

    def restore() -> None:
        DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
        DynamoDBBackend.put_item = put  # type: ignore[method-assign]

    return restore
