"""The table layout of the records: keys, and records to and from item attributes.

Layout (docs/decisions/0001): run ``RUN#<id>``/``RUN``; the run's spec as given
``RUN#<id>``/``SPEC``; the run's counter shards ``RUN#<id>``/``RUN#COUNT#<nn>``
(:mod:`fanout.records.writes`); item ``RUN#<id>``/``ITEM#<index:08d>``; attempt
``RUN#<id>``/``ITEM#<index:08d>#A#<n:03d>``; task ``TASK#<arn>``/``TASK``; a schedule's
slot ``SLOT#<schedule>#<scheduled time>``/``SLOT``. The counters are attributes
``n_<status>`` of the shards (summed when the run is read); JSON-valued fields are
stored as compact JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from fanout.records.model import (
    COUNTED,
    AttemptRecord,
    ItemRecord,
    ItemStatus,
    RunRecord,
    Settlement,
)
from fanout.schema import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

OPEN = "OPEN"


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def item_sk(index: int) -> str:
    return f"ITEM#{index:08d}"


def attempt_sk(index: int, attempt: int) -> str:
    return f"ITEM#{index:08d}#A#{attempt:03d}"


def slot_pk(schedule: str, logical_time: str) -> str:
    return f"SLOT#{schedule}#{logical_time}"


def counter(status: ItemStatus) -> str:
    return f"n_{status.lower()}"


#: Items RUNNING whose attempt waits in the launch queue (a subset of ``n_running``).
WAITING_COUNTER = "n_waiting"
#: The launch gate's records: the queue, the buckets, the dispatcher's lease, job slots.
GATE_PK = "GATE"


def queue_sk(capacity: str, created_at: str, run_id: str, index: int, attempt: int) -> str:
    """A launch queue entry's sort key: per capacity type, oldest first."""
    return f"Q#{capacity}#{created_at}#{run_id}#{index:08d}#{attempt:03d}"


def attempt_queue_sk(attempt: AttemptRecord) -> str:
    return queue_sk(attempt.capacity, attempt.created_at, attempt.run_id, attempt.index,
                    attempt.attempt)


def slot_sk(job: str) -> str:
    """The count of a job's running tasks (jobs with ``max_running``)."""
    return f"RUNNING#{job}"


# --- conversion ---------------------------------------------------------------------------

_JSON_FIELDS = {"settings", "params", "command", "environment", "answer", "problems",
                "waiting", "log_tail", "outputs"}
#: Flags kept only while set (conditions test them with ``attribute_exists``).
_FLAGS = {"queued", "waited"}


def to_attrs(record: RunRecord | ItemRecord | AttemptRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if value is None or (key in _FLAGS and not value):
            continue
        if key == "waiting" and isinstance(value, int):  # the run's count
            out[WAITING_COUNTER] = value
        elif key in _JSON_FIELDS:
            out[key] = json.dumps(value, separators=(",", ":"), sort_keys=True)
        elif key == "counts":
            out.update({counter(s): value.get(s, 0) for s in COUNTED})
        elif isinstance(value, float):
            out[key] = str(value)  # DynamoDB numbers need Decimal; a string is exact enough
        else:
            out[key] = value
    return out


def from_attrs(cls: type[Any], attrs: dict[str, Any]) -> Any:
    names = set(cls.__dataclass_fields__)
    values: dict[str, Any] = {}
    for key, value in attrs.items():
        if key not in names:
            continue
        if key in _JSON_FIELDS:
            values[key] = json.loads(value)
        elif key in ("duration_seconds", "queued_seconds"):
            values[key] = float(value)
        elif hasattr(value, "as_integer_ratio") and not isinstance(value, int | float):
            values[key] = int(value)  # Decimal
        else:
            values[key] = value
    if cls is RunRecord:
        values["counts"] = {s: int(attrs.get(counter(s), 0)) for s in COUNTED}
        values["waiting"] = int(attrs.get(WAITING_COUNTER, 0))
    return cls(**values)


def ending_fields(s: Settlement) -> dict[str, Any]:
    """What an attempt's settlement writes on its item when the item ends (a final one):
    its reason, log tail and outputs (JSON text); None for a field to leave alone."""
    final = s.item_status is not None
    return {"reason": s.reason if final else None,
            "log_tail": _json(s.log_tail) if final and s.log_tail is not None else None,
            "outputs": _json(s.outputs) if final and s.outputs is not None else None}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def waiting_of(attempt: AttemptRecord) -> dict[str, Any] | None:
    """What a queued attempt's item says at first."""
    if not attempt.queued:
        return None
    return {"why": "waiting for a launch turn", "since": attempt.created_at, "tries": 0}


def queue_entry(item: ItemRecord, attempt: AttemptRecord) -> dict[str, Any]:
    """The launch queue entry of a queued attempt (plain values)."""
    entry: dict[str, Any] = {
        PARTITION_KEY: GATE_PK, SORT_KEY: attempt_queue_sk(attempt),
        "run_id": item.run_id, "index": item.index, "attempt": attempt.attempt,
        "capacity": attempt.capacity, "created_at": attempt.created_at,
    }
    if attempt.turn:
        entry["turn"] = attempt.turn
    if attempt.expires_at is not None:
        entry[TTL_ATTRIBUTE] = attempt.expires_at
    return entry
