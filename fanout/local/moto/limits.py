"""AWS's limits that a run can reach, enforced in the local mode as AWS enforces them.

moto's interpreter and services let through what AWS refuses (a Distributed Map's gathered
results over 256 KiB, an execution's 25,001st event, a 409,601-byte DynamoDB item) or
refuse what AWS accepts (a state output of exactly 256 KiB). A local run that passes must
pass on AWS, so the local mode applies AWS's rules; each limit crossed fails the run with
AWS's error name and a cause naming the limit, the state and the size. docs/local-mode.md
lists every limit with its AWS source.

- Step Functions (moto patches, :mod:`fanout.local.moto.sfn_limits`): every state's input
  and output and the execution's input at most 256 KiB (the execution's output is its last state's),
  a Distributed Map's gathered results too when it has no ResultWriter; the
  ``States.DataLimitExceeded`` and ``States.Runtime`` errors escape ``States.ALL``; at most
  25,000 events in one execution's history (each child of a Distributed Map has its own);
  execution names; SendTaskSuccess output, SendTaskFailure error and cause. A ResultWriter
  writes the children's results to S3 as AWS lays them out (``manifest.json``,
  ``SUCCEEDED_0.json``...), where moto writes an empty manifest.
- DynamoDB (moto patch): 400 KB per item, counted as DynamoDB counts item sizes.
- ECS RunTask overrides (8 KiB), Lambda environments (4 KB) and the Python 3.12 runtime's
  error names are checked by the emulation itself (:func:`check_overrides`,
  :func:`check_lambda_environment`, :func:`runtime_error_name`).

Sizes are measured on the JSON moto has already made for the history event (a state's
input and output), never by serializing a document once more; :data:`MAXIMA` keeps the
largest of each, which ``bench/scale.py`` reports beside AWS's limits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from fanout import lambda_errors
from fanout.policy import ECS_OVERRIDES_LIMIT

Restore = Callable[[], None]

#: Step Functions: "Maximum input or output size for a task, state, or execution: 256 KiB
#: of data as a UTF-8 encoded string" (the API's payload fields: "Maximum length 262144").
PAYLOAD_BYTES = 256 * 1024
#: Step Functions: "Maximum execution history size: 25,000 events in a single execution".
#: The 25,000th event is the execution's failure when it would be anything else.
HISTORY_EVENTS = 25_000
#: StartExecution ``name``: "Length Constraints: Minimum length of 1. Maximum length of 80."
EXECUTION_NAME_CHARS = 80
#: Characters an execution name must not contain (StartExecution ``name``): white space,
#: brackets, wildcards, special characters and control characters (U+0000-001F, U+007F-009F).
EXECUTION_NAME_FORBIDDEN = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')
#: SendTaskFailure: ``error`` at most 256 characters, ``cause`` at most 32,768.
TASK_ERROR_CHARS = 256
TASK_CAUSE_CHARS = 32_768
#: DynamoDB: "The maximum item size in DynamoDB is 400 KB, which includes both attribute
#: name binary length (UTF-8 length) and attribute value lengths". 400 KB = 409,600 bytes.
DYNAMODB_ITEM_BYTES = 400 * 1024
#: ECS RunTask: "A total of 8192 characters are allowed for overrides. This limit includes
#: the JSON formatting characters of the override structure."
OVERRIDES_CHARS = ECS_OVERRIDES_LIMIT
#: Lambda quotas: 4 KB for all of a function's environment variables together, measured
#: (as Lambda's refusal says) on the variables as JSON.
LAMBDA_ENVIRONMENT_BYTES = 4 * 1024
#: Lambda: a synchronous invocation's response payload is at most 6 MB.
LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024

def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8; free for ASCII text (CPython knows a string is ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class Maxima:
    """The largest state payload and execution history a local run reached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.payload_bytes = 0
            self.payload_where = ""
            self.history_events = 0

    def payload(self, size: int, where: Callable[[], str]) -> None:
        if size > self.payload_bytes:  # read without the lock: only a new maximum takes it
            with self._lock:
                if size > self.payload_bytes:
                    self.payload_bytes, self.payload_where = size, where()

    def history(self, events: int) -> None:
        if events > self.history_events:
            with self._lock:
                self.history_events = max(self.history_events, events)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"payload_bytes": self.payload_bytes, "payload_where": self.payload_where,
                    "history_events": self.history_events,
                    "payload_limit_bytes": PAYLOAD_BYTES, "history_limit_events": HISTORY_EVENTS}


MAXIMA = Maxima()


# --- checks the emulation itself makes (no moto involved) ---------------------------------


class LimitExceeded(Exception):
    """A limit of AWS crossed outside a state machine; ``code`` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def check_execution_name(name: str) -> None:
    """Raise ``InvalidName`` where StartExecution would refuse ``name``."""
    bad = sorted({c for c in name if c in EXECUTION_NAME_FORBIDDEN or c.isspace()
                  or ord(c) <= 0x1F or 0x7F <= ord(c) <= 0x9F})
    if not 1 <= len(name) <= EXECUTION_NAME_CHARS or bad:
        why = (f"{len(name)} characters, not 1 to {EXECUTION_NAME_CHARS}" if not bad
               else "characters Step Functions does not allow: " + " ".join(map(repr, bad)))
        raise LimitExceeded("InvalidName", f"Invalid Name: '{name}' ({why})")


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Raise ``InvalidParameterException`` for RunTask overrides over ECS's 8,192 characters."""
    chars = len(json.dumps(overrides, separators=(",", ":")))
    if chars > OVERRIDES_CHARS:
        raise LimitExceeded(
            "InvalidParameterException",
            f"Container Overrides length must be at most {OVERRIDES_CHARS} "
            f"(ECS RunTask overrides limit); these are {chars} characters")


def check_lambda_environment(function: str, variables: Mapping[str, str]) -> None:
    """Raise where Lambda refuses a function's environment (over 4 KB as JSON)."""
    measured = json.dumps(dict(variables), separators=(",", ":"))
    size = utf8_size(measured)
    if size > LAMBDA_ENVIRONMENT_BYTES:
        raise LimitExceeded(
            "InvalidParameterValueException",
            f"Lambda was unable to configure the environment variables of {function}: "
            f"{size} bytes exceed the 4 KB limit ({LAMBDA_ENVIRONMENT_BYTES} bytes)")


def runtime_error_name(exc: BaseException) -> str:
    """The ``errorType`` the Python 3.12 runtime reports for ``exc`` raised by a handler."""
    if isinstance(exc, MemoryError):
        return lambda_errors.OUT_OF_MEMORY
    if isinstance(exc, SystemExit):
        return lambda_errors.EXIT_ERROR
    return type(exc).__name__


def timed_out(function: str, timeout_seconds: float) -> tuple[str, str]:
    """What Lambda reports for a handler that ran past its timeout (Python 3.12 runtime)."""
    return lambda_errors.TIMED_OUT, (f"RequestId: local Error: Task timed out after "
                                f"{timeout_seconds:.2f} seconds ({function})")


# --- DynamoDB item sizes, as DynamoDB counts them -----------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


def attribute_size(value: Any) -> int:
    """Bytes DynamoDB counts for one attribute value (moto's ``DynamoType``)."""
    kind, raw = value.type, value.value
    if kind == "S":
        return utf8_size(raw)
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(utf8_size(v) for v in raw)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in raw)
    if kind == "BS":
        return sum(len(v) for v in raw)
    # List and Map: 3 bytes, and 1 byte per element besides its own size.
    from moto.dynamodb.models.dynamo_type import DynamoType

    if kind == "L":
        return 3 + sum(1 + attribute_size(v if isinstance(v, DynamoType) else DynamoType(v))
                       for v in raw)
    if kind == "M":
        return 3 + sum(1 + utf8_size(k) + attribute_size(
            v if isinstance(v, DynamoType) else DynamoType(v)) for k, v in raw.items())
    return utf8_size(str(raw))


def item_size(attributes: Mapping[str, Any]) -> int:
    """An item's size: each attribute's name (UTF-8) and value, as DynamoDB counts them."""
    return sum(utf8_size(name) + attribute_size(value) for name, value in attributes.items())


#: DynamoDB types whose value moto never changes in place (a new value is a new object).
SCALAR_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL"})


#: moto's ``DynamoType`` once :func:`dynamodb_item_size` is in place (moto is imported then).
_DYNAMO_TYPE: Any = None


def _weigh(sizes: dict[str, tuple[Any, int]], name: str, value: Any) -> int:
    """One attribute's bytes, a scalar's kept beside the item with the value it was
    measured on (see :func:`dynamodb_item_size`)."""
    known = sizes.get(name)
    if known is not None and known[0] is value:
        return known[1]
    if type(value) is _DYNAMO_TYPE:
        size = utf8_size(name) + attribute_size(value)
        if value.type in SCALAR_TYPES:
            sizes[name] = (value, size)
        return size
    return utf8_size(name) + utf8_size(str(value))


def _sizes(attrs: Any) -> dict[str, tuple[Any, int]]:
    sizes: dict[str, tuple[Any, int]] = attrs.__dict__.setdefault("_fanout_sizes", {})
    return sizes


def _sized_setitem(self: Any, key: str, value: Any) -> None:
    sizes = _sizes(self)
    size = _weigh(sizes, key, value)
    for name, existing in self.items():
        if name != key:
            known = sizes.get(name)  # _weigh's first step, without the call
            size += known[1] if known is not None and known[0] is existing \
                else _weigh(sizes, name, existing)
    if size > DYNAMODB_ITEM_BYTES:
        from moto.dynamodb.exceptions import ItemSizeTooLarge

        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)


def item_size_enforced() -> bool:
    """Whether items are weighed as DynamoDB weighs them (:func:`dynamodb_item_size`)."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    return LimitedSizeDict.__setitem__ is _sized_setitem


def attribute_weight(attrs: Any, name: str, value: Any) -> int:
    """Bytes ``name`` holding ``value`` counts in the item ``attrs``, as a write weighs it."""
    return _weigh(_sizes(attrs), name, value)


def item_weight(attrs: Any) -> int:
    """The item's bytes as a write weighs them (every attribute; the same figures)."""
    sizes = _sizes(attrs)
    return sum(_weigh(sizes, name, value) for name, value in attrs.items())


def dynamodb_item_size() -> Restore:
    """An item is refused past 409,600 bytes as DynamoDB counts them (moto: 405,000 of its own).

    Every attribute set weighs the whole item again (a new item, once it is built). A
    scalar attribute's size is kept beside the item with the value it was measured on, and
    used while that very value is still the attribute's (moto replaces a scalar, never
    changes it in place); maps, lists and sets, which moto can change in place, are
    measured every time."""
    global _DYNAMO_TYPE
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    _DYNAMO_TYPE = DynamoType
    original, original_init = LimitedSizeDict.__setitem__, Item.__init__

    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        # moto's own, weighed once built: adding attributes only grows an item, so it
        # crosses the limit at one of its sets exactly when it is over it whole
        self.hash_key, self.range_key = hash_key, range_key
        built = LimitedSizeDict()
        for key, value in attrs.items():
            dict.__setitem__(built, key, DynamoType(value))
        if item_weight(built) > DYNAMODB_ITEM_BYTES:
            raise ItemSizeTooLarge
        self.attrs = built

    LimitedSizeDict.__setitem__ = _sized_setitem  # type: ignore[method-assign]
    Item.__init__ = init  # type: ignore[method-assign]

    def restore() -> None:
        LimitedSizeDict.__setitem__ = original  # type: ignore[method-assign]
        Item.__init__ = original_init  # type: ignore[method-assign]

    return restore
