"""The run spec: the one source of truth for what starts a run.

It is the Step Functions execution input, a schedule's body and what the CLI sends.
:func:`parse_spec` turns raw JSON into a :class:`RunSpec` or raises :class:`SpecError`
naming every bad field; :func:`resolve` merges the job's defaults into the settings a run
actually uses. Expansion into items lives in :mod:`fanout.expand`.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from fanout.config import FanoutConfig, JobConfig
from fanout.errors import Problem, SpecError, problems_from
from fanout.policy import Capacity, Frozen, RetryOverride, RetryPolicy

Scalar = str | int | float | bool
#: Placeholders every item has, besides its parameters.
BUILTIN_PLACEHOLDERS = ("index", "run_id")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

_STEP = re.compile(r"^(\d+)([wdhm])$")
_RELATIVE = re.compile(r"^(today|now)(?:([+-])(\d+)([wdhm]))?$")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1)}


# --- axes ---------------------------------------------------------------------------------


class IntRange(Frozen):
    """Integers like Python's ``range``: ``stop`` is excluded."""

    start: int
    stop: int
    step: int = 1

    @model_validator(mode="after")
    def _non_empty(self) -> IntRange:
        if self.step == 0:
            raise ValueError("step must not be 0")
        if len(range(self.start, self.stop, self.step)) == 0:
            word = "before" if self.step > 0 else "after"
            raise ValueError(
                f"stop {self.stop} is not {word} start {self.start}: the range is empty"
            )
        return self

    def size(self) -> int:
        return len(range(self.start, self.stop, self.step))

    def values(self) -> range:
        return range(self.start, self.stop, self.step)


def parse_step(text: str) -> timedelta:
    match = _STEP.fullmatch(text)
    if not match or int(match[1]) == 0:
        raise ValueError(f"step {text!r} is not a positive duration like 1d, 7d, 1h, 30m, 1w")
    return int(match[1]) * _UNITS[match[2]]


def parse_instant(text: str, logical_time: datetime | None) -> datetime:
    """An ISO date/datetime, or ``today``/``now`` with an offset, as an aware UTC datetime.

    ``today`` is midnight UTC of the logical time's day. Without a logical time, relative
    bounds are only checked for form (the returned value is then arbitrary but consistent).
    """
    match = _RELATIVE.fullmatch(text)
    if match:
        anchor = logical_time or datetime(2000, 1, 1, tzinfo=UTC)
        anchor = anchor.astimezone(UTC)
        if match[1] == "today":
            anchor = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
        if match[2]:
            offset = int(match[3]) * _UNITS[match[4]]
            anchor = anchor + offset if match[2] == "+" else anchor - offset
        return anchor
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date (2024-01-31), datetime, or today/now[+-N(d|h|m|w)]"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_day_aligned(text: str) -> bool:
    match = _RELATIVE.fullmatch(text)
    if match:
        return match[1] == "today" and (not match[4] or match[4] in "dw")
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))


class DateRange(Frozen):
    """Dates or times from ``start`` up to ``stop`` (excluded) by ``step``.

    Values are ``YYYY-MM-DD`` when the bounds are days and the step is whole days,
    else ISO datetimes in UTC (``2024-01-01T06:00:00Z``); ``format`` (strftime) overrides.
    """

    start: str
    stop: str
    step: str = "1d"
    format: str | None = Field(default=None, min_length=1)

    @field_validator("start", "stop")
    @classmethod
    def _instant(cls, value: str) -> str:
        parse_instant(value, None)
        return value

    @field_validator("step")
    @classmethod
    def _step(cls, value: str) -> str:
        parse_step(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        # Comparable without a logical time when both are absolute or both relative.
        if bool(_RELATIVE.fullmatch(self.start)) == bool(_RELATIVE.fullmatch(self.stop)):
            self.bounds(datetime(2000, 1, 1, tzinfo=UTC))
        return self

    def bounds(self, logical_time: datetime) -> tuple[datetime, datetime, timedelta]:
        start = parse_instant(self.start, logical_time)
        stop = parse_instant(self.stop, logical_time)
        if stop <= start:
            raise ValueError(f"stop {self.stop} is not after start {self.start}: no dates")
        return start, stop, parse_step(self.step)

    def value_format(self) -> str:
        if self.format:
            return self.format
        days = parse_step(self.step) % timedelta(days=1) == timedelta(0)
        if days and _is_day_aligned(self.start):
            return "%Y-%m-%d"
        return "%Y-%m-%dT%H:%M:%SZ"

    def size(self, logical_time: datetime) -> int:
        start, stop, step = self.bounds(logical_time)
        return -(-(stop - start) // step)  # ceiling division of timedeltas

    def values(self, logical_time: datetime) -> list[str]:
        start, _stop, step = self.bounds(logical_time)
        fmt = self.value_format()
        return [(start + i * step).strftime(fmt) for i in range(self.size(logical_time))]


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


def axis_size(axis: Axis, logical_time: datetime) -> int:
    if isinstance(axis, RangeAxis):
        return axis.range.size()
    if isinstance(axis, DatesAxis):
        return axis.dates.size(logical_time)
    return len(axis)


def axis_values(axis: Axis, logical_time: datetime) -> list[Scalar] | range:
    if isinstance(axis, RangeAxis):
        return axis.range.values()
    if isinstance(axis, DatesAxis):
        return list(axis.dates.values(logical_time))
    return axis


# --- templates ----------------------------------------------------------------------------


def placeholders(template: str) -> list[str]:
    """The ``{name}`` fields of a template; raises ValueError on a malformed one."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"bad template {template!r}: {exc} (write {{{{ and }}}} for braces)"
        ) from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not PARAM_NAME.fullmatch(field) or spec or conversion:
            raise ValueError(f"bad placeholder {{{field}}} in {template!r}: use {{name}} only")
        names.append(field)
    return names


# --- the run spec -------------------------------------------------------------------------


class ItemsFrom(Frozen):
    """Where explicit items are read from at run time."""

    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$")
    format: Literal["json", "jsonl", "csv"]


def items_from_format(uri: str) -> Literal["json", "jsonl", "csv"]:
    lower = uri.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    return "json"


class RunOverrides(Frozen):
    """What a run spec and a rerun spec may both say: policy overrides and provenance."""

    max_concurrency: int | None = Field(default=None, ge=1)
    retry: RetryOverride | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=14 * 86_400)
    tolerated_failure_percent: float | None = Field(default=None, ge=0, le=100)
    capacity: Capacity | None = None
    #: Who started the run; the CLI and schedules set it, the console leaves the default.
    trigger: Literal["console", "cli", "schedule"] = "console"
    #: The run's logical time (a schedule's scheduled time); default: the execution's start.
    logical_time: datetime | None = None
    #: The schedule that started the run (with ``logical_time``: its slot, run once).
    schedule: str | None = Field(default=None, min_length=1, max_length=64)


class RunSpec(RunOverrides):
    """What starts a run. Everything but ``job`` and the item source has a job default."""

    job: str = Field(min_length=1)
    params: dict[str, Axis] | None = None
    items: list[dict[str, Scalar]] | None = None
    items_from: str | None = Field(
        default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$"
    )
    items_format: Literal["json", "jsonl", "csv"] | None = None
    include: list[dict[str, Scalar]] = []
    exclude: list[dict[str, Scalar]] = []
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    #: A rerun: the run it repeats (set by ``fanout rerun``).
    parent_run: str | None = None

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Axis] | None) -> dict[str, Axis] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must name at least one parameter")
        for name, axis in value.items():
            if not PARAM_NAME.fullmatch(name):
                raise ValueError(f"parameter name {name!r} must be an identifier")
            if name in BUILTIN_PLACEHOLDERS:
                raise ValueError(f"parameter name {name!r} is reserved")
            if isinstance(axis, list) and not axis:
                raise ValueError(f"axis {name!r} is empty")
            if isinstance(axis, list) and len({repr(v) for v in axis}) != len(axis):
                raise ValueError(f"axis {name!r} repeats a value")
        return value

    @field_validator("items")
    @classmethod
    def _items(cls, value: list[dict[str, Scalar]] | None) -> list[dict[str, Scalar]] | None:
        if value is not None and not value:
            raise ValueError("must hold at least one item")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RunSpec:
        given = [k for k in ("params", "items", "items_from") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one item source, not {' and '.join(given)}")
        if not given and not self.include:
            raise ValueError("no items: give params, items or items_from")
        if self.items_format and not self.items_from:
            raise ValueError("items_format goes with items_from")
        return self

    def source_format(self) -> Literal["json", "jsonl", "csv"] | None:
        if not self.items_from:
            return None
        return self.items_format or items_from_format(self.items_from)


class RerunSpec(RunOverrides):
    """A run over the items of an earlier run: ``{"rerun_of": RUN, "select": "failed"}``.

    It has no item source of its own: the items' params come from the parent's records
    (:mod:`fanout.runtime.rerun`), its settings from the parent's; the overrides below
    replace them.
    """

    rerun_of: str = Field(min_length=1, max_length=80)
    #: ``failed`` (every item that did not succeed), ``all``, or a list of item indexes.
    select: Literal["failed", "all"] | list[Annotated[int, Field(ge=0)]] = "failed"

    @field_validator("select")
    @classmethod
    def _some_indexes(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one item index")
        return value


def is_rerun(raw: Any) -> bool:
    """Whether a raw run spec is a rerun spec (it names ``rerun_of``)."""
    return isinstance(raw, dict) and "rerun_of" in raw


def parse_rerun(raw: Any) -> RerunSpec:
    """Validate the form of a rerun spec; raises :class:`SpecError` naming every bad field."""
    try:
        return RerunSpec.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from(exc)
        for p in problems:
            if p.field in ("params", "items", "items_from", "include", "exclude", "job"):
                problems[problems.index(p)] = Problem(
                    p.field, "a rerun takes its items and job from the run it repeats")
        raise SpecError(problems) from None


class RunSettings(Frozen):
    """The spec with the job's defaults filled in: what a run actually does."""

    job: str
    command: list[str]
    environment: dict[str, str]
    max_concurrency: int
    retry: RetryPolicy
    timeout_seconds: int
    tolerated_failure_percent: float
    capacity: Capacity
    #: The job's task size and architecture when the run started (what its cost is of).
    cpu: int | None = None
    memory: int | None = None
    architecture: str | None = None


def resolve(spec: RunSpec, job: JobConfig) -> RunSettings:
    """Merge the job's defaults under the spec's overrides."""
    defaults = job.defaults
    retry = spec.retry.apply_to(defaults.retry) if spec.retry else defaults.retry
    return RunSettings(
        job=spec.job,
        command=spec.command if spec.command is not None else job.command,
        environment=spec.environment if spec.environment is not None else job.environment,
        max_concurrency=spec.max_concurrency or defaults.max_concurrency,
        retry=retry,
        timeout_seconds=spec.timeout_seconds or defaults.timeout_seconds,
        tolerated_failure_percent=(
            spec.tolerated_failure_percent
            if spec.tolerated_failure_percent is not None
            else defaults.tolerated_failure_percent
        ),
        capacity=spec.capacity or defaults.capacity,
        cpu=job.cpu, memory=job.memory, architecture=job.architecture,
    )


def parse_spec(raw: Any, config: FanoutConfig) -> RunSpec:
    """Validate the form of a run spec and what can be checked without expanding it.

    Raises :class:`SpecError` naming every bad field. Checks that need the item count or
    the rendered overrides (the item cap, the 8 KiB limit) are :mod:`fanout.expand`'s.
    """
    if not isinstance(raw, dict):
        kind = type(raw).__name__ if raw is not None else "null"
        raise SpecError([Problem("spec", f"must be a JSON object, not {kind}")])
    try:
        spec = RunSpec.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from(exc)
        # An unknown job is worth saying even when other fields are wrong.
        job = raw.get("job")
        if isinstance(job, str) and job and job not in config.jobs:
            problems.insert(0, _unknown_job(job, config))
        raise SpecError(problems) from None
    problems = check_semantics(spec, config)
    if problems:
        raise SpecError(problems)
    return spec


def _unknown_job(job: str, config: FanoutConfig) -> Problem:
    return Problem("job", f"unknown job {job!r} (jobs: {', '.join(sorted(config.jobs))})")


def check_semantics(spec: RunSpec, config: FanoutConfig) -> list[Problem]:
    """What a valid-looking spec can still get wrong, against the deployment."""
    if spec.job not in config.jobs:
        return [_unknown_job(spec.job, config)]
    job = config.jobs[spec.job]
    settings = resolve(spec, job)
    problems: list[Problem] = []
    if settings.max_concurrency > config.limits.max_concurrency:
        problems.append(Problem(
            "max_concurrency",
            f"{settings.max_concurrency} is over the deployment's limit "
            f"of {config.limits.max_concurrency}",
        ))

    axes = set(spec.params or {})
    known = axes | set(BUILTIN_PLACEHOLDERS)
    for i, pattern in enumerate(spec.exclude):
        if spec.params is not None:
            for key in pattern:
                if key not in axes:
                    problems.append(Problem(f"exclude[{i}].{key}", "not a parameter of params"))
        if not pattern:
            problems.append(Problem(f"exclude[{i}]", "an empty pattern would exclude every item"))
    if spec.params is None:
        # Explicit items: their keys are known only at run time for items_from.
        if spec.items is not None:
            known = {k for item in spec.items for k in item} | set(BUILTIN_PLACEHOLDERS)
            for i, item in enumerate(spec.items):
                for key in item:
                    if not PARAM_NAME.fullmatch(key) or key in BUILTIN_PLACEHOLDERS:
                        problems.append(Problem(f"items[{i}].{key}", "not a usable parameter name"))
        elif spec.items_from is not None:
            known = set()  # checked when the items are read
        else:
            # Only include items: each is checked against the templates by the expansion.
            known = {k for item in spec.include for k in item} | set(BUILTIN_PLACEHOLDERS)
    for i, extra in enumerate(spec.include):
        if not extra:
            problems.append(Problem(f"include[{i}]", "an empty item"))
        for key in extra:
            if not PARAM_NAME.fullmatch(key) or key in BUILTIN_PLACEHOLDERS:
                problems.append(Problem(f"include[{i}].{key}", "not a usable parameter name"))
    if known:
        field = "command" if spec.command is not None else f"job {spec.job} command"
        problems += _template_problems(settings.command, known, field, indexed=True)
        field = "environment" if spec.environment is not None else f"job {spec.job} environment"
        for name, template in settings.environment.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                problems.append(Problem(f"{field}.{name}", "not a valid variable name"))
            problems += _template_problems([template], known, f"{field}.{name}", indexed=False)
    return problems


def _template_problems(
    templates: list[str], known: set[str], field: str, *, indexed: bool
) -> list[Problem]:
    problems = []
    for i, template in enumerate(templates):
        where = f"{field}[{i}]" if indexed else field
        try:
            names = placeholders(template)
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        for name in names:
            if name not in known:
                problems.append(Problem(
                    where,
                    f"unknown placeholder {{{name}}} (known: {', '.join(sorted(known))})",
                ))
    return problems
