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

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from itertools import chain, product
from typing import Any

from fanout.config import FanoutConfig
from fanout.errors import Problem, SpecError
from fanout.policy import ECS_OVERRIDES_LIMIT
from fanout.schema import TASK_ENV_ATTEMPT, TASK_ENV_ITEM_INDEX, TASK_ENV_OUTPUT, TASK_ENV_RUN_ID
from fanout.spec.axes import BUILTIN_PLACEHOLDERS, Scalar
from fanout.spec.items_from import (
    ItemsSource,
    RowKey,
    StreamedRows,
    canonical,
    checked_stream,
    excluded_row,
    missing_placeholders,
)
from fanout.spec.matrix import MatrixAxis, Pattern, axes_of, dropped_last, exclusions, union_size
from fanout.spec.model import RunSettings, RunSpec, resolve
from fanout.spec.packing import Packing, plan_packing
from fanout.spec.templates import (
    RUN_ID_MAX,
    Segments,
    Templates,
    dumps,
    escaped,
    overrides_size,
    text_of,
)
from fanout.spec.validate import check_semantics

Params = dict[str, Scalar]


Rows = list[Params] | StreamedRows


class Plan:
    """A checked run: its settings, exact item count, and the items as a stream."""

    def __init__(
        self, *, spec: RunSpec, settings: RunSettings, run_id: str, logical_time: datetime,
        count: int, axes: list[MatrixAxis], excluded: list[Pattern], rows: Rows,
        include: list[Params], packing: Packing,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.run_id = run_id
        self.logical_time = logical_time
        self.count = count
        self._axes = axes
        self._excluded = excluded
        self._rows = rows  # explicit items (items / items_from), excluded ones left out
        self._include = include
        #: How the items go into tasks: ``items_per_task`` as asked, ``"auto"`` resolved.
        self.packing = packing
        self._templates = Templates.of(settings)

    def __repr__(self) -> str:
        return f"Plan(job={self.spec.job!r}, run_id={self.run_id!r}, count={self.count})"

    def unused_axes(self) -> list[str]:
        """Axes of ``params`` that no template names: their items differ in nothing the
        task sees (a mistake more often than not; the CLI warns about each)."""
        used = self._templates.names()
        return [name for name in (self.spec.params or {}) if name not in used]

    def warnings(self) -> list[str]:
        """What is legal but likely not meant, one line each."""
        return [
            f"params.{name}: no template uses this axis, so its items differ in nothing "
            f"the task sees; put {{{name}}} in the command or the environment, or drop it"
            for name in self.unused_axes()
        ]

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
        for params in chain(self._rows, self._include):
            yield dumps(self.render(index, params))
            index += 1

    # -- the fast path

    def _line_parts(self) -> list[str | tuple[str, int]]:
        """One line as literal JSON text and holes: ("idx", 0), ("json", axis), ("text", axis)."""
        position = {a.name: i for i, a in enumerate(self._axes)}
        parts: list[str | tuple[str, int]] = ['{"index":', ("idx", 0), ',"params":{']
        for i, axis in enumerate(self._axes):
            parts += [("," if i else "") + dumps(axis.name) + ":", ("json", i)]
        parts.append('},"command":[')

        def template(segments: Segments) -> None:
            parts.append('"')
            for literal, field in segments:
                parts.append(escaped(literal))
                if field == "index":
                    parts.append(("idx", 0))
                elif field == "run_id":
                    parts.append(escaped(self.run_id))
                elif field is not None:
                    parts.append(("text", position[field]))
            parts.append('"')

        for i, segments in enumerate(self._templates.command):
            parts.append("," if i else "")
            template(segments)
        parts.append('],"environment":{')
        for i, (name, segments) in enumerate(self._templates.environment):
            parts.append(("," if i else "") + dumps(name) + ":")
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
                dropped = dropped_last(self._excluded, positions, last)
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


# --- planning --------------------------------------------------------------------------------


def plan_run(
    spec: RunSpec, config: FanoutConfig, *, run_id: str = "local-run",
    logical_time: datetime | None = None,
    items: ItemsSource | None = None,
) -> Plan:
    """Check ``spec`` against the deployment and plan its run without expanding it.

    ``items`` are the items of ``items_from``: an :class:`ItemsSource` streamed from the
    object (S3's, or a local copy of it), never held whole. Raises :class:`SpecError`
    naming every bad field.
    """
    problems = check_semantics(spec, config)
    if problems:
        raise SpecError(problems)
    if not 1 <= len(run_id) <= RUN_ID_MAX:
        raise SpecError([Problem("run_id", f"must be 1 to {RUN_ID_MAX} characters")])
    when = logical_time or spec.logical_time or datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    settings = resolve(spec, config.jobs[spec.job])
    templates = Templates.of(settings)
    cap = config.limits.max_items_per_run
    used = templates.names() - set(BUILTIN_PLACEHOLDERS)

    axes: list[MatrixAxis] = []
    excluded: list[Pattern] = []
    rows: Rows = []
    row_keys: set[RowKey] = set()
    include = [dict(i) for i in spec.include]
    matrix_count = 0
    if spec.params is not None:
        axes, problems = axes_of(spec, when, cap)
        if problems:
            raise SpecError(problems)
        excluded, problems = exclusions(spec, axes)
        if problems:
            raise SpecError(problems)
        sizes = tuple(len(a.values) for a in axes)
        matrix_count = math.prod(sizes) - union_size(frozenset(excluded), 0, sizes)
    elif items is not None and spec.items_from is not None:
        rows, row_keys, problems = checked_stream(items, spec.exclude, used, include)
    else:
        source, raw_rows = _explicit_rows(spec)
        problems = missing_placeholders(raw_rows, used, source)
        problems += unmatched_excludes(raw_rows, spec.exclude, source)
        if not problems:
            rows = [r for r in raw_rows if not excluded_row(r, spec.exclude)]
            row_keys = {canonical(r) for r in rows} if include else set()

    problems += missing_placeholders(include, used, "include")
    problems += _include_duplicates(include, axes, excluded, row_keys)
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
        packing=_packing(count, settings, config),
    )
    problem = _overrides_problem(plan, spec, templates)
    if problem:
        raise SpecError([problem])
    return plan


def _packing(count: int, settings: RunSettings, config: FanoutConfig) -> Packing:
    bucket = config.launch_gate.bucket(settings.capacity)
    return plan_packing(
        count=count, items_per_task=settings.items_per_task,
        per_task_concurrency=settings.per_task_concurrency,
        max_concurrency=settings.max_concurrency, burst=bucket.burst,
        per_second=bucket.per_second)


def unmatched_excludes(rows: list[Params], exclude: list[dict[str, Scalar]],
                       source: str) -> list[Problem]:
    """An ``exclude`` pattern that matches none of an explicit list's items is a typo (a
    value or a name written differently): it would silently remove nothing."""
    return [Problem(f"exclude[{i}]", f"{dumps(pattern)} matches no item of {source}; check "
                                     "its names and values (2020 and \"2020\" differ)")
            for i, pattern in enumerate(exclude)
            if rows and not any(excluded_row(r, [pattern]) for r in rows)]


def _source_name(spec: RunSpec) -> str:
    if spec.items is not None:
        return "items"
    return "items_from" if spec.items_from is not None else "include"


def _explicit_rows(spec: RunSpec) -> tuple[str, list[Params]]:
    """The spec's own items (checked by its model), else none; ``items_from`` unread."""
    if spec.items is not None:
        return "items", [dict(r) for r in spec.items]
    if spec.items_from is not None:
        raise SpecError([Problem(
            "items_from", f"the items of {spec.items_from} have not been read "
            "(they are read at run time; give their content to plan the run)",
        )])
    return "include", []


def _include_duplicates(
    include: list[Params], axes: list[MatrixAxis], excluded: list[Pattern],
    row_keys: set[RowKey],
) -> list[Problem]:
    """``row_keys``: the canonical forms of the explicit items (those ``include`` may repeat)."""
    problems: list[Problem] = []
    seen: dict[RowKey, int] = {}
    names = [a.name for a in axes]
    for i, item in enumerate(include):
        key = canonical(item)
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


def _overrides_problem(plan: Plan, spec: RunSpec, templates: Templates) -> Problem | None:
    """The first item whose widest overrides break ECS's limit, or None.

    For the matrix, the widest item is known from per-axis maxima (each placeholder adds its
    value's length independently), so the common case renders one item, not every one.
    """
    container = spec.job
    digits = len(str(max(plan.count - 1, 0)))
    fixed = {"index": "9" * digits, "run_id": "r" * max(RUN_ID_MAX, len(escaped(plan.run_id)))}

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
        field = "command" if len(dumps(command)) >= len(dumps(environment)) else "environment"
        if getattr(spec, field) is None:
            field = f"job {spec.job} {field}"
        return Problem(field, (
            f"the container overrides of item {dumps(dict(params))[:200]} would be {chars:,} "
            f"characters (with fanout's {TASK_ENV_RUN_ID}, {TASK_ENV_ITEM_INDEX}, "
            f"{TASK_ENV_ATTEMPT} and {TASK_ENV_OUTPUT}), over ECS's limit of "
            f"{ECS_OVERRIDES_LIMIT:,}"
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
    for params in chain(plan._rows, plan._include):
        found = problem(params)
        if found:
            return found
    return None
