"""Run policies shared by the deployment config (job defaults) and the run spec (overrides)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: ECS allows at most this many characters of container overrides per task.
ECS_OVERRIDES_LIMIT = 8192


class Capacity(StrEnum):
    """Which Fargate capacity an attempt is launched on."""

    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"
    #: Spot first; on-demand when Spot refuses for capacity, and for every attempt after
    #: a Spot interruption (the first of them does not count against max_attempts).
    FARGATE_SPOT_THEN_FARGATE = "FARGATE_SPOT_THEN_FARGATE"


class Frozen(BaseModel):
    """Base of every boundary model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ExitCodes = Literal["any-nonzero", "none"] | list[Annotated[int, Field(ge=1, le=255)]]


class RetryPolicy(Frozen):
    """When a stopped attempt is tried again, and after how long.

    ``max_attempts`` counts every attempt, the first included (1 means never retry).
    The delay before attempt n+1 is ``delay_seconds * backoff_rate ** (n - 1)``.
    """

    max_attempts: int = Field(default=3, ge=1, le=100)
    delay_seconds: int = Field(default=10, ge=0, le=86_400)
    backoff_rate: float = Field(default=2.0, ge=1.0, le=10.0)
    max_delay_seconds: int = Field(default=3_600, ge=0, le=86_400)
    on_exit_codes: ExitCodes = "any-nonzero"
    on_infrastructure: bool = True
    on_timeout: bool = True

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

    max_attempts: int | None = Field(default=None, ge=1, le=100)
    delay_seconds: int | None = Field(default=None, ge=0, le=86_400)
    backoff_rate: float | None = Field(default=None, ge=1.0, le=10.0)
    max_delay_seconds: int | None = Field(default=None, ge=0, le=86_400)
    on_exit_codes: ExitCodes | None = None
    on_infrastructure: bool | None = None
    on_timeout: bool | None = None

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
    timeout_seconds: int = Field(default=3_600, ge=1, le=14 * 86_400)
    max_concurrency: int = Field(default=10, ge=1, le=10_000)
    tolerated_failure_percent: float = Field(default=0, ge=0, le=100)
    capacity: Capacity = Capacity.FARGATE
