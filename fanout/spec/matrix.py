"""The matrix: its axes, their values, and counting what ``exclude`` removes without
enumerating the combinations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from fanout.errors import Problem
from fanout.spec.axes import DatesAxis, RangeAxis, Scalar, zone_of
from fanout.spec.model import RunSpec
from fanout.spec.templates import dumps, escaped, text_of, value_key


@dataclass
class MatrixAxis:
    """One axis of the matrix with its values (a ``range`` is never materialized)."""

    name: str
    values: Sequence[Scalar]
    _positions: dict[tuple[bool, Any], int] | None = None

    def position(self, value: Any) -> int | None:
        """Where ``value`` is on this axis, or None when it is not."""
        if isinstance(self.values, range):
            if type(value) is not int or value not in self.values:
                return None
            return (value - self.values.start) // self.values.step
        if self._positions is None:
            self._positions = {value_key(v): i for i, v in enumerate(self.values)}
        return self._positions.get(value_key(value))

    def widest(self) -> int:
        """Position of the value with the longest rendered (JSON-escaped) text."""
        values = self.values
        if isinstance(values, range):
            ends = [0, len(values) - 1]  # str length of an int grows with |n|: an end wins
            return max(ends, key=lambda i: len(str(values[i])))
        return max(range(len(values)), key=lambda i: len(escaped(text_of(values[i]))))

    def entry(self, position: int) -> tuple[str, str]:
        """The value's JSON fragment and its escaped text fragment."""
        value = self.values[position]
        if type(value) is int:
            text = str(value)
            return text, text
        return dumps(value), escaped(text_of(value))


Pattern = frozenset[tuple[int, int]]  # (axis position, value position) pairs


@lru_cache(maxsize=4096)
def union_size(patterns: frozenset[Pattern], axis: int, sizes: tuple[int, ...]) -> int:
    """How many combinations of ``sizes[axis:]`` match at least one pattern.

    Splits on one axis at a time: the values a pattern names, and the rest (matched only
    by patterns that do not name the axis). Exact, and never enumerates combinations.
    """
    if not patterns:
        return 0
    if frozenset() in patterns:
        return math.prod(sizes[axis:])
    wild: set[Pattern] = set()
    by_value: dict[int, set[Pattern]] = {}
    for pattern in patterns:
        named = [p for a, p in pattern if a == axis]
        if named:
            by_value.setdefault(named[0], set()).add(pattern - {(axis, named[0])})
        else:
            wild.add(pattern)
    frozen_wild = frozenset(wild)
    total = (sizes[axis] - len(by_value)) * union_size(frozen_wild, axis + 1, sizes)
    for narrowed in by_value.values():
        total += union_size(frozenset(narrowed | wild), axis + 1, sizes)
    return total


def dropped_last(
    patterns: list[Pattern], outer: tuple[int, ...], last: int
) -> set[int] | None:
    """Positions of the last axis excluded under ``outer``; None when all of them are."""
    dropped: set[int] = set()
    for pattern in patterns:
        on_last = None
        for axis, position in pattern:
            if axis == last:
                on_last = position
            elif outer[axis] != position:
                break
        else:
            if on_last is None:
                return None
            dropped.add(on_last)
    return dropped


def axes_of(spec: RunSpec, when: datetime, cap: int) -> tuple[list[MatrixAxis], list[Problem]]:
    """The matrix's axes; each must fit under the cap alone (its values may be built)."""
    axes: list[MatrixAxis] = []
    problems: list[Problem] = []
    zone = zone_of(spec.timezone)  # checked when the spec was read
    for name, axis in (spec.params or {}).items():
        field = f"params.{name}"
        try:
            if isinstance(axis, RangeAxis):
                values: Sequence[Scalar] = axis.range.values()
            elif isinstance(axis, DatesAxis):
                field += ".dates"
                size = axis.dates.size(when, zone)
                if size > cap:
                    problems.append(Problem(field, f"{size:,} dates is over the cap of {cap:,}"))
                    continue
                values = axis.dates.values(when, zone)
            else:
                values = list(axis)
        except ValueError as exc:
            problems.append(Problem(field, str(exc)))
            continue
        if len(values) > cap:
            problems.append(Problem(field, f"{len(values):,} values is over the cap of {cap:,}"))
        axes.append(MatrixAxis(name, values))
    return axes, problems


def exclusions(spec: RunSpec, axes: list[MatrixAxis]) -> tuple[list[Pattern], list[Problem]]:
    index = {a.name: i for i, a in enumerate(axes)}
    patterns: list[Pattern] = []
    problems: list[Problem] = []
    for i, raw in enumerate(spec.exclude):
        pattern: set[tuple[int, int]] = set()
        for name, value in raw.items():
            position = axes[index[name]].position(value)
            if position is None:
                problems.append(Problem(
                    f"exclude[{i}].{name}", f"{dumps(value)} is not a value of params.{name}"
                ))
            else:
                pattern.add((index[name], position))
        patterns.append(frozenset(pattern))
    return patterns, problems


def explain_ranges(spec: RunSpec, when: datetime) -> list[str]:
    """Each range axis as a person reads it (``params.year: 1999..2019 (stop 2020
    excluded), 21 values``): a stop that is excluded is easily read as the last value."""
    lines: list[str] = []
    for name, axis in (spec.params or {}).items():
        try:
            if isinstance(axis, RangeAxis):
                lines.append(f"params.{name}: {axis.range.explained()}")
            elif isinstance(axis, DatesAxis):
                zone = zone_of(spec.timezone)
                lines.append(f"params.{name}: {axis.dates.explained(when, zone)}")
        except ValueError:
            continue  # an empty range is the plan's error, named there
    return lines
