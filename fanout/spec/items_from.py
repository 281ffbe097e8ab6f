"""Explicit items read at run time (``items_from``): JSON array, JSON Lines or CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Literal

from fanout.errors import Problem, SpecError
from fanout.spec.axes import BUILTIN_PLACEHOLDERS, PARAM_NAME

ItemsFormat = Literal["json", "jsonl", "csv"]
#: Problems of one kind listed in an error before the rest are only counted.
MAX_LISTED = 20


def items_from_format(uri: str) -> ItemsFormat:
    lower = uri.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    return "json"


def read_items(data: bytes, fmt: ItemsFormat) -> list[dict[str, Any]]:
    """Items from an ``items_from`` object's content: a JSON array of objects, JSON Lines
    (one object per line) or CSV with a header row (values stay strings).

    Raises :class:`SpecError` naming ``items_from`` for content that is not items.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem("items_from", f"not UTF-8 text ({exc.reason})")]) from None
    rows: list[Any]
    if fmt == "json":
        try:
            rows = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise SpecError([Problem("items_from", f"not a JSON array ({exc})")]) from None
        if not isinstance(rows, list):
            raise SpecError([Problem("items_from", "not a JSON array of objects")])
    elif fmt == "jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line, parse_constant=_no_constant))
            except ValueError as exc:
                raise SpecError([Problem("items_from", f"line {n} is not JSON ({exc})")]) from None
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = []
        for row in reader:
            if None in row or None in row.values():
                raise SpecError([Problem(
                    "items_from", f"CSV line {reader.line_num} does not match the header"
                )])
            rows.append(row)
    else:
        raise SpecError([Problem("items_format", f"unknown format {fmt!r}")])
    if not rows:
        raise SpecError([Problem("items_from", "holds no items")])
    problems = row_problems(rows, "items_from")
    if problems:
        raise SpecError(problems)
    return rows


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def row_problems(rows: list[Any], field: str) -> list[Problem]:
    problems: list[Problem] = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(Problem(field, f"item {n} is not an object"))
            continue
        if not row:
            problems.append(Problem(field, f"item {n} is empty"))
        for key, value in row.items():
            if not isinstance(key, str) or not PARAM_NAME.fullmatch(key) or (
                key in BUILTIN_PLACEHOLDERS
            ):
                problems.append(Problem(field, f"item {n}: {key!r} is not a usable parameter name"))
            elif not isinstance(value, str | int | float | bool) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                problems.append(Problem(
                    field, f"item {n}: {key} must be a string, number or boolean"
                ))
    return capped(problems)


def capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_LISTED:
        return problems
    rest = len(problems) - MAX_LISTED
    return [*problems[:MAX_LISTED], Problem(problems[0].field, f"... and {rest} more")]
