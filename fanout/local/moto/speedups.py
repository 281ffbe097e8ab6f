"""Cheaper paths through moto for the calls a run makes thousands of times, same answers.

A local run spends its time in moto's generic machinery, not in the emulated services:
its response serializer looks every field of every DynamoDB answer up through six alias
rules; its Step Functions interpreter builds a JSONPath parser (a yacc table) for every
path it evaluates. What is changed here computes the same thing once and reuses it:

DynamoDB's (in :mod:`fanout.local.moto.dynamodb`):

- :func:`fast_dynamodb_serializer`: a DynamoDB answer (plain dicts by then) is serialized
  by the same walk over the operation's output shape as moto's JSON serializer, with the
  keys each field may be found under worked out by moto's own picker once per field
  rather than once per value. Anything the walk does not cover (blobs, timestamps,
  response transformers, errors) goes through moto's serializer as before.
- :mod:`fanout.local.moto.answers`: for a direct client's call, that walk and botocore's
  parse of its JSON composed into one walk that hands the client its answer parsed (no
  JSON written and read back); what it does not cover takes the wire path.

(:func:`fanout.local.moto.dynamodb.cheap_transactions` is not one of them: without it a
run's time grows with the square of its items and 300 items take 4 GB, so it is always
applied, with the patches the local mode needs: :func:`fanout.local.aws.take_over`,
docs/decisions/0007.)

And the rest of moto's:

- :func:`cached_json_paths`: one parsed JSONPath per path string (parsed paths are not
  changed by evaluating them).
- :func:`cached_update_expressions`: an update expression is parsed once, copied by
  unpickling, and its read-only form checks run once per tree and attribute names.
- :func:`cached_traversal_maps`: the processor each node of an expression gets is worked
  out once per (processor class, node class), not by ``isinstance`` at every node.
- :func:`cached_method_names`: the list of a response class's actions, once per class.
- :func:`cached_condition_lexing`: a condition expression's tokens, once per expression.
- :func:`cached_condition_parses`: a condition's parse, once per expression, names and
  the values it names.
- :func:`cheap_request_ids`: each answer's request id drawn at once, not letter by letter.
- :func:`indexed_queries`: a query on an index looks only at the items with its key value.
- :func:`fanout.local.direct.direct_clients` (applied by the local runner): the handlers'
  calls handed to moto's service code without the HTTP round trip.

:func:`apply` applies them all unless ``FANOUT_LOCAL_SPEEDUPS=0``, and only on a moto
release they were checked against (:data:`CHECKED_MOTO`): :func:`enabled` says which.

Each returns the function that puts moto's own back. ``tests/e2e/test_speedups.py``
checks each against moto's own answers.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from fanout.local.moto.dynamodb import fast_dynamodb_serializer

Restore = Callable[[], None]


def cached_json_paths() -> Restore:
    """Parse each JSONPath the interpreter evaluates once."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    saved = [(module, getattr(module, "parse")) for module in (json_path, result_path)]  # noqa: B009
    for module, parse in saved:
        setattr(module, "parse", functools.lru_cache(maxsize=4096)(parse))  # noqa: B010

    def restore() -> None:
        for module, parse in saved:
            setattr(module, "parse", parse)  # noqa: B010

    return restore


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

    from moto.dynamodb.parsing import expressions, validators

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

    def restore() -> None:
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

    empty_keys: list[str] | None = None

    def walk(node: Any) -> None:
        nonlocal empty_keys
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
            key, value = path.children[0].children[0], result.children[0]
            for definition in table.attr:
                if definition["AttributeName"] == key and \
                        definition["AttributeType"] != value.type:
                    raise _Unsure("a type mismatch")
            if not value.value and value.type in ("S", "B"):
                empty_keys = table.attribute_keys if empty_keys is None else empty_keys
                if key in empty_keys:
                    raise _Unsure("an empty key")
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


def cached_method_names() -> Restore:
    """Work out once per response class which actions it has.

    moto lists a class's functions (``inspect.getmembers``) on every call to find the
    action's method. The local mode replaces some methods but never adds or removes one,
    so the list is the same on every call.
    """
    from moto.core import responses

    original = getattr(responses, "method_names_from_class")  # noqa: B009
    cached = functools.cache(original)
    setattr(responses, "method_names_from_class", cached)  # noqa: B010

    def restore() -> None:
        setattr(responses, "method_names_from_class", original)  # noqa: B010

    return restore


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
    """Parse each DynamoDB condition once per expression, names and the values it names.

    moto parses a condition expression (paths, functions, comparisons, AND/OR, names and
    values put in) on every conditional write, and the run makes several per item, most
    with the same expression, names and values (``:launching``, ``attempts = :prev``). The
    parse depends on the expression's text, the attribute names and the values the text
    names, nothing else; what it builds is only read when the condition is judged against
    an item. So a parse is kept per (text, every name, each value whose placeholder is in
    the text) and given again, with the names and values it found noted as the parse notes
    them. A parse that fails is not kept (it fails again, with moto's error); a value that
    cannot be written as JSON (a binary one) is parsed as moto does, every time.
    """
    import json

    from moto.dynamodb import comparisons

    Parser = getattr(comparisons, "ConditionExpressionParser")  # noqa: B009
    original = Parser.__dict__["parse"]
    parsed: dict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = {}

    def parse(self: Any) -> Any:
        text = self.condition_expression
        if not text:
            return original(self)
        values = self.expression_attribute_values or {}
        try:
            key = (text, json.dumps(self.expression_attribute_names, sort_keys=True),
                   json.dumps({k: v for k, v in values.items() if k in text}, sort_keys=True))
        except (TypeError, ValueError):
            return original(self)
        kept = parsed.get(key)
        if kept is None:
            names_before = len(self.expr_attr_names_found)
            values_before = len(self.expr_attr_values_found)
            op = original(self)
            if len(parsed) > 4096:
                parsed.clear()
            parsed[key] = kept = (op, self.expr_attr_names_found[names_before:],
                                  self.expr_attr_values_found[values_before:])
            return op
        op, names_found, values_found = kept
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return op

    Parser.parse = parse

    def restore() -> None:
        Parser.parse = original

    return restore


def cheap_request_ids() -> Restore:
    """A request id per answer from 39 random bytes, not 52 calls of ``random.choice``.

    moto gives every answer an ``x-amzn-requestid`` of 52 letters and digits, picked one
    at a time; the same shape (52 characters of ``[A-Za-z0-9]``) comes from one draw.
    """
    import secrets
    import string

    from moto.core import responses

    original = getattr(responses, "gen_amzn_requestid_long")  # noqa: B009
    alphabet = string.ascii_letters + string.digits

    def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
        req_id = "".join(alphabet[b % len(alphabet)] for b in secrets.token_bytes(52))
        if isinstance(headerdict, dict):
            headerdict["x-amzn-requestid"] = req_id
        return req_id

    setattr(responses, "gen_amzn_requestid_long", gen_amzn_requestid_long)  # noqa: B010

    def restore() -> None:
        setattr(responses, "gen_amzn_requestid_long", original)  # noqa: B010

    return restore


def indexed_queries() -> Restore:
    """A query on an index looks only at the items holding the index's key value.

    moto answers a query on a secondary index by sorting every item of the table by its
    keys, then comparing each with the key through ``DynamoType`` (which casts both values
    at every comparison). Reconcile asks the open-attempts index every period, so a run's time grew
    with its items times its length. Here, when every key condition is on a string, the
    items whose attribute holds that very string are picked first (a dict lookup and a
    string compare each), and moto's own query (its key checks, sort, paging, filters,
    projection) runs on those: the items it would have kept are all among them.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any,
              *args: Any, **kwargs: Any) -> Any:
        # moto passes index_name positionally (8th after self), sometimes by keyword.
        index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
        conditions = kwargs.get("hash_key_conditions") or []
        if (not index_name or not conditions or "all_items" in self.__dict__
                or any(value.type != "S" for _, value in conditions)):
            return original(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        wanted = [(name, value.value) for name, value in conditions]
        every = (item for held in self.items.values()
                 for item in (held.values() if self.range_key_attr else (held,)))
        items = []
        for item in every:
            attrs = item.attrs
            for name, value in wanted:
                held = attrs.get(name)
                if held is None or held.type != "S" or held.value != value:
                    break
            else:
                items.append(item)
        # In the order moto's ``all_items`` gives the table (sorted by its keys).
        items.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        self.all_items = lambda: items
        try:
            return original(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]

    def restore() -> None:
        Table.query = original  # type: ignore[method-assign]

    return restore


# --- the switch and the guard -------------------------------------------------------------

#: Set to ``0`` to run the local mode on moto as it comes (slower, same answers).
SWITCH = "FANOUT_LOCAL_SPEEDUPS"
#: The moto releases these were checked against (``tests/e2e/test_speedups.py``): each
#: replaces a piece of moto's internals, so another release may not have that piece.
CHECKED_MOTO = ("5.2.5",)


def enabled(environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether the speed-ups apply, and why not when they do not."""
    from importlib.metadata import version

    source = os.environ if environ is None else environ
    if source.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False, f"{SWITCH}={source[SWITCH]}"
    installed = version("moto")
    if installed not in CHECKED_MOTO:
        return False, (f"moto {installed} is not a release they were checked against "
                       f"({', '.join(CHECKED_MOTO)})")
    return True, ""


def apply() -> list[Restore]:
    """Every speed-up, applied; the functions that undo them, in order."""
    return [fast_dynamodb_serializer(), cached_json_paths(),
            cached_update_expressions(), cached_method_names(), cached_traversal_maps(),
            cached_condition_lexing(), cached_condition_parses(), cheap_request_ids(),
            indexed_queries()]
