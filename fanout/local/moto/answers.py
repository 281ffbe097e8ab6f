"""Answers handed to a direct client already parsed, without the JSON in between.

On a direct call (:class:`fanout.local.direct.DirectClient`) moto's answer was walked into
its wire form (:class:`~fanout.local.moto.dynamodb._ShapeWalk`), written as JSON, read back
by ``json.loads`` and walked again by botocore's parser into what the client returns: two
walks over every attribute of every item, one JSON round trip. :class:`ParsedWalk` is the
two walks composed into one: what it gives is what ``botocore``'s JSON parser gives for the
body moto's serializer would have written, value for value. What it does not cover
(blobs, timestamps, document types, names that differ on the wire, a tagged union with
other than one member) it refuses, and the call takes the wire path as before.

The emulated Fargate's answers (plain values and datetimes) take the same walk
(:func:`handed_result`), each timestamp written by moto's serializer's own timestamp rule
and read by the client's own parser.

Only the direct client asks for it (:func:`wanted`), and only on a success (an error goes
through moto's serializer and botocore's error parsing as before); requests are still
parsed from the wire by moto's own parser, so what moto checks of a request is unchanged.
``tests/e2e/test_speedups.py`` compares every answer with botocore's parse of moto's own.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

#: The keys moto's picker looks under for one field: ``(shape, key) -> keys``.
PossibleKeys = Callable[[Any, str], list[str]]
#: A timestamp as moto writes it and botocore reads it back: ``(value, shape) -> parsed``.
Timestamps = Callable[[Any, Any], Any]


_NOTHING: Any = object()
#: Values moto's answers hold that ``dynamo_to_dict`` leaves as they are.
_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})


class DictKeys:
    """Where moto's picker looks for a field in a dict: the same for every dict, so worked
    out once per field (``(shape, key) -> keys``)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[int, str], tuple[Any, list[str]]] = {}
        self._lock = threading.Lock()

    def __call__(self, shape: Any, key: str) -> list[str]:
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


#: The one :class:`DictKeys` (every answer this emulation walks holds dicts).
dict_keys = DictKeys()


class Unsupported(Exception):
    """The composed walk does not cover this value: the wire path does it."""


class _Structure:
    """What the walk needs of one structure shape, worked out once."""

    __slots__ = ("alias", "dotted", "members", "union")

    def __init__(self, shape: Any, keys: PossibleKeys) -> None:
        if shape.is_document_type:
            raise Unsupported("document")
        #: (member name, member shape), in the shape's order
        self.members: list[tuple[str, Any]] = []
        #: a key a value may hold -> (member position, its rank among the member's keys)
        self.alias: dict[str, list[tuple[int, int]]] = {}
        #: (member position, rank of its first dotted key): moto's picker would refuse it
        self.dotted: list[tuple[int, int]] = []
        self.union = bool(shape.is_tagged_union)
        for position, (name, member) in enumerate(shape.members.items()):
            self.members.append((name, member))
            for rank, possible in enumerate(keys(member, name)):
                if "." in possible:
                    self.dotted.append((position, rank))
                    break
                self.alias.setdefault(possible, []).append((position, rank))


class ParsedWalk:
    """moto's serialization of a DynamoDB answer and botocore's parse of it, in one walk.

    The answer may hold moto's own objects (its items' attribute values, anything with a
    ``to_json``) where moto's ``DynamoResult`` would have converted them to plain values
    first: each is converted as ``dynamo_to_dict`` converts it, where the walk meets it,
    so the answer is not walked once more beforehand. A binary value is refused (its
    conversion decodes it; the wire path does it).
    """

    def __init__(self, keys: PossibleKeys) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.models.utilities import dynamo_to_dict

        self._keys = keys
        self._structures: dict[int, tuple[Any, _Structure]] = {}
        self._lock = threading.Lock()
        self._dynamo_type, self._to_dict = DynamoType, dynamo_to_dict
        self._call = threading.local()  # this call's timestamp conversion, if any

    def parse_answer(self, value: Any, shape: Any, timestamps: Timestamps | None) -> Any:
        """:meth:`parse`, with ``timestamps`` converting each timestamp it meets (refused
        without one)."""
        self._call.timestamps = timestamps
        try:
            return self.parse(value, shape)
        finally:
            self._call.timestamps = None

    def _plain(self, value: Any) -> Any:
        """One level of ``dynamo_to_dict``: what moto's answer would hold at this place."""
        if type(value) is self._dynamo_type:
            if value.type in ("B", "BS"):
                raise Unsupported("binary")
            return {value.type: value.value}  # nested values: converted as the walk meets them
        if hasattr(value, "to_json") and not isinstance(value, datetime):
            return self._to_dict(value)
        return value

    def _structure(self, shape: Any) -> _Structure:
        known = self._structures.get(id(shape))
        if known is not None and known[0] is shape:
            return known[1]
        made = _Structure(shape, self._keys)
        with self._lock:
            self._structures[id(shape)] = (shape, made)  # the shape kept: its id stays its own
        return made

    def parse(self, value: Any, shape: Any) -> Any:
        if type(value) is self._dynamo_type and shape.name == "AttributeValue":
            # A scalar attribute value: what the walk below gives it, in one step
            kind, raw = value.type, value.value
            if ((kind == "S" or kind == "N") and type(raw) is str) \
                    or ((kind == "BOOL" or kind == "NULL") and type(raw) is bool):
                return {kind: raw}
        if type(value) not in _PLAIN:
            value = self._plain(value)
        kind = shape.type_name
        if kind == "structure":
            return self._parse_structure(value, shape)
        if kind == "map":
            if not isinstance(value, dict) or "name" in shape.value.serialization:
                raise Unsupported("map")
            inner = shape.value
            parsed: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise Unsupported("map key")
                if item is None:
                    if _none_of(inner) is _NOTHING:
                        continue  # moto writes nothing for it
                    parsed[key] = None
                else:
                    parsed[key] = self.parse(item, inner)
            return parsed
        if kind == "list":
            member = shape.member
            if member.serialization.get("name", member.name) != member.name \
                    or isinstance(value, (str, bytes, dict)):
                raise Unsupported("list")
            if any(item is None for item in value):
                _none_of(member)  # refused where moto's walk would fail on it
            return [None if item is None else self.parse(item, member) for item in value]
        if kind == "string":
            if isinstance(value, Enum):
                value = value.value
            if value is None:
                return None
            if isinstance(value, dict) and not value:  # moto keeps {} and [] as such
                return {}
            if isinstance(value, list) and not value:
                return []
            return str(value)
        if kind in ("integer", "long"):
            return int(value)
        if kind in ("float", "double"):
            return float(value)
        if kind == "boolean":
            if not isinstance(value, (bool, int)):
                raise Unsupported("boolean")
            return value
        if kind == "timestamp":
            convert = getattr(self._call, "timestamps", None)
            if convert is not None:
                return convert(value, shape)
        raise Unsupported(kind)  # blob, timestamp: their own conversions on the wire path

    def _parse_structure(self, value: Any, shape: Any) -> Any:
        if value is None:
            return None
        plan = self._structure(shape)
        if not plan.members:
            return {}
        if not isinstance(value, dict):
            raise Unsupported(type(value).__name__)
        found: dict[int, tuple[int, str]] = {}
        for key in value:
            for position, rank in plan.alias.get(key, ()):
                held = found.get(position)
                if held is None or rank < held[0]:
                    found[position] = (rank, key)
        for position, rank in plan.dotted:
            held = found.get(position)
            if held is None or held[0] > rank:
                raise Unsupported("dotted key")
        parsed: dict[str, Any] = {}
        for position in sorted(found):
            item = value[found[position][1]]
            if item is None:
                continue
            name, member = plan.members[position]
            parsed[name] = self.parse(item, member)
        if plan.union and len(parsed) != 1:
            raise Unsupported("union")  # botocore's parser says what is wrong with it
        return parsed


def _none_of(shape: Any) -> Any:
    """What a None inside a map or list becomes: nothing (a structure), None (a string);
    moto's walk fails on any other, so the wire path takes it."""
    if shape.type_name == "structure":
        return _NOTHING
    if shape.type_name == "string":
        return None
    raise Unsupported(f"None as {shape.type_name}")


# --- handing the answer over -------------------------------------------------------------

_local = threading.local()


def want(parser: Any = None) -> None:
    """This thread's next answer is to be handed over parsed (:func:`take`); ``parser``:
    the client's botocore parser, which reads the timestamps of an ECS answer."""
    _local.answer = None
    _local.wanted = True
    _local.parser = parser


def wanted() -> bool:
    return bool(getattr(_local, "wanted", False))


def wanted_by() -> Any:
    """The parser of the client that wants this thread's answer (None: not wanted)."""
    return getattr(_local, "parser", None) if wanted() else None


def hand_over(parsed: dict[str, Any]) -> None:
    _local.answer = parsed


def handed_response(serializer: Any) -> tuple[int, dict[str, str], str]:
    """moto's answer once its parse is handed over: the operation's status and content
    type from ``serializer`` (moto's for the operation), no body."""
    resp = serializer._create_default_response()
    resp["headers"]["Content-Type"] = serializer._get_protocol_specific_content_type()
    return resp["status_code"], resp["headers"], ""


def take() -> dict[str, Any] | None:
    """The answer handed over since :func:`want` (None: it went the wire way); stops wanting."""
    answer: dict[str, Any] | None = getattr(_local, "answer", None)
    _local.answer = None
    _local.wanted = False
    _local.parser = None
    return answer


# --- the emulated Fargate's answers -----------------------------------------------------


def handed_result(result: dict[str, Any]) -> Any:
    """moto's ``ActionResult`` of an answer of plain values and datetimes (the emulated
    Fargate's), which a direct client's call gets parsed (:class:`ParsedWalk`): each
    timestamp written as moto's serializer writes it and read as the client's parser
    reads it; every other call, and what the walk refuses, goes through moto's serializer.
    """
    return _handed_result_class()(result)


@functools.cache
def _handed_result_class() -> type:
    import json

    from moto import settings
    from moto.core.responses import ActionResult
    from moto.core.serialize import BaseJSONSerializer, TimestampSerializer

    walk = ParsedWalk(dict_keys)

    class HandedResult(ActionResult):
        def execute_result(self, context: Any) -> Any:
            parser = wanted_by()
            serializer_class = context.serializer_class
            model = context.operation_model
            shape = model.output_shape
            if (parser is None or shape is None or isinstance(self.result, Exception)
                    or model.has_event_stream_output
                    or not issubclass(serializer_class, BaseJSONSerializer)
                    or _transformed(context.response, shape)):
                return super().execute_result(context)
            stamps = TimestampSerializer(serializer_class.DEFAULT_TIMESTAMP_FORMAT)

            def timestamp(value: Any, at: Any) -> Any:
                # moto's serializer's timestamp (the JSON protocol's), as the body holds it
                written: dict[str, Any] = {}
                stamps.serialize(written, value, at, "timestamp")
                return parser._parse_shape(at, json.loads(json.dumps(written["timestamp"])))

            try:
                parsed = walk.parse_answer(self.result, shape, timestamp)
            except Unsupported:
                return super().execute_result(context)
            hand_over(parsed)
            return handed_response(serializer_class(operation_model=model,
                                                    pretty_print=settings.PRETTIFY_RESPONSES))

    return HandedResult


def _transformed(response: Any, shape: Any) -> bool:
    """Whether moto's serializer may transform a field of this answer: a transformer
    path not of another answer's shape (``<Name>Response.…``) may match within it."""
    paths = getattr(response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None) or {}
    for path in paths:
        first = path.split(".", 1)[0]
        if first == shape.name or not first.endswith("Response") or "." not in path:
            return True
    return False
