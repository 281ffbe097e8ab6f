"""Run policies shared by the deployment config (job defaults) and the run spec (overrides)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

#: ECS allows at most this many characters of container overrides per task.
ECS_OVERRIDES_LIMIT = 8192
#: Step Functions takes an execution's input of at most 256 KiB (UTF-8).
EXECUTION_INPUT_LIMIT = 256 * 1024


class Capacity(StrEnum):
    """Which Fargate capacity an attempt is launched on."""

    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"
    #: Spot first; on-demand when Spot refuses for capacity, and for every attempt after
    #: a Spot interruption (the first of them does not count against max_attempts).
    FARGATE_SPOT_THEN_FARGATE = "FARGATE_SPOT_THEN_FARGATE"


def _a_number(value: Any, what: str = "a number") -> Any:
    # A boolean is not a number, nor is text that looks like one ("60"): pydantic's lax mode
    # would read true as 1 and "60" as 60. (Decimals, as DynamoDB gives them back, pass.)
    if isinstance(value, bool):
        raise ValueError(f"must be {what}, not {str(value).lower()}")
    if isinstance(value, str):
        raise ValueError(f"must be {what}, not the string {value!r} (drop the quotes)")
    return value


def _a_whole_number(value: Any) -> Any:
    value = _a_number(value, "a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"must be a whole number, not {value}")
    return value


#: An int field that takes only a number (strict where pydantic is lax).
Count = Annotated[int, BeforeValidator(_a_whole_number)]
#: A float field that takes only a number.
Number = Annotated[float, BeforeValidator(_a_number)]
#: A bool field that takes only true or false (not 1, "yes", "true").
Flag = Annotated[bool, Field(strict=True)]

#: The most items one Fargate task carries (a batch is one map element, under 256 KiB).
MAX_ITEMS_PER_TASK = 1_000


def _items_per_task(value: Any) -> Any:
    if value == "auto":
        return value
    shown = f"the string {value!r}" if isinstance(value, str) else str(value).lower()
    whole = (not isinstance(value, bool) and isinstance(value, int | float)
             and float(value).is_integer())
    if not whole or not 1 <= value <= MAX_ITEMS_PER_TASK:
        raise ValueError(f'must be a whole number from 1 to {MAX_ITEMS_PER_TASK} or "auto", '
                         f"not {shown}")
    return int(value)


#: How many items a Fargate task runs, one after another: a whole number or ``"auto"``.
ItemsPerTask = Annotated[int | Literal["auto"], BeforeValidator(_items_per_task)]


class Frozen(BaseModel):
    """Base of every boundary model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


ExitCodes = Literal["any-nonzero", "none"] | list[Annotated[Count, Field(ge=1, le=255)]]


class RetryPolicy(Frozen):
    """When a stopped attempt is tried again, and after how long.

    ``max_attempts`` counts every attempt, the first included (1 means never retry).
    The delay before attempt n+1 is ``delay_seconds * backoff_rate ** (n - 1)``.
    """

    max_attempts: Count = Field(default=3, ge=1, le=100)
    delay_seconds: Count = Field(default=10, ge=0, le=86_400)
    backoff_rate: Number = Field(default=2.0, ge=1.0, le=10.0)
    max_delay_seconds: Count = Field(default=3_600, ge=0, le=86_400)
    on_exit_codes: ExitCodes = "any-nonzero"
    on_infrastructure: Flag = True
    on_timeout: Flag = True

    @field_validator("on_exit_codes")
    @classmethod
    def _distinct_codes(cls, value: ExitCodes) -> ExitCodes:
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("exit codes must be distinct")
        return value

    def retries_exit_code(self, code: int) -> bool:
        if code == 0 or self.on_exit_codes == "none":
            return False
        if self.on_exit_codes == "any-nonzero":
            return True
        return code in self.on_exit_codes

    def delay_before(self, attempt: int) -> int:
        """Seconds to wait before starting ``attempt`` (2 is the first retry)."""
        if attempt <= 1:
            return 0
        delay = self.delay_seconds * self.backoff_rate ** (attempt - 2)
        return int(min(delay, self.max_delay_seconds))


class RetryOverride(Frozen):
    """The run spec's partial retry policy: what is given replaces the job's default."""

    max_attempts: Count | None = Field(default=None, ge=1, le=100)
    delay_seconds: Count | None = Field(default=None, ge=0, le=86_400)
    backoff_rate: Number | None = Field(default=None, ge=1.0, le=10.0)
    max_delay_seconds: Count | None = Field(default=None, ge=0, le=86_400)
    on_exit_codes: ExitCodes | None = None
    on_infrastructure: Flag | None = None
    on_timeout: Flag | None = None

    @field_validator("on_exit_codes")
    @classmethod
    def _distinct_codes(cls, value: ExitCodes | None) -> ExitCodes | None:
        # Checked here too, so a bad override is a spec error, not a failure of resolve().
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("exit codes must be distinct")
        return value

    def apply_to(self, base: RetryPolicy) -> RetryPolicy:
        given = self.model_dump(exclude_none=True)
        return RetryPolicy.model_validate({**base.model_dump(), **given})


class JobDefaults(Frozen):
    """What a run of a job gets when its spec does not say."""

    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: Count = Field(default=3_600, ge=1, le=14 * 86_400)
    #: A Distributed Map runs at most 10,000 child executions at once.
    max_concurrency: Count = Field(default=10, ge=1, le=10_000)
    tolerated_failure_percent: Number = Field(default=0, ge=0, le=100)
    capacity: Capacity = Capacity.FARGATE
    #: Items per Fargate task (docs/decisions/0020): 1 is a task per item.
    items_per_task: ItemsPerTask = 1
    #: Items one task runs at once (at most ``items_per_task``).
    per_task_concurrency: Count = Field(default=1, ge=1, le=MAX_ITEMS_PER_TASK)
