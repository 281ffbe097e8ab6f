"""The local records file's format (docs/local-records.md): its name, and how a line
written by an earlier format is read today. Here rather than in fanout.local so that the
dashboard reads local records files without importing the local mode."""

from __future__ import annotations

from typing import Any

FORMAT = "fanout.local-records/2"


def upgraded(row: dict[str, Any]) -> dict[str, Any]:
    """A line of any format so far as :data:`FORMAT` has it: format 1 counted an item's
    attempts in ``attempts``, format 2 in ``attempt_count`` (an ItemDetail's ``attempts``
    is the list of them)."""
    if row.get("record") == "item" and "attempt_count" not in row:
        row["attempt_count"] = row.pop("attempts", 0)
    return row
