"""The table layout of the records: keys, and records to and from item attributes.

Layout (docs/decisions/0001): run ``RUN#<id>``/``RUN``; the run's spec as given
``RUN#<id>``/``SPEC``; item ``RUN#<id>``/``ITEM#<index:08d>``; attempt
``RUN#<id>``/``ITEM#<index:08d>#A#<n:03d>``; task ``TASK#<arn>``/``TASK``; a schedule's
slot ``SLOT#<schedule>#<scheduled time>``/``SLOT``. The run's counters are attributes
``n_<status>``; JSON-valued fields are stored as compact JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from fanout.records.model import COUNTED, AttemptRecord, ItemRecord, ItemStatus, RunRecord

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


# --- conversion ---------------------------------------------------------------------------

_JSON_FIELDS = {"settings", "params", "command", "environment", "answer", "problems",
                "log_tail"}


def to_attrs(record: RunRecord | ItemRecord | AttemptRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if value is None:
            continue
        if key in _JSON_FIELDS:
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
        elif key == "duration_seconds":
            values[key] = float(value)
        elif hasattr(value, "as_integer_ratio") and not isinstance(value, int | float):
            values[key] = int(value)  # Decimal
        else:
            values[key] = value
    if cls is RunRecord:
        values["counts"] = {s: int(attrs.get(counter(s), 0)) for s in COUNTED}
    return cls(**values)
