"""Expansion of a run spec into items: counted first, checked, then streamed.

:func:`plan_run` validates everything that needs the deployment and the run's logical
time (the item cap, exclude/include against the axes, templates against every item, the
ECS overrides limit) and returns a :class:`Plan` whose ``count`` is exact and computed
without expanding. :meth:`Plan.json_lines` streams the items as compact JSON lines: the
matrix part is built from JSON fragments encoded once per axis value, so no item dict is
made and no ``json.dumps`` runs per item; memory does not grow with the item count.

Order: the cartesian product of the axes in their order, last axis fastest (like
``itertools.product``), excluded items dropped, then the ``include`` items in order. An
item's ``index`` is its position in that sequence.
"""

from __future__ import annotations

import csv
import io
import json
import math
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import product
from typing import Any, Literal

from fanout.config import FanoutConfig
from fanout.errors import Problem, SpecError
from fanout.policy import ECS_OVERRIDES_LIMIT
from fanout.schema import TASK_ENV_ATTEMPT, TASK_ENV_ITEM_INDEX, TASK_ENV_RUN_ID
from fanout.spec import (
    BUILTIN_PLACEHOLDERS,
    PARAM_NAME,
    DatesAxis,
    RangeAxis,
    RunSettings,
    RunSpec,
    Scalar,
    check_semantics,
    resolve,
)

ItemsFormat = Literal["json", "jsonl", "csv"]
Params = dict[str, Scalar]

#: A run id (the Step Functions execution name) is at most this long.
RUN_ID_MAX = 80
#: The widest value of FANOUT_ATTEMPT that the overrides check assumes.
ATTEMPT_WIDEST = "999"
#: Problems of one kind listed in an error before the rest are only counted.
_MAX_LISTED = 20


# --- values as text and JSON ----------------------------------------------------------------


def text_of(value: Scalar) -> str:
    """A parameter as it appears in a rendered command or environment value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escaped(text: str) -> str:
    """``text`` JSON-escaped, without the quotes (escaping is per character, so it joins)."""
    return json.dumps(text)[1:-1]


def _key(value: Any) -> tuple[bool, Any]:
    # Equality as JSON sees it: true is not 1 (Python says True == 1).
    return (type(value) is bool, value)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# --- templates -------------------------------------------------------------------------------

Segments = list[tuple[str, str | None]]  # (literal text, placeholder name or None)


def _segments(template: str) -> Segments:
    return [(lit, field) for lit, field, _, _ in string.Formatter().parse(template)]


def _render(segments: Segments, texts: Mapping[str, str]) -> str:
    return "".join(lit + (texts[field] if field is not None else "") for lit, field in segments)


@dataclass(frozen=True)
class _Templates:
    """The run's command and environment templates, parsed once."""

    command: list[Segments]
    environment: list[tuple[str, Segments]]

    @classmethod
    def of(cls, settings: RunSettings) -> _Templates:
        return cls(
            command=[_segments(t) for t in settings.command],
            environment=[(name, _segments(t)) for name, t in settings.environment.items()],
        )

    def names(self) -> set[str]:
        every = [*self.command, *(segs for _, segs in self.environment)]
        return {field for segs in every for _, field in segs if field is not None}

    def render(self, texts: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
        command = [_render(segs, texts) for segs in self.command]
        environment = {name: _render(segs, texts) for name, segs in self.environment}
        return command, environment


def container_overrides(
    container: str, command: list[str], environment: Mapping[str, str], *,
    run_id: str, index: int | str, attempt: int | str,
) -> dict[str, Any]:
    """The ``overrides`` of RunTask for one attempt: the item's command and environment
    plus the variables by which fanout finds the attempt from a task event."""
    env = [{"name": k, "value": v} for k, v in environment.items()]
    env += [
        {"name": TASK_ENV_RUN_ID, "value": run_id},
        {"name": TASK_ENV_ITEM_INDEX, "value": str(index)},
        {"name": TASK_ENV_ATTEMPT, "value": str(attempt)},
    ]
    return {"containerOverrides": [{"name": container, "command": command, "environment": env}]}


def overrides_size(
    container: str, command: list[str], environment: Mapping[str, str], *, index_digits: int = 8
) -> int:
    """Characters of the widest overrides any attempt of this item can have (compact JSON,
    run id of the widest allowed length, attempt 999) — what ECS's 8 KiB limit counts."""
    overrides = container_overrides(
        container, command, environment,
        run_id="r" * RUN_ID_MAX, index="9" * index_digits, attempt=ATTEMPT_WIDEST,
    )
    return len(_dumps(overrides))


# --- axes ------------------------------------------------------------------------------------


@dataclass
class _Axis:
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
            self._positions = {_key(v): i for i, v in enumerate(self.values)}
        return self._positions.get(_key(value))

    def widest(self) -> int:
        """Position of the value with the longest rendered (JSON-escaped) text."""
        values = self.values
        if isinstance(values, range):
            ends = [0, len(values) - 1]  # str length of an int grows with |n|: an end wins
            return max(ends, key=lambda i: len(str(values[i])))
        return max(range(len(values)), key=lambda i: len(_escaped(text_of(values[i]))))

    def entry(self, position: int) -> tuple[str, str]:
        """The value's JSON fragment and its escaped text fragment."""
        value = self.values[position]
        if type(value) is int:
            text = str(value)
            return text, text
        return _dumps(value), _escaped(text_of(value))


Pattern = frozenset[tuple[int, int]]  # (axis position, value position) pairs


@lru_cache(maxsize=4096)
def _union_size(patterns: frozenset[Pattern], axis: int, sizes: tuple[int, ...]) -> int:
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
    total = (sizes[axis] - len(by_value)) * _union_size(frozen_wild, axis + 1, sizes)
    for narrowed in by_value.values():
        total += _union_size(frozenset(narrowed | wild), axis + 1, sizes)
    return total


# --- the plan --------------------------------------------------------------------------------


class Plan:
    """A checked run: its settings, exact item count, and the items as a stream."""

    def __init__(
        self, *, spec: RunSpec, settings: RunSettings, run_id: str, logical_time: datetime,
        count: int, axes: list[_Axis], excluded: list[Pattern], rows: list[Params],
        include: list[Params],
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.run_id = run_id
        self.logical_time = logical_time
        self.count = count
        self._axes = axes
        self._excluded = excluded
        self._rows = rows  # explicit items (items / items_from), already filtered
        self._include = include
        self._templates = _Templates.of(settings)

    def __repr__(self) -> str:
        return f"Plan(job={self.spec.job!r}, run_id={self.run_id!r}, count={self.count})"

    # -- params in order

    def _matrix_positions(self) -> Iterator[tuple[int, ...]]:
        if not self._axes:
            return
        sizes = [len(a.values) for a in self._axes]
        excluded = self._excluded
        inner = [range(s) for s in sizes[1:]]
        for first in range(sizes[0]):  # the first axis is walked, never materialized
            for rest in product(*inner):
                combo = (first, *rest)
                if excluded and any(all(combo[a] == p for a, p in pat) for pat in excluded):
                    continue
                yield combo

    def params(self) -> Iterator[Params]:
        """Each item's parameters, in item order."""
        axes = self._axes
        for combo in self._matrix_positions():
            yield {a.name: a.values[p] for a, p in zip(axes, combo, strict=True)}
        yield from self._rows
        yield from self._include

    def render(self, index: int, params: Params) -> dict[str, Any]:
        texts = {k: text_of(v) for k, v in params.items()}
        texts["index"] = str(index)
        texts["run_id"] = self.run_id
        command, environment = self._templates.render(texts)
        return {"index": index, "params": params, "command": command, "environment": environment}

    def items(self) -> Iterator[dict[str, Any]]:
        """``{"index", "params", "command", "environment"}`` per item, in order."""
        for index, params in enumerate(self.params()):
            yield self.render(index, params)

    def json_lines(self) -> Iterator[str]:
        """The items as compact JSON (``json.dumps(item, separators=(",", ":"))``), no newline."""
        index = 0
        if self._axes:
            yield from self._matrix_lines()
            index = self.count - len(self._rows) - len(self._include)
        for params in (*self._rows, *self._include):
            yield _dumps(self.render(index, params))
            index += 1

    # -- the fast path

    def _line_parts(self) -> list[str | tuple[str, int]]:
        """One line as literal JSON text and holes: ("idx", 0), ("json", axis), ("text", axis)."""
        position = {a.name: i for i, a in enumerate(self._axes)}
        parts: list[str | tuple[str, int]] = ['{"index":', ("idx", 0), ',"params":{']
        for i, axis in enumerate(self._axes):
            parts += [("," if i else "") + _dumps(axis.name) + ":", ("json", i)]
        parts.append('},"command":[')

        def template(segments: Segments) -> None:
            parts.append('"')
            for literal, field in segments:
                parts.append(_escaped(literal))
                if field == "index":
                    parts.append(("idx", 0))
                elif field == "run_id":
                    parts.append(_escaped(self.run_id))
                elif field is not None:
                    parts.append(("text", position[field]))
            parts.append('"')

        for i, segments in enumerate(self._templates.command):
            parts.append("," if i else "")
            template(segments)
        parts.append('],"environment":{')
        for i, (name, segments) in enumerate(self._templates.environment):
            parts.append(("," if i else "") + _dumps(name) + ":")
            template(segments)
        parts.append("}}")
        return parts

    def _matrix_lines(self) -> Iterator[str]:
        """Lines of the matrix part.

        Per combination of the outer axes, one ``%``-format string is made with their
        fragments in place, leaving holes for the index and the last axis's fragments;
        each item is then that string applied to a tuple that ``zip`` builds in C from
        the last axis's pre-encoded fragments and the running index.
        """
        axes = self._axes
        last = len(axes) - 1
        parts = self._line_parts()
        holes = [p for p in parts if not isinstance(p, str) and (p[0] == "idx" or p[1] == last)]
        kinds = {"json": 0, "text": 1}
        last_entries = [axes[last].entry(p) for p in range(len(axes[last].values))]
        all_columns = {"json": [e[0] for e in last_entries], "text": [e[1] for e in last_entries]}
        # Fragments of the middle axes, escaped for a %-format (the first axis is walked).
        middle = [
            list(enumerate(tuple(f.replace("%", "%%") for f in a.entry(p))
                           for p in range(len(a.values))))
            for a in axes[1:last]
        ]

        def outer() -> Iterator[tuple[tuple[int, ...], tuple[tuple[str, ...], ...]]]:
            if last == 0:
                yield (), ()
                return
            first = axes[0]
            for p0 in range(len(first.values)):
                e0 = tuple(f.replace("%", "%%") for f in first.entry(p0))
                for rest in product(*middle):
                    yield (p0, *(p for p, _ in rest)), (e0, *(e for _, e in rest))

        index = 0
        for positions, entries in outer():
            fmt = "".join(
                p.replace("%", "%%") if isinstance(p, str)
                else "%s" if p[0] == "idx" or p[1] == last
                else entries[p[1]][kinds[p[0]]]
                for p in parts
            )
            columns = all_columns
            if self._excluded:
                dropped = _dropped_last(self._excluded, positions, last)
                if dropped is None:
                    continue
                if dropped:
                    kept = [e for p, e in enumerate(last_entries) if p not in dropped]
                    columns = {"json": [e[0] for e in kept], "text": [e[1] for e in kept]}
            size = len(columns["json"])
            indexes = range(index, index + size)
            yield from map(fmt.__mod__, zip(*(
                indexes if hole[0] == "idx" else columns[hole[0]] for hole in holes
            ), strict=True))
            index += size


def _dropped_last(
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


# --- planning --------------------------------------------------------------------------------


def plan_run(
    spec: RunSpec, config: FanoutConfig, *, run_id: str = "local-run",
    logical_time: datetime | None = None, items: list[dict[str, Any]] | None = None,
) -> Plan:
    """Check ``spec`` against the deployment and plan its run without expanding it.

    ``items`` are the explicit items already read for ``items_from``. Raises
    :class:`SpecError` naming every bad field.
    """
    problems = check_semantics(spec, config)
    if problems:
        raise SpecError(problems)
    if not 1 <= len(run_id) <= RUN_ID_MAX:
        raise SpecError([Problem("run_id", f"must be 1 to {RUN_ID_MAX} characters")])
    when = logical_time or spec.logical_time or datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    settings = resolve(spec, config.jobs[spec.job])
    templates = _Templates.of(settings)
    cap = config.limits.max_items_per_run
    used = templates.names() - set(BUILTIN_PLACEHOLDERS)

    axes: list[_Axis] = []
    excluded: list[Pattern] = []
    rows: list[Params] = []
    matrix_count = 0
    if spec.params is not None:
        axes, problems = _axes(spec, when, cap)
        if problems:
            raise SpecError(problems)
        excluded, problems = _exclusions(spec, axes)
        if problems:
            raise SpecError(problems)
        sizes = tuple(len(a.values) for a in axes)
        matrix_count = math.prod(sizes) - _union_size(frozenset(excluded), 0, sizes)
    else:
        source, raw_rows = _explicit_rows(spec, items)
        problems = [] if source == "items" else _row_problems(raw_rows, source)
        problems += _missing_placeholders(raw_rows, used, source)
        if not problems:
            rows = [r for r in raw_rows if not _excluded_row(r, spec.exclude)]

    include = [dict(i) for i in spec.include]
    problems += _missing_placeholders(include, used, "include")
    problems += _include_duplicates(include, axes, excluded, rows)
    count = matrix_count + len(rows) + len(include)
    if count > cap:
        source_field = "params" if spec.params is not None else _source_name(spec)
        problems.append(Problem(
            source_field,
            f"{count:,} items is over the deployment's cap of {cap:,} items per run",
        ))
    if count == 0 and not problems:
        problems.append(Problem("exclude", "excludes every item: nothing to run"))
    if problems:
        raise SpecError(problems)

    plan = Plan(
        spec=spec, settings=settings, run_id=run_id, logical_time=when, count=count,
        axes=axes, excluded=excluded, rows=rows, include=include,
    )
    problem = _overrides_problem(plan, spec, templates)
    if problem:
        raise SpecError([problem])
    return plan


def _source_name(spec: RunSpec) -> str:
    if spec.items is not None:
        return "items"
    return "items_from" if spec.items_from is not None else "include"


def _axes(spec: RunSpec, when: datetime, cap: int) -> tuple[list[_Axis], list[Problem]]:
    """The matrix's axes; each must fit under the cap alone (its values may be built)."""
    axes: list[_Axis] = []
    problems: list[Problem] = []
    for name, axis in (spec.params or {}).items():
        field = f"params.{name}"
        try:
            if isinstance(axis, RangeAxis):
                values: Sequence[Scalar] = axis.range.values()
            elif isinstance(axis, DatesAxis):
                field += ".dates"
                size = axis.dates.size(when)
                if size > cap:
                    problems.append(Problem(field, f"{size:,} dates is over the cap of {cap:,}"))
                    continue
                values = axis.dates.values(when)
            else:
                values = list(axis)
        except ValueError as exc:
            problems.append(Problem(field, str(exc)))
            continue
        if len(values) > cap:
            problems.append(Problem(field, f"{len(values):,} values is over the cap of {cap:,}"))
        axes.append(_Axis(name, values))
    return axes, problems


def _exclusions(spec: RunSpec, axes: list[_Axis]) -> tuple[list[Pattern], list[Problem]]:
    index = {a.name: i for i, a in enumerate(axes)}
    patterns: list[Pattern] = []
    problems: list[Problem] = []
    for i, raw in enumerate(spec.exclude):
        pattern: set[tuple[int, int]] = set()
        for name, value in raw.items():
            position = axes[index[name]].position(value)
            if position is None:
                problems.append(Problem(
                    f"exclude[{i}].{name}", f"{_dumps(value)} is not a value of params.{name}"
                ))
            else:
                pattern.add((index[name], position))
        patterns.append(frozenset(pattern))
    return patterns, problems


def _explicit_rows(
    spec: RunSpec, items: list[dict[str, Any]] | None
) -> tuple[str, list[Params]]:
    if spec.items is not None:
        return "items", [dict(r) for r in spec.items]
    if spec.items_from is not None:
        if items is None:
            raise SpecError([Problem(
                "items_from", f"the items of {spec.items_from} have not been read "
                "(they are read at run time; give their content to plan the run)",
            )])
        return "items_from", items
    return "include", []


def _row_problems(rows: list[Any], field: str) -> list[Problem]:
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
    return _capped(problems)


def _missing_placeholders(rows: list[Params], used: set[str], field: str) -> list[Problem]:
    problems: list[Problem] = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        missing = sorted(used - set(row))
        if missing:
            where = f"{field}[{n}]" if field != "items_from" else field
            lead = "" if field != "items_from" else f"item {n}: "
            names = ", ".join("{" + m + "}" for m in missing)
            problems.append(Problem(where, f"{lead}has no value for {names} (used by templates)"))
    return _capped(problems)


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= _MAX_LISTED:
        return problems
    rest = len(problems) - _MAX_LISTED
    return [*problems[:_MAX_LISTED], Problem(problems[0].field, f"... and {rest} more")]


def _excluded_row(row: Params, exclude: list[dict[str, Scalar]]) -> bool:
    return any(
        all(k in row and _key(row[k]) == _key(v) for k, v in pattern.items())
        for pattern in exclude
    )


def _canonical(params: Mapping[str, Any]) -> frozenset[tuple[str, tuple[bool, Any]]]:
    return frozenset((k, _key(v)) for k, v in params.items())


def _include_duplicates(
    include: list[Params], axes: list[_Axis], excluded: list[Pattern], rows: list[Params]
) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[frozenset[tuple[str, tuple[bool, Any]]], int] = {}
    row_keys = {_canonical(r) for r in rows} if rows else set()
    names = [a.name for a in axes]
    for i, item in enumerate(include):
        key = _canonical(item)
        if key in seen:
            problems.append(Problem(f"include[{i}]", f"repeats include[{seen[key]}]"))
            continue
        seen[key] = i
        if key in row_keys:
            problems.append(Problem(f"include[{i}]", "repeats one of the items"))
        elif axes and set(item) == set(names):
            positions = [a.position(item[a.name]) for a in axes]
            if None in positions:
                continue
            combo = dict(enumerate(positions))
            if not any(all(combo[a] == p for a, p in pat) for pat in excluded):
                problems.append(Problem(
                    f"include[{i}]", "is already an item of the matrix (include adds new ones)"
                ))
    return problems


def _overrides_problem(plan: Plan, spec: RunSpec, templates: _Templates) -> Problem | None:
    """The first item whose widest overrides break ECS's limit, or None.

    For the matrix, the widest item is known from per-axis maxima (each placeholder adds its
    value's length independently), so the common case renders one item, not every one.
    """
    container = spec.job
    digits = len(str(max(plan.count - 1, 0)))
    fixed = {"index": "9" * digits, "run_id": "r" * max(RUN_ID_MAX, len(_escaped(plan.run_id)))}

    def size(params: Mapping[str, Scalar]) -> tuple[int, list[str], dict[str, str]]:
        command, environment = templates.render({
            **{k: text_of(v) for k, v in params.items()}, **fixed,
        })
        return overrides_size(container, command, environment, index_digits=digits), \
            command, environment

    def problem(params: Mapping[str, Scalar]) -> Problem | None:
        chars, command, environment = size(params)
        if chars <= ECS_OVERRIDES_LIMIT:
            return None
        field = "command" if len(_dumps(command)) >= len(_dumps(environment)) else "environment"
        if getattr(spec, field) is None:
            field = f"job {spec.job} {field}"
        return Problem(field, (
            f"the container overrides of item {_dumps(dict(params))[:200]} would be {chars:,} "
            f"characters (with fanout's {TASK_ENV_RUN_ID}, {TASK_ENV_ITEM_INDEX} and "
            f"{TASK_ENV_ATTEMPT}), over ECS's limit of {ECS_OVERRIDES_LIMIT:,}"
        ))

    axes = plan._axes
    if axes:
        widest = [a.widest() for a in axes]
        params = {a.name: a.values[p] for a, p in zip(axes, widest, strict=True)}
        found = problem(params)
        if found:
            combo = dict(enumerate(widest))
            if not any(all(combo[a] == p for a, p in pat) for pat in plan._excluded):
                return found
            # The widest was excluded: check every item of the matrix (bounded by the cap).
            for combo_positions in plan._matrix_positions():
                found = problem({
                    a.name: a.values[p] for a, p in zip(axes, combo_positions, strict=True)
                })
                if found:
                    return found
    for params in (*plan._rows, *plan._include):
        found = problem(params)
        if found:
            return found
    return None


# --- items_from content ----------------------------------------------------------------------


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
    problems = _row_problems(rows, "items_from")
    if problems:
        raise SpecError(problems)
    return rows


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


__all__ = [
    "Plan",
    "container_overrides",
    "overrides_size",
    "plan_run",
    "read_items",
    "text_of",
]
