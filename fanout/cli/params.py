"""``--param NAME=VALUE``: one axis of a run spec's matrix, written on the command line.

- ``year=1999..2019[:step]`` an integer range as written (both ends included);
- ``year=1999:2020[:step]`` an integer range (stop excluded, like Python's range);
- ``day=2024-01-01..2024-01-31[:1d]`` dates, both ends included;
- ``day=2024-01-01:2024-02-01[:1d]`` a date range, stop excluded (bounds may be ``today``,
  ``today-7d``, ``now+1h``; step like ``1d``, ``6h``, ``1w``);
- ``region=us,eu`` a list; ``x=5`` one value;
- ``t==10:30`` (two ``=``) one value taken as written: no range, no list, no number.

A value keeps its text unless it is plainly a number (``7``, ``-3``, ``2.5``; not ``02134``,
``1e3`` or ``+5``). A value that looks like a range or a date range but does not read as
one is an error, never silently one text value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fanout.errors import Problem, UsageError

#: The integers a range may run over: those JSON carries exactly (Step Functions included).
SAFE_INT = 2**53 - 1
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_FLOAT = re.compile(r"-?(?:0|[1-9]\d*)\.\d+")
_RANGE = re.compile(r"(-?\d+):(-?\d+)(?::(-?\d+))?")
_THROUGH = re.compile(r"(-?\d+)\.\.(-?\d+)(?::(-?\d+))?")
#: ``1999-2019``: a range written with a dash (same width, ascending), not one text value.
_DASHED = re.compile(r"(\d{2,})-(\d{2,})")
_RANGE_LIKE = re.compile(r"[+-]?\d+(?:(?::|\.\.+)[+-]?\w*)+")
_INSTANT = (
    r"(?:\d{4}-\d{2}-\d{2}(?:T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|(?:today|now)(?:[+-]\d+[wdhm])?)"
)
_DATES = re.compile(rf"({_INSTANT}):({_INSTANT})(?::(\d+[wdhm]))?")
_DATES_THROUGH = re.compile(rf"({_INSTANT})\.\.({_INSTANT})(?::(\d+[wdhm]))?")
_DATES_LIKE = re.compile(r"(?:\d{4}-\d{2}-\d{2}|today|now)\S*(?::|\.\.)\S*")
_RELATIVE_NO_UNIT = re.compile(r"(?:today|now)[+-]\d+(?=:|$)")
LITERAL_HINT = "to pass it as one text value, write NAME==VALUE"


def scalar(text: str) -> str | int | float:
    """A ``--param`` value: plainly a number becomes one; anything else stays text."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``--param`` values as the ``params`` of a run spec; bad ones raise UsageError."""
    params: dict[str, Any] = {}
    problems: list[Problem] = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            problems.append(Problem("--param", f"{pair!r} is not NAME=VALUE (e.g. "
                                               "year=1999:2020 or region=us,eu)"))
            continue
        if not PARAM_NAME.fullmatch(name):
            problems.append(Problem("--param", f"{name!r} is not a parameter name: use an "
                                               "identifier (a letter or _, then letters, "
                                               "digits or _)"))
            continue
        if name in params:
            problems.append(Problem(f"--param {name}", "given twice; give each parameter "
                                                       "once (a list is NAME=a,b)"))
            continue
        try:
            params[name] = param_axis(value)
        except ValueError as exc:
            problems.append(Problem(f"--param {name}", str(exc)))
    if problems:
        raise UsageError(problems)
    return params


def param_axis(value: str) -> Any:
    """The axis a ``--param`` value stands for (raises ValueError with the fix)."""
    if value.startswith("="):
        return [value[1:]]
    for pattern, end in ((_RANGE, "stop"), (_THROUGH, "through")):
        match = pattern.fullmatch(value)
        if match:
            return {"range": _int_range(value, match, end)}
    dashed = _DASHED.fullmatch(value)
    if dashed and len(dashed[1]) == len(dashed[2]) and int(dashed[1]) < int(dashed[2]):
        raise ValueError(f"{value!r} reads as one text value; for the range write "
                         f"{dashed[1]}..{dashed[2]} (both included), or {LITERAL_HINT}")
    if _RANGE_LIKE.fullmatch(value):
        raise ValueError(f"{value!r} looks like a range but is not START..THROUGH[:STEP] or "
                         "START:STOP[:STEP] of whole numbers (e.g. 1999..2019 or "
                         f"1999:2020:2); {LITERAL_HINT}")
    for pattern, end in ((_DATES, "stop"), (_DATES_THROUGH, "through")):
        match = pattern.fullmatch(value)
        if match:
            dates = {"start": match[1], end: match[2]}
            if match[3] is not None:
                dates["step"] = match[3]
            return {"dates": dates}
    if _DATES_LIKE.fullmatch(value):
        raise ValueError(_dates_problem(value))
    values = value.split(",")
    ranged = next((v for v in values if ".." in v), None)
    if ranged is not None and len(values) > 1:
        raise ValueError(f"{value!r}: a list cannot hold the range {ranged!r}; give a range "
                         f"alone, or the values one by one (or {LITERAL_HINT})")
    if "" in values:
        raise ValueError(f"{value!r} has an empty value in its list; remove the extra comma "
                         f"(or {LITERAL_HINT})")
    return [scalar(v) for v in values]


def _int_range(value: str, match: re.Match[str], end: str) -> dict[str, int]:
    """``START:STOP[:STEP]`` (``end`` is ``stop``) or ``START..THROUGH[:STEP]``."""
    start, last = int(match[1]), int(match[2])
    step = int(match[3]) if match[3] is not None else None
    for bound in (start, last, step or 1):
        if abs(bound) > SAFE_INT:
            raise ValueError(f"{bound} is too large for a range (at most {SAFE_INT}); "
                             + LITERAL_HINT)
    if step == 0:
        raise ValueError(f"{value!r}: a range's step must not be 0 (START..THROUGH:STEP, "
                         "e.g. 1999..2019:2)")
    axis = {"start": start, end: last}
    if step is not None:
        axis["step"] = step
    return axis


def _dates_problem(value: str) -> str:
    relative = _RELATIVE_NO_UNIT.search(value)
    if relative:
        return (f"{value!r}: {relative[0]!r} needs a unit: {relative[0]}d (days), h, m or w; "
                "e.g. today-7d:today")
    *_, last = value.rsplit(":", 1)
    if re.fullmatch(r"\d+[a-z]+", last):
        return (f"{value!r}: the step {last!r} is not like 1d, 7d, 6h, 30m or 1w "
                "(START:STOP[:STEP])")
    return (f"{value!r} looks like a date range but is not START..THROUGH[:STEP] or "
            "START:STOP[:STEP] (e.g. 2024-01-01..2024-01-31, 2024-01-01:2024-02-01:1d or "
            f"today-7d:today); {LITERAL_HINT}")
