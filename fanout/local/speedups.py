"""Cheaper paths through moto for the calls a run makes thousands of times, same answers.

A local run spends its time in moto's generic machinery, not in the emulated services:
its response serializer looks every field of every DynamoDB answer up through six alias
rules; its Step Functions interpreter builds a JSONPath parser (a yacc table) for every
path it evaluates and a boto3 client for every Lambda task. What is changed here computes
the same thing once and reuses it:

- :func:`fast_dynamodb_serializer`: a DynamoDB answer (plain dicts by then) is serialized
  by the same walk over the operation's output shape as moto's JSON serializer, with the
  keys each field may be found under worked out by moto's own picker once per field
  rather than once per value. Anything the walk does not cover (blobs, timestamps,
  response transformers, errors) goes through moto's serializer as before.
- :func:`cached_json_paths`: one parsed JSONPath per path string (parsed paths are not
  changed by evaluating them).
- :func:`shared_lambda_client`: one boto3 Lambda client per region for the interpreter's
  Lambda tasks (botocore clients are safe to share between threads).

Each returns the function that puts moto's own back.
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


def shared_lambda_client() -> Restore:
    """One Lambda client per region for the interpreter's Lambda tasks, not one per task."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = getattr(lambda_eval_utils, "boto_client_for")  # noqa: B009 (not exported)
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own ignores the credentials (fixed test keys); so does the cache.
        with lock:
            client = clients.get((region, service))
            if client is None:
                client = clients[(region, service)] = original(region, service,
                                                               state_credentials)
        return client

    setattr(lambda_eval_utils, "boto_client_for", boto_client_for)  # noqa: B010

    def restore() -> None:
        setattr(lambda_eval_utils, "boto_client_for", original)  # noqa: B010

    return restore


def cached_update_expressions() -> Restore:
    """Tokenize and parse each DynamoDB update expression once, and copy it cheaply.

    moto reads the parsed expression (to find its names and values) and deep-copies it
    before it fills the values in, so one parse per expression string serves every call.
    The copy is made from the parsed tree pickled once: unpickling builds the same tree
    (every node, its fields and parent links) several times faster than ``deepcopy``
    walks it. A tree that cannot be pickled is deep-copied as before.
    """
    import copy
    import pickle

    from moto.dynamodb.parsing import expressions, validators

    UpdateExpressionParser = getattr(expressions, "UpdateExpressionParser")  # noqa: B009
    original = UpdateExpressionParser.__dict__["make"]
    original_deepcopy = getattr(validators, "deepcopy")  # noqa: B009
    parse = functools.lru_cache(maxsize=1024)(original.__func__)
    #: id of a parsed tree -> (the tree, kept so the id stays its own; its pickle)
    pickled: dict[int, tuple[Any, bytes]] = {}

    def make(cls: Any, expression_str: str) -> Any:
        tree = parse(cls, expression_str)
        if id(tree) not in pickled:
            try:
                frozen = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # deepcopy will do
                return tree
            if len(pickled) > 4096:  # the parse cache has moved on: start again
                pickled.clear()
            pickled[id(tree)] = (tree, frozen)
        return tree

    def deepcopy(value: Any, memo: Any = None) -> Any:
        known = pickled.get(id(value)) if memo is None else None
        if known is not None and known[0] is value:
            return pickle.loads(known[1])  # our own bytes
        return copy.deepcopy(value, memo)

    setattr(UpdateExpressionParser, "make", classmethod(make))  # noqa: B010
    setattr(validators, "deepcopy", deepcopy)  # noqa: B010

    def restore() -> None:
        setattr(UpdateExpressionParser, "make", original)  # noqa: B010
        setattr(validators, "deepcopy", original_deepcopy)  # noqa: B010

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
    """Build each expression processor's node-type map once per processor, not per node.

    moto's ``DepthFirstTraverser`` asks ``_processing_map()`` for a new dict at every node
    it visits, twice; a processor is made for one validation and its map depends only on
    the processor, so the first answer serves the rest of its walk.
    """
    from moto.dynamodb.parsing import ast_nodes

    DepthFirstTraverser = getattr(ast_nodes, "DepthFirstTraverser")  # noqa: B009
    original_types = DepthFirstTraverser.nodes_to_be_processed
    original_process = DepthFirstTraverser.process

    def processing_map(self: Any) -> dict[type, Callable[[Any], Any]]:
        found: dict[type, Callable[[Any], Any]] | None = self.__dict__.get("_fanout_map")
        if found is None:
            found = self.__dict__["_fanout_map"] = self._processing_map()
        return found

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        found: tuple[type, ...] | None = self.__dict__.get("_fanout_types")
        if found is None:
            found = self.__dict__["_fanout_types"] = tuple(processing_map(self))
        return found

    def process(self: Any, node: Any) -> Any:
        for class_key, processor in processing_map(self).items():
            if isinstance(node, class_key):
                return processor(node)
        return None

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    DepthFirstTraverser.process = process

    def restore() -> None:
        DepthFirstTraverser.nodes_to_be_processed = original_types
        DepthFirstTraverser.process = original_process

    return restore
