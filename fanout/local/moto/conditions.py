"""Cheaper paths through moto's DynamoDB condition expressions, same answers.

Part of the local mode's speed-ups (:mod:`fanout.local.moto.speedups`, which applies
them); ``tests/e2e/test_speedups.py`` checks each against moto's own parses.
"""

from __future__ import annotations

import copy
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
