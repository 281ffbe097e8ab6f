"""The axes of a run spec's matrix: lists of values, integer ranges and date ranges.

Dates may be relative (``today``, ``today-7d``), resolved against the run's logical time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fanout.policy import Count, Frozen

Scalar = str | int | float | bool
#: Placeholders every item has, besides its parameters.
BUILTIN_PLACEHOLDERS = ("index", "run_id")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

#: The integers a range may run over: those JSON carries exactly (Step Functions included).
SAFE_INT = 2**53 - 1
#: How many values of a date range are checked for a ``format`` that repeats values.
FORMAT_CHECKED = 10_000

_STEP = re.compile(r"^(\d+)([wdhm])$")
#: How a datetime value prints unless ``format`` says otherwise.
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_RELATIVE = re.compile(r"^(today|now)(?:([+-])(\d+)([wdhm]))?$")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1)}


#: Why a range's end is wrong, by whether ``stop`` was given (then ``through`` was too).
_ONE_END = {True: "give stop (excluded) or through (included), not both",
            False: "give its end: stop (excluded) or through (included)"}


# --- axes ---------------------------------------------------------------------------------


class IntRange(Frozen):
    """Integers like Python's ``range``: ``stop`` is excluded; or up to ``through``, included
    (``{"start": 1999, "through": 2019}`` is the 21 years 1999...2019). One of the two."""

    start: Count = Field(ge=-SAFE_INT, le=SAFE_INT)
    stop: Count | None = Field(default=None, ge=-SAFE_INT, le=SAFE_INT)
    through: Count | None = Field(default=None, ge=-SAFE_INT, le=SAFE_INT)
    step: Count = Field(default=1, ge=-SAFE_INT, le=SAFE_INT)

    @model_validator(mode="after")
    def _non_empty(self) -> IntRange:
        if (self.stop is None) == (self.through is None):
            raise ValueError(_ONE_END[self.stop is not None]
                             + f": e.g. {{\"start\": {self.start}, \"through\": "
                               f"{self.start + 20}}}")
        if self.step == 0:
            raise ValueError("step must not be 0")
        if self.size() == 0:
            word = "before" if self.step > 0 else "after"
            if self.through is not None:
                word = "at or " + ("after" if self.step > 0 else "before")
                raise ValueError(f"through {self.through} is not {word} start {self.start}: "
                                 "the range is empty")
            raise ValueError(
                f"stop {self.stop} is not {word} start {self.start}: the range is empty"
            )
        return self

    @property
    def end(self) -> int:
        """The excluded end, as Python's ``range`` takes it."""
        if self.through is not None:
            return self.through + (1 if self.step > 0 else -1)
        assert self.stop is not None
        return self.stop

    def size(self) -> int:
        return len(self.values())

    def values(self) -> range:
        return range(self.start, self.end, self.step)

    def explained(self) -> str:
        """The range as a person reads it: ``1999..2019 (stop 2020 excluded), 21 values``."""
        values = self.values()
        shown = f"{values[0]}..{values[-1]}" + (f" by {self.step}" if self.step != 1 else "")
        how = f"stop {self.stop} excluded" if self.stop is not None \
            else f"through {self.through} included"
        count = len(values)
        return f"{shown} ({how}), {count:,} value{'s' if count != 1 else ''}"


def parse_step(text: str) -> timedelta:
    match = _STEP.fullmatch(text)
    if not match or int(match[1]) == 0:
        raise ValueError(f"step {text!r} is not a positive duration like 1d, 7d, 1h, 30m, 1w")
    return int(match[1]) * _UNITS[match[2]]


def parse_instant(text: str, logical_time: datetime | None,
                  zone: tzinfo = UTC) -> datetime:
    """An ISO date/datetime, or ``today``/``now`` with an offset, as an aware datetime in
    ``zone`` (the run's time zone: a schedule's, else UTC).

    ``today`` is midnight, in ``zone``, of the logical time's day there; an ISO date is
    that day's midnight in ``zone``. Without a logical time, relative bounds are only
    checked for form (the returned value is then arbitrary but consistent).
    """
    match = _RELATIVE.fullmatch(text)
    if match:
        anchor = logical_time or datetime(2000, 1, 1, tzinfo=UTC)
        anchor = anchor.astimezone(zone)
        if match[1] == "today":
            anchor = datetime.combine(anchor.date(), datetime.min.time(), zone)
        if match[2]:
            offset = int(match[3]) * _UNITS[match[4]]
            anchor = _shift(anchor, offset if match[2] == "+" else -offset)
        return anchor
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), zone)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date (2024-01-31), datetime, or today/now[+-N(d|h|m|w)]"
        ) from None
    # An offset is honoured; without one the time is the run's zone's.
    return parsed.astimezone(zone) if parsed.tzinfo else parsed.replace(tzinfo=zone)


def zone_of(name: str | None) -> tzinfo:
    """The IANA time zone ``name`` (``Pacific/Auckland``); UTC when unset. Raises
    ValueError naming it when this machine's time zone database does not know it."""
    if not name or name == "UTC":
        return UTC
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Paris, UTC)") from None


def _shift(moment: datetime, by: timedelta) -> datetime:
    """Whole days move the wall clock (a day is a calendar day in the zone, 23 or 25 hours
    across a daylight-saving change); shorter steps move the instant."""
    if by % timedelta(days=1) == timedelta(0):
        return moment + by  # aware arithmetic on one zone is wall-clock arithmetic
    return (moment.astimezone(UTC) + by).astimezone(moment.tzinfo)


def _is_day_aligned(text: str) -> bool:
    match = _RELATIVE.fullmatch(text)
    if match:
        return match[1] == "today" and (not match[4] or match[4] in "dw")
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))


class DateRange(Frozen):
    """Dates or times from ``start`` up to ``stop`` (excluded), or up to ``through``
    (included), by ``step``.

    Values are ``YYYY-MM-DD`` when the bounds are days and the step is whole days,
    else ISO datetimes in UTC (``2024-01-01T06:00:00Z``); ``format`` (strftime) overrides.
    """

    start: str
    stop: str | None = None
    through: str | None = None
    step: str = "1d"
    format: str | None = Field(default=None, min_length=1)

    @field_validator("start", "stop", "through")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            parse_instant(value, None)
        return value

    @field_validator("step")
    @classmethod
    def _step(cls, value: str) -> str:
        parse_step(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if (self.stop is None) == (self.through is None):
            raise ValueError(_ONE_END[self.stop is not None]
                             + ': e.g. {"start": "2024-01-01", "through": "2024-01-31"}')
        # Comparable without a logical time when both are absolute or both relative.
        if bool(_RELATIVE.fullmatch(self.start)) == bool(_RELATIVE.fullmatch(self.end)):
            self.bounds(datetime(2000, 1, 1, tzinfo=UTC))
        return self

    @property
    def end(self) -> str:
        """The bound as written: ``stop`` or ``through``."""
        end = self.stop if self.stop is not None else self.through
        assert end is not None
        return end

    @field_validator("format")
    @classmethod
    def _distinct_values(cls, fmt: str | None, info: ValidationInfo) -> str | None:
        """A ``format`` that prints two of the range's dates alike would make items that
        differ in nothing: refuse it (the first values are checked, enough to see it)."""
        data = info.data
        end = data.get("stop") or data.get("through")
        if fmt is None or not end or not {"start", "step"} <= set(data):
            return fmt
        anchor = datetime(2000, 1, 1, tzinfo=UTC)
        start, stop = parse_instant(data["start"], anchor), parse_instant(end, anchor)
        if data.get("stop") is None:
            stop += timedelta(microseconds=1)
        step = parse_step(data["step"])
        seen: dict[str, datetime] = {}
        moment = start
        for _ in range(FORMAT_CHECKED):
            if moment >= stop:
                break
            value = moment.strftime(fmt)
            if value in seen:
                raise ValueError(
                    f"format {fmt!r} gives {seen[value].isoformat()} and {moment.isoformat()} "
                    f"the same value {value!r}; use a format that tells every step apart "
                    "(e.g. %Y-%m-%d for days, %Y-%m-%dT%H for hours)")
            seen[value] = moment
            moment += step
        return fmt

    def _stop(self, logical_time: datetime, zone: tzinfo = UTC) -> datetime:
        """The excluded end: ``stop``, or just after ``through`` (every step is a whole
        number of minutes, so a microsecond past it excludes nothing else)."""
        if self.stop is not None:
            return parse_instant(self.stop, logical_time, zone)
        return parse_instant(self.end, logical_time, zone) + timedelta(microseconds=1)

    def bounds(self, logical_time: datetime, zone: tzinfo = UTC
               ) -> tuple[datetime, datetime, timedelta]:
        start = parse_instant(self.start, logical_time, zone)
        stop = self._stop(logical_time, zone)
        if stop <= start:
            if self.through is not None:
                raise ValueError(f"through {self.through} is before start {self.start}: "
                                 "no dates")
            raise ValueError(f"stop {self.stop} is not after start {self.start}: no dates")
        return start, stop, parse_step(self.step)

    def value_format(self) -> str:
        if self.format:
            return self.format
        days = parse_step(self.step) % timedelta(days=1) == timedelta(0)
        if days and _is_day_aligned(self.start):
            return "%Y-%m-%d"
        return DATETIME_FORMAT

    def _moments(self, logical_time: datetime, zone: tzinfo) -> list[datetime]:
        start, _stop, step = self.bounds(logical_time, zone)
        return [_shift(start, step * i) for i in range(self.size(logical_time, zone))]

    def explained(self, logical_time: datetime, zone: tzinfo = UTC) -> str:
        """The range as a person reads it: ``2024-01-01..2024-01-31 (stop 2024-02-01
        excluded), 31 values``."""
        moments, fmt = self._moments(logical_time, zone), self.value_format()
        count = len(moments)
        first, last = (m.astimezone(UTC) if fmt == DATETIME_FORMAT else m
                       for m in (moments[0], moments[-1]))
        how = f"stop {self.stop} excluded" if self.stop is not None \
            else f"through {self.through} included"
        return (f"{first.strftime(fmt)}..{last.strftime(fmt)} ({how}), {count:,} "
                f"value{'s' if count != 1 else ''}")

    def size(self, logical_time: datetime, zone: tzinfo = UTC) -> int:
        start, stop, step = self.bounds(logical_time, zone)
        if step % timedelta(days=1) == timedelta(0):
            # Calendar days in the zone (same tzinfo: the difference is wall-clock time).
            return -(-(stop.replace(tzinfo=None) - start.replace(tzinfo=None)) // step)
        # Instants: compared in UTC (one zone's aware difference is wall-clock time).
        return -(-(stop.astimezone(UTC) - start.astimezone(UTC)) // step)

    def values(self, logical_time: datetime, zone: tzinfo = UTC) -> list[str]:
        """Days print as the zone's dates; datetimes in UTC (``...Z``) unless ``format``
        says otherwise (then in the zone)."""
        fmt = self.value_format()
        return [(m.astimezone(UTC) if fmt == DATETIME_FORMAT else m).strftime(fmt)
                for m in self._moments(logical_time, zone)]


class RangeAxis(Frozen):
    range: IntRange


class DatesAxis(Frozen):
    dates: DateRange


def _axis_kind(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return "axis:values"
    if isinstance(value, dict) and set(value) == {"range"}:
        return "axis:range"
    if isinstance(value, dict) and set(value) == {"dates"}:
        return "axis:dates"
    if isinstance(value, RangeAxis | DatesAxis):
        return "axis:range" if isinstance(value, RangeAxis) else "axis:dates"
    return None


Axis = Annotated[
    Annotated[list[Scalar], Tag("axis:values")]
    | Annotated[RangeAxis, Tag("axis:range")]
    | Annotated[DatesAxis, Tag("axis:dates")],
    Discriminator(
        _axis_kind,
        custom_error_type="axis",
        custom_error_message='an axis is a list of values, {"range": {...}} or {"dates": {...}}',
    ),
]
