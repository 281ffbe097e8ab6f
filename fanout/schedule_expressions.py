"""EventBridge Scheduler's schedule expressions, checked as the service checks them.

- ``cron(minutes hours day-of-month month day-of-week year)``: six fields; one of
  day-of-month and day-of-week must be ``?``.
- ``rate(value unit)``: a positive whole value; ``minute``/``hour``/``day`` when the value
  is 1, ``minutes``/``hours``/``days`` otherwise.
- ``at(yyyy-mm-ddThh:mm:ss)``: one time, in the schedule's time zone.

A recurring schedule's window (``start_date``, ``end_date``: StartDate and EndDate) is
written in the schedule's time zone too, as a day (``2027-01-04``: from that day's first
moment; as an end, through that whole day) or a time (``2027-01-04T09:00``), and given
to EventBridge Scheduler in UTC.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta

CRON_EXAMPLE = "cron(0 2 * * ? *)"
_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_RANGES = {"minutes": (0, 59), "hours": (0, 23), "day-of-month": (1, 31), "month": (1, 12),
           "day-of-week": (1, 7), "year": (1970, 2199)}
_NAMES = {
    "month": {m: i + 1 for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))},
    "day-of-week": {d: i + 1 for i, d in enumerate(
        ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))},
}
_RATE = re.compile(r"(\S+)\s+(\S+)")
_RATE_UNITS = ("minute", "hour", "day")


def expression_problem(expression: str) -> str | None:
    """What is wrong with a schedule expression, with the fix; None when it is good."""
    match = re.fullmatch(r"(cron|rate|at)\((.*)\)", expression.strip())
    if not match:
        return (f"{expression!r} is not a schedule expression; write {CRON_EXAMPLE}, "
                "rate(1 day) or at(2030-01-31T02:00:00)")
    kind, body = match[1], match[2].strip()
    if kind == "cron":
        return _cron_problem(expression, body)
    if kind == "rate":
        return _rate_problem(expression, body)
    try:
        datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return (f"{expression!r} is not a valid one-time schedule; write "
                "at(yyyy-mm-ddThh:mm:ss) with a real date and time, e.g. at(2030-01-31T02:00:00)")
    return None


def _rate_problem(expression: str, body: str) -> str | None:
    match = _RATE.fullmatch(body)
    fix = "write rate(5 minutes), rate(1 hour) or rate(2 days)"
    if not match or not match[1].isdigit() or int(match[1]) < 1:
        return f"{expression!r} needs a positive whole number and a unit; {fix}"
    value, unit = int(match[1]), match[2]
    singular = unit.rstrip("s") if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        return (f"{expression!r}: {unit!r} is not a unit EventBridge Scheduler takes; use "
                f"minutes, hours or days ({fix})")
    wanted = singular if value == 1 else singular + "s"
    if unit != wanted:
        return f"{expression!r}: write rate({value} {wanted}) (singular only for 1)"
    return None


def _cron_problem(expression: str, body: str) -> str | None:
    fields = body.split()
    if len(fields) != 6:
        return (f"{expression!r} has {len(fields)} fields; EventBridge Scheduler's cron takes "
                f"six: minutes hours day-of-month month day-of-week year, e.g. {CRON_EXAMPLE}")
    for name, text in zip(_FIELDS, fields, strict=True):
        bad = _cron_field_problem(name, text)
        if bad:
            return f"{expression!r}: the {name} field {text!r} {bad}"
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return (f"{expression!r}: exactly one of day-of-month and day-of-week must be '?', "
                f"e.g. {CRON_EXAMPLE}")
    return None


def _value(name: str, text: str) -> int | None:
    names = _NAMES.get(name, {})
    if text.upper() in names:
        return names[text.upper()]
    return int(text) if text.isdigit() else None


def _cron_field_problem(name: str, text: str) -> str | None:
    low, high = _RANGES[name]
    wildcard_q = name in ("day-of-month", "day-of-week")
    for part in text.split(","):
        if part == "*" or (part == "?" and wildcard_q):
            continue
        if name == "day-of-month" and re.fullmatch(r"L|LW|\d{1,2}W", part):
            continue
        if name == "day-of-week" and re.fullmatch(r"L|\w{1,3}L|\w{1,3}#[1-5]", part):
            continue
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) < 1):
            return f"has the step {step!r}; a step is a positive whole number"
        bounds = ["*"] if base == "*" else base.split("-")
        if bounds == ["*"] and step:
            continue
        if len(bounds) > 2 or not all(bounds):
            return f"is not a value, a range a-b, a list or '*' ({low}-{high})"
        for bound in bounds:
            value = _value(name, bound)
            if value is None or not low <= value <= high:
                return f"holds {bound!r}; it takes {low} to {high}" + (
                    " or their names" if name in _NAMES else "") + (", or '?'" if wildcard_q
                                                                      else "")
    return None


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")


def window_moment(text: str, *, end: bool) -> datetime:
    """A window's ``start_date`` or ``end_date`` as a time in the schedule's zone (naive):
    a day is that day's first moment as a start, the next day's as an end (the whole day
    is in the window). Raises ValueError saying what to write."""
    shown = str(text).strip()
    try:
        if _DAY.fullmatch(shown):
            day = date.fromisoformat(shown)
            first = datetime(day.year, day.month, day.day)
            return first + timedelta(days=1) if end else first
        if _TIME.fullmatch(shown):
            return datetime.fromisoformat(shown)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a real date ({exc})") from None
    raise ValueError(f"{text!r} is not a date; write a day (2027-01-04) or a time "
                     "(2027-01-04T09:00), in the schedule's time zone, with no offset")


def window_utc(text: str, timezone: str, *, end: bool) -> str:
    """The window's bound as EventBridge Scheduler takes it: UTC, ``...Z``."""
    local = window_moment(text, end=end).replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
