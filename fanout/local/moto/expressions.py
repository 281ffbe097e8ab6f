"""Cheaper paths through moto's DynamoDB expressions (update and condition), same answers.

Part of the local mode's speed-ups (:mod:`fanout.local.moto.speedups`, which applies
them); ``tests/e2e/test_speedups.py`` checks each against moto's own walks and parses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Restore = Callable[[], None]


def cached_update_expressions() -> Restore:
    """Parse each DynamoDB update expression once, copy it cheaply, check its form once.

    - moto reads the parsed expression (to find its names and values) and deep-copies it
      before it fills the values in, so one parse per expression string serves every call.
    - The copy is made from the parsed tree pickled once: unpickling builds the same tree
      (every node, its fields and parent links) several times faster than ``deepcopy``
      walks it. A tree that cannot be pickled is deep-copied as before.
    - moto's first two checks of an update only read the tree: at most one clause of
      each kind, no two actions on overlapping paths. Their verdict depends on the tree
      and the attribute names alone (not the values, not the item), and both walk every
      node asking for every clause below it. Once a tree has passed them with a set of
      names, later updates with the same tree and names skip them; a tree that failed
      is checked again (and fails again, with the same error).
    - The clauses moto looks for in a parsed tree (the attribute names a transaction's
      update uses) are found once per tree and clause types: a parsed tree is only read
      (each call changes its own copy), so they are the same every time.
    - The other eight walk the tree once each to fill in the values and the item's
      attributes. Once a tree has passed all ten with a set of names and a table's keys,
      :func:`_validated_in_one_walk` does their work in one walk, for the shapes it knows
      (SET of a value, of an attribute or of ``if_not_exists``; REMOVE; ADD of a value; on
      top-level attributes): the tree it gives is the one moto's walks give. Whatever it
      is unsure of (another shape, a value not defined, an attribute missing, a check that
      would fail) is validated by moto's walks from a fresh copy, raising moto's error.
    """
    import copy
    import pickle

    from moto.dynamodb.parsing import ast_nodes, expressions, validators

    UpdateExpressionParser = getattr(expressions, "UpdateExpressionParser")  # noqa: B009
    Validator = getattr(validators, "Validator")  # noqa: B009
    form_checks = (getattr(validators, "ActionCountValidator"),  # noqa: B009
                   getattr(validators, "OverlappingPathsValidator"))  # noqa: B009
    original = UpdateExpressionParser.__dict__["make"]
    original_deepcopy = getattr(validators, "deepcopy")  # noqa: B009
    original_init, original_validate = Validator.__init__, Validator.validate
    parse = functools.lru_cache(maxsize=1024)(original.__func__)
    #: id of a parsed tree -> (the tree, kept so the id stays its own; its pickle)
    pickled: dict[int, tuple[Any, bytes]] = {}
    #: (id of a parsed tree, its attribute names) that passed the form checks
    passed: set[tuple[int, tuple[tuple[str, str], ...]]] = set()
    #: (id of a parsed tree, its attribute names, the table's keys) that passed every check
    validated: set[tuple[Any, ...]] = set()
    one_walk_for = getattr(validators, "UpdateExpressionValidator")  # noqa: B009

    Root = getattr(ast_nodes, "UpdateExpression")  # noqa: B009
    find_in_node = getattr(ast_nodes, "Node").find_clauses  # noqa: B009
    #: (id of a parsed tree, the clause types asked for) -> the clauses found in it
    found: dict[tuple[int, tuple[type, ...]], list[Any]] = {}

    def find_clauses(self: Any, clause_types: Any) -> Any:
        if not known(self):
            return find_in_node(self, clause_types)
        key = (id(self), tuple(clause_types))
        clauses = found.get(key)
        if clauses is None:
            clauses = found[key] = find_in_node(self, clause_types)
        return list(clauses)

    def known(tree: Any) -> bool:
        entry = pickled.get(id(tree))
        return entry is not None and entry[0] is tree

    def make(cls: Any, expression_str: str) -> Any:
        tree = parse(cls, expression_str)
        if id(tree) not in pickled:
            try:
                frozen = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # deepcopy will do
                return tree
            if len(pickled) > 4096:  # the parse cache has moved on: start again
                pickled.clear()
                found.clear()
                passed.clear()
                validated.clear()
            pickled[id(tree)] = (tree, frozen)
        return tree

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if memo is None and known(value):
            return pickle.loads(pickled[id(value)][1])  # our own bytes
        return copy.deepcopy(value, memo)

    def init(self: Any, expression: Any, expression_attribute_names: Any, *args: Any,
             **kwargs: Any) -> None:
        original_init(self, expression, expression_attribute_names, *args, **kwargs)
        if known(expression):
            names = tuple(sorted((expression_attribute_names or {}).items()))
            self.__dict__["_fanout_form"] = (id(expression), names)

    def validate(self: Any) -> Any:
        key = self.__dict__.get("_fanout_form")
        whole = None
        if key is not None and type(self) is one_walk_for:
            whole = (*key, tuple(self.table.table_key_attrs))
            if whole in validated:
                try:
                    return _validated_in_one_walk(self)
                except _Unsure:  # moto's walks decide, on a fresh copy
                    self.node_to_validate = pickle.loads(pickled[key[0]][1])
        n = walks(self, key)
        if whole is not None:
            validated.add(whole)
        return n

    def walks(self: Any, key: Any) -> Any:
        skip = key is not None and key in passed
        left = sum(isinstance(p, form_checks) for p in self.processors)
        n = self.node_to_validate
        for processor in self.processors:
            if isinstance(processor, form_checks):
                if skip:
                    continue
                n = processor.traverse(n)
                left -= 1
                if left == 0 and key is not None:
                    passed.add(key)
            else:
                n = processor.traverse(n)
        return n

    setattr(UpdateExpressionParser, "make", classmethod(make))  # noqa: B010
    setattr(validators, "deepcopy", deepcopy)  # noqa: B010
    Validator.__init__ = init
    Validator.validate = validate
    Root.find_clauses = find_clauses

    def restore() -> None:
        del Root.find_clauses
        setattr(UpdateExpressionParser, "make", original)  # noqa: B010
        setattr(validators, "deepcopy", original_deepcopy)  # noqa: B010
        Validator.__init__ = original_init
        Validator.validate = original_validate

    return restore


class _Unsure(Exception):
    """:func:`_validated_in_one_walk` leaves this update to moto's walks."""


def _validated_in_one_walk(validator: Any) -> Any:
    """What moto's update validator's ten walks make of a tree that passed them before
    with the same attribute names and table keys, in one walk, for the shapes it knows.

    The checks that depend on the tree, the names and the table's keys alone (the form
    checks, names defined, reserved words, key attributes) passed then and pass now. What
    depends on this call (values defined, attributes present, the values' types against
    the table's key types, empty keys) is looked at here: when a check would fail,
    :class:`_Unsure` is raised and moto's walks run (and raise moto's error).

    The tree is the validator's own copy; it is changed as moto's walks change it: each
    ``:value`` becomes a ``DDBTypedValue`` of its ``DynamoType``, an attribute read in a
    SET's value becomes a ``DDBTypedValue`` of the item's own ``DynamoType``,
    ``if_not_exists`` becomes its chosen argument, a SET's ``UpdateExpressionValue``
    becomes its one child, and each node put in its parent's place gets that parent.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.parsing import ast_nodes

    a: Any = ast_nodes  # untyped

    names = validator.expression_attribute_names or {}
    values = validator.expression_attribute_values
    attrs = validator.item.attrs
    table = validator.table
    typed_value, attribute = a.DDBTypedValue, a.ExpressionAttribute
    placeholder, path_node = a.ExpressionAttributeName, a.UpdateExpressionPath

    def top_level(path: Any) -> str:
        if type(path) is not path_node or len(path.children) != 1:
            raise _Unsure("a nested path")
        part = path.children[0]
        if type(part) is placeholder:
            return str(names[part.children[0]])  # defined: the tree passed with these names
        if type(part) is attribute:
            return str(part.children[0])
        raise _Unsure(type(part).__name__)

    def value_of(node: Any) -> Any:
        if type(node) is not a.ExpressionAttributeValue or not isinstance(values, dict):
            raise _Unsure("not a value")
        raw = values.get(node.children[0])
        if raw is None:
            raise _Unsure("a value not defined")
        return typed_value(DynamoType(raw))

    def read(node: Any) -> Any:
        """A SET's operand, resolved as moto's walks resolve it; None if absent."""
        if type(node) is a.ExpressionAttributeValue:
            return value_of(node)
        if type(node) is path_node:
            held = attrs.get(top_level(node))
            return None if held is None else typed_value(held)
        if (type(node) is a.UpdateExpressionFunction and len(node.children) == 3
                and node.children[0] == "if_not_exists"):
            first, second = read(node.children[1]), read(node.children[2])
            return second if first is None else first
        raise _Unsure(type(node).__name__)

    def walk(node: Any) -> None:
        kind = type(node)
        if kind is a.UpdateExpressionSetAction:
            path, operand = node.children
            top_level(path)
            if type(operand) is not a.UpdateExpressionValue or len(operand.children) != 1:
                raise _Unsure("an operation")
            result = read(operand.children[0])
            if result is None:
                raise _Unsure("an attribute that does not exist")
            result.parent = node
            node.children[1] = result
            refused = set_refused(table, path.children[0].children[0], result.children[0])
            if refused:
                raise _Unsure(refused)
        elif kind is a.UpdateExpressionRemoveAction:
            if len(node.children) != 1:
                raise _Unsure("a REMOVE")
            top_level(node.children[0])
        elif kind is a.UpdateExpressionAddAction:
            path, operand = node.children
            top_level(path)
            added = value_of(operand)
            added.parent = node
            node.children[1] = added
        elif kind in containers:
            for child in node.children:
                walk(child)
        else:
            raise _Unsure(kind.__name__)

    containers = (a.UpdateExpression, a.UpdateExpressionSetClause,
                  a.UpdateExpressionSetActions, a.UpdateExpressionRemoveClause,
                  a.UpdateExpressionRemoveActions, a.UpdateExpressionAddClause,
                  a.UpdateExpressionAddActions)
    tree = validator.node_to_validate
    walk(tree)
    return tree


def set_refused(table: Any, key: str, value: Any) -> str | None:
    """Why moto's validators refuse a SET of ``value`` (a ``DynamoType``) to ``key``, or
    None: a type other than the table's definition of it, or an empty string or binary on
    a key of the table or an index. ``key`` is the name as the expression spells it (a
    placeholder is not resolved: moto compares it as written)."""
    for definition in table.attr:
        if definition["AttributeName"] == key and definition["AttributeType"] != value.type:
            return "a type the table does not define"
    if not value.value and value.type in ("S", "B") and key in table.attribute_keys:
        return "an empty key"
    return None


def cached_traversal_maps() -> Restore:
    """Walk update expressions as moto does, without redoing the same type checks.

    moto's ``DepthFirstTraverser`` asks ``_processing_map()`` for a new dict at every node
    it visits, twice, and picks the node's processor by ``isinstance`` over abstract
    classes (slow), again at every node. Which processor a node gets depends only on the
    processor's class and the node's class, so it is worked out once per pair; the walk
    is otherwise moto's: children first, left to right, each one announced to
    ``pre_processing_of_child``, the processed node put back in its parent's place.
    """
    from moto.dynamodb.parsing import ast_nodes

    DepthFirstTraverser = getattr(ast_nodes, "DepthFirstTraverser")  # noqa: B009
    Node = getattr(ast_nodes, "Node")  # noqa: B009
    original = DepthFirstTraverser.__dict__["traverse_node_recursively"]
    #: (processor class, node class) -> position of the node's processor in the map, or -1
    dispatch: dict[tuple[type, type], int] = {}
    nodes: dict[type, bool] = {}

    def processor(self: Any, node: Any) -> Callable[[Any], Any] | None:
        """The processor moto's ``process`` would pick for ``node``, if any."""
        table: list[Callable[[Any], Any]] | None = self.__dict__.get("_fanout_processors")
        if table is None:
            table = self.__dict__["_fanout_processors"] = list(self._processing_map().values())
        key = (type(self), type(node))
        at = dispatch.get(key)
        if at is None:
            kinds = list(self._processing_map())
            at = dispatch[key] = next(
                (i for i, kind in enumerate(kinds) if isinstance(node, kind)), -1)
        return table[at] if at >= 0 else None

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        is_node = nodes.get(type(node))
        if is_node is None:
            is_node = nodes[type(node)] = isinstance(node, Node)
        if is_node:
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            process = processor(self, node)
            if process is not None:
                node = process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively

    def restore() -> None:
        DepthFirstTraverser.traverse_node_recursively = original

    return restore
