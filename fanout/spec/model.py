"""The run spec: the one source of truth for what starts a run.

It is the Step Functions execution input, a schedule's body and what the CLI sends.
:func:`fanout.spec.validate.parse_spec` turns raw JSON into a :class:`RunSpec`;
:func:`resolve` merges the job's defaults into the settings a run actually uses.
Expansion into items is :mod:`fanout.spec.plan`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from fanout.config import JobConfig
from fanout.errors import described
from fanout.policy import (
    MAX_ITEMS_PER_TASK,
    Capacity,
    Count,
    Frozen,
    ItemsPerTask,
    Number,
    RetryOverride,
    RetryPolicy,
)
from fanout.spec.axes import BUILTIN_PLACEHOLDERS, PARAM_NAME, Axis, Scalar, zone_of
from fanout.spec.items_from import items_from_format

S3_URI = described(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$",
                   "an S3 object as s3://bucket/key (a bucket name is 3 to 63 lowercase "
                   "letters, digits, '.' and '-')")


class RunOverrides(Frozen):
    """What a run spec and a rerun spec may both say: policy overrides and provenance."""

    #: A Distributed Map runs at most 10,000 child executions at once.
    max_concurrency: Count | None = Field(default=None, ge=1, le=10_000)
    retry: RetryOverride | None = None
    timeout_seconds: Count | None = Field(default=None, ge=1, le=14 * 86_400)
    tolerated_failure_percent: Number | None = Field(default=None, ge=0, le=100)
    capacity: Capacity | None = None
    #: Items per Fargate task, or "auto" (docs/decisions/0020); default: the job's.
    items_per_task: ItemsPerTask | None = None
    #: Items one task runs at once (at most items_per_task); default: the job's.
    per_task_concurrency: Count | None = Field(default=None, ge=1, le=MAX_ITEMS_PER_TASK)
    #: Who started the run; the CLI and schedules set it, the console leaves the default.
    trigger: Literal["console", "cli", "schedule"] = "console"
    #: The run's logical time (a schedule's scheduled time); default: the execution's start.
    logical_time: datetime | None = None
    #: The schedule that started the run (with ``logical_time``: its slot, run once).
    schedule: str | None = Field(default=None, min_length=1, max_length=64)
    #: The IANA time zone relative dates resolve in (``today`` is this zone's day): a
    #: schedule passes its own; default UTC.
    timezone: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, timezone: str | None) -> str | None:
        zone_of(timezone)
        return timezone


class PipelineLink(Frozen):
    """The pipeline run that started a run as one of its steps (docs/pipelines.md)."""

    run_id: str = Field(min_length=1, max_length=80)
    step: str = Field(min_length=1, max_length=24)


class RunSpec(RunOverrides):
    """What starts a run. Everything but ``job`` and the item source has a job default."""

    job: str = Field(min_length=1)
    params: dict[str, Axis] | None = None
    items: list[dict[str, Scalar]] | None = None
    items_from: str | None = Field(
        default=None, pattern=S3_URI
    )
    items_format: Literal["json", "jsonl", "csv"] | None = None
    include: list[dict[str, Scalar]] = []
    exclude: list[dict[str, Scalar]] = []
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    #: A rerun: the run it repeats (set by ``fanout rerun``).
    parent_run: str | None = None
    #: A step of a pipeline: the pipeline run and the step (set by the pipeline).
    pipeline_run: PipelineLink | None = None

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
    #: Run the job as the deployment defines it now, though it changed since the parent ran.
    current_config: bool = False
    #: A step of a pipeline's rerun: the pipeline run and the step (set by the pipeline).
    pipeline_run: PipelineLink | None = None

    @field_validator("select")
    @classmethod
    def _some_indexes(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one item index")
        return value


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
    #: As asked: a whole number, or "auto" (the plan turns it into a number).
    items_per_task: int | Literal["auto"] = 1
    per_task_concurrency: int = 1
    #: The job's task size and architecture when the run started (what its cost is of).
    cpu: int | None = None
    memory: int | None = None
    architecture: str | None = None
    #: The job's image tag when the run started (a rerun refuses a job changed since).
    image_tag: str | None = None


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
        items_per_task=(spec.items_per_task if spec.items_per_task is not None
                        else defaults.items_per_task),
        per_task_concurrency=spec.per_task_concurrency or defaults.per_task_concurrency,
        cpu=job.cpu, memory=job.memory, architecture=job.architecture,
        image_tag=job.image_tag,
    )
