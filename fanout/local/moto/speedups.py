"""Cheaper paths through moto for the calls a run makes thousands of times, same answers.

A local run spends its time in moto's generic machinery, not in the emulated services:
its response serializer looks every field of every DynamoDB answer up through six alias
rules; its Step Functions interpreter builds a JSONPath parser (a yacc table) for every
path it evaluates. What is changed here computes the same thing once and reuses it:

- :func:`fast_dynamodb_serializer`: a DynamoDB answer (plain dicts by then) is serialized
  by the same walk over the operation's output shape as moto's JSON serializer, with the
  keys each field may be found under worked out by moto's own picker once per field
  rather than once per value. Anything the walk does not cover (blobs, timestamps,
  response transformers, errors) goes through moto's serializer as before.
- :func:`cached_json_paths`: one parsed JSONPath per path string (parsed paths are not
  changed by evaluating them).
- :func:`cached_update_expressions`: an update expression is parsed once, copied by
  unpickling, and its read-only form checks run once per tree and attribute names.
- :func:`cached_traversal_maps`: the processor each node of an expression gets is worked
  out once per (processor class, node class), not by ``isinstance`` at every node.
- :func:`cached_method_names`: the list of a response class's actions, once per class.

Each returns the function that puts moto's own back. ``tests/e2e/test_speedups.py``
checks each against moto's own answers.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any

Restore = Callable[[], None]


class _Unsupported(Exception):
    """The fast walk does not cover this value: moto's serializer does it."""


class _ShapeWalk:
    """moto's JSON response serialization of plain dicts, with the field lookups cached."""

    def __init__(self) -> None:
        self._keys: dict[tuple[int, str], tuple[Any, list[str]]] = {}
        self._lock = threading.Lock()

    def possible_keys(self, shape: Any, key: str) -> list[str]:
        """Where moto's picker looks for ``key`` in a dict: the same for every dict."""
        cached = self._keys.get((id(shape), key))
        if cached is not None and cached[0] is shape:
            return cached[1]
        from moto.core.serialize import AttributePickerContext, XFormedAttributePicker

        context = AttributePickerContext(obj={}, key=key, shape=shape,
                                         operation_model=None, service_model=None,
                                         key_path="")
        keys = list(XFormedAttributePicker().get_possible_keys(context))
        with self._lock:
            self._keys[(id(shape), key)] = (shape, keys)  # the shape kept: its id stays its own
        return keys

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


def fast_dynamodb_serializer() -> Restore:
    """Serialize DynamoDB answers by :class:`_ShapeWalk`; moto's serializer for the rest."""
    from moto import settings
    from moto.dynamodb.responses import DynamoResult

    walk = _ShapeWalk()
    original = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        transformers = getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        output_shape = context.operation_model.output_shape
        result = self.result
        if (transformers or output_shape is None or isinstance(result, Exception)
                or context.operation_model.has_event_stream_output):
            return original(self, context)
        serializer = context.serializer_class(
            operation_model=context.operation_model,
            pretty_print=settings.PRETTIFY_RESPONSES,
        )
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

    def restore() -> None:
        DynamoResult.execute_result = original  # type: ignore[method-assign]

    return restore


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
