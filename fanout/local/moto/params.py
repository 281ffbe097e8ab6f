"""A direct call's parameters handed to moto as its request parser would read them.

A direct client's call (:class:`fanout.local.direct.DirectClient`) was written as JSON
and read back by moto's JSON request parser, which walks the value over the operation's
input shape: at every node it looks its handler up by name and reads each member of a
structure (all ten of an attribute value's, for the one it holds). :class:`ParamsWalk`
gives what that parser gives for ``json.dumps(params)``, value for value and type for
type, in one walk of plans worked out once per shape, without the JSON.

What it does not cover it refuses (:class:`Unsupported`), and the call takes the JSON
path as before: a value JSON would change or refuse (a tuple, a key that is not a string,
bytes, any object), a blob or a timestamp (their own conversions), a value whose type
does not fit its shape (moto's walk does what it does with it). The rules mirrored, from
moto's ``BaseJSONParser``: a structure keeps, in its shape's order, the members present
and not null under their wire names; a document is kept as it is; a list and a map are
walked member by member; an integer is ``int(value)``, a float ``float(value)``; a
string and a boolean are kept as they are. ``tests/e2e/test_speedups.py`` compares the
two on every call a run makes and on generated values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Walk = Callable[[Any], Any]


class Unsupported(Exception):
    """This value takes the JSON path (see the module)."""


#: What ``json.dumps`` writes and ``json.loads`` reads back as the same type and value.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_round_trip(value: Any) -> Any:
    """``json.loads(json.dumps(value))`` without the JSON, or :class:`Unsupported` for a
    value JSON would change or refuse."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:  # (a scalar member kept without a call: most members are)
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                raise Unsupported("key")
            copied[key] = item if type(item) in _SCALARS else json_round_trip(item)
        return copied
    if kind is list:
        return [item if type(item) in _SCALARS else json_round_trip(item) for item in value]
    raise Unsupported(kind.__name__)


def _scalar(value: Any) -> Any:
    if type(value) not in _SCALARS:
        raise Unsupported(type(value).__name__)
    return value


def _integer(value: Any) -> Any:
    return int(_scalar(value))


def _float(value: Any) -> Any:
    return float(_scalar(value))


def _refused(value: Any) -> Any:
    raise Unsupported("blob or timestamp")


class ParamsWalk:
    """moto's JSON request parse of ``json.dumps(params)``, from ``params`` (one service)."""

    def __init__(self) -> None:
        #: plans complete (read without the lock); plans being made (under it)
        self._plans: dict[str, Walk] = {}
        self._making: dict[str, Walk] = {}
        self._lock = threading.RLock()

    def parse(self, params: dict[str, Any], shape: Any) -> dict[str, Any]:
        if shape is None:
            return {}
        try:
            parsed: dict[str, Any] = self._plan(shape)(params)
        except (ValueError, TypeError, OverflowError, AttributeError) as failed:
            raise Unsupported("moto's parse says what is wrong") from failed
        return parsed

    def _plan(self, shape: Any) -> Walk:
        plan = self._plans.get(shape.name)
        if plan is not None:
            return plan
        with self._lock:  # made by one thread; published once every member's is made
            plan = self._plans.get(shape.name) or self._making.get(shape.name)
            if plan is not None:
                return plan
            top = not self._making
            try:
                plan = self._make(shape)
                if top:
                    self._plans.update(self._making)
            finally:
                if top:
                    self._making.clear()
        return plan

    def _make(self, shape: Any) -> Walk:
        """The walk of one shape (kept before its members' are made: shapes recur)."""
        kind = shape.type_name
        if kind == "structure" and shape.is_document_type:
            plan: Walk = json_round_trip
        elif kind == "structure":
            plan = self._structure(shape)
        elif kind == "list":
            plan = self._list(shape)
        elif kind == "map":
            plan = self._map(shape)
        elif kind in ("integer", "long", "byte", "short"):
            plan = _integer
        elif kind in ("float", "double"):
            plan = _float
        elif kind in ("blob", "timestamp"):
            plan = _refused
        else:  # string, boolean and anything else moto's parser keeps as it is
            plan = _scalar
        self._making[shape.name] = plan
        return plan

    # Each walk is kept (in ``_making``) before its members' plans are made, so a shape
    # that holds itself gets this walk; the members' plans are the closure's, set after.

    def _structure(self, shape: Any) -> Walk:
        members: list[tuple[str, str, Walk]] = []
        by_wire: dict[str, tuple[str, Walk]] = {}
        one_per_wire_name = False

        def walk(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not dict:
                raise Unsupported("structure")
            parsed: dict[str, Any] = {}
            if len(value) == 1 and one_per_wire_name:  # an attribute value, most often
                (key, raw), = value.items()
                found = by_wire.get(key)
                if found is not None and raw is not None:
                    parsed[found[0]] = found[1](raw)
                elif type(key) is not str:
                    raise Unsupported("key")
                return parsed
            if any(type(key) is not str for key in value):
                raise Unsupported("key")
            for name, wire, member in members:
                raw = value.get(wire)
                if raw is not None:
                    parsed[name] = member(raw)
            return parsed

        self._making[shape.name] = walk
        for name, member_shape in shape.members.items():
            wire = member_shape.serialization.get("name", name)
            plan = self._plan(member_shape)
            members.append((name, wire, plan))
            by_wire.setdefault(wire, (name, plan))
        one_per_wire_name = len(by_wire) == len(members)  # else only the long way is right
        return walk

    def _list(self, shape: Any) -> Walk:
        def walk(value: Any) -> Any:
            if type(value) is not list:
                raise Unsupported("list")
            return [member(item) for item in value]

        self._making[shape.name] = walk
        member = self._plan(shape.member)
        return walk

    def _map(self, shape: Any) -> Walk:
        def walk(value: Any) -> Any:
            if type(value) is not dict:
                raise Unsupported("map")
            if any(type(key) is not str for key in value):
                raise Unsupported("key")  # JSON would make it a string
            return {keys(key): values(item) for key, item in value.items()}

        self._making[shape.name] = walk
        keys, values = self._plan(shape.key), self._plan(shape.value)
        return walk
