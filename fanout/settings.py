"""Environment of each Lambda function, as a model.

The CDK stack sets exactly these variables on each function (tests compare the two), and
each handler reads its model once, lazily, on first invocation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fanout.config import JobConfig, LaunchGateConfig, Limits, Webhook
from fanout.cost import RegionPrices, prices_for

E = TypeVar("E", bound="FunctionEnv")


class FunctionEnv(BaseModel):
    """Base: fields are read from upper-case environment variables of the same name."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_env(cls: type[E], environ: Mapping[str, str] | None = None) -> E:
        source = os.environ if environ is None else environ
        return cls.model_validate({k.lower(): v for k, v in source.items()
                                   if k.lower() in cls.model_fields})

    @classmethod
    def variable_names(cls) -> set[str]:
        """The variables a function of this kind needs (what the stack must set)."""
        return {name.upper() for name in cls.model_fields}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class JobRuntime(BaseModel):
    """What the Launch function needs of a job: where and how to start its task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_definition: str
    container: str
    #: The job's ``<job>-packed`` task definition and its agent container, when the job
    #: can pack (docs/decisions/0021): a packed task gets its batch through the agent.
    packed_task_definition: str | None = None
    agent_container: str | None = None


class ExpandEnv(FunctionEnv):
    fanout_table: str
    fanout_bucket: str
    #: The jobs of the deployment (JSON), for defaults and templates.
    fanout_jobs: dict[str, JobConfig]
    fanout_limits: Limits

    _jobs = field_validator("fanout_jobs", "fanout_limits", mode="before")(
        classmethod(lambda cls, v: _json(v))
    )


class LaunchEnv(FunctionEnv):
    fanout_table: str
    fanout_cluster: str
    #: job name -> task definition ARN and container name (JSON).
    fanout_task_definitions: dict[str, JobRuntime]
    fanout_subnets: str = Field(description="comma-separated subnet ids")
    fanout_security_groups: str = Field(description="comma-separated security group ids")
    fanout_assign_public_ip: Literal["ENABLED", "DISABLED"] = "ENABLED"
    #: The dispatcher function's name: Launch wakes it when it queues an item.
    fanout_dispatcher: str
    #: Where the items' outputs are rooted (fanout.outputs): ``s3://<manifest bucket>``;
    #: locally the absolute records folder. Each task gets its item's ``FANOUT_OUTPUT``.
    fanout_outputs: str

    _defs = field_validator("fanout_task_definitions", mode="before")(
        classmethod(lambda cls, v: _json(v))
    )

    @property
    def subnets(self) -> list[str]:
        return [s for s in self.fanout_subnets.split(",") if s]

    @property
    def security_groups(self) -> list[str]:
        return [s for s in self.fanout_security_groups.split(",") if s]


class DispatchEnv(LaunchEnv):
    """The dispatcher launches what Launch queued: Launch's env and the gate's buckets."""

    fanout_launch_gate: LaunchGateConfig = LaunchGateConfig()
    #: job -> its ``max_running`` (jobs without a cap are absent).
    fanout_max_running: dict[str, int] = {}

    _gate = field_validator("fanout_launch_gate", "fanout_max_running", mode="before")(
        classmethod(lambda cls, v: _json(v))
    )


class SettlingEnv(FunctionEnv):
    """A function that settles stopped tasks (Record, Reconcile): it reads the end of a
    failed attempt's log."""

    fanout_table: str
    fanout_cluster: str
    #: The dispatcher's name: Record wakes it when a task of a job with ``max_running``
    #: stops, Reconcile when items wait and none runs (it died).
    fanout_dispatcher: str
    #: job (its container's name) -> the job's log group (JSON): a failed attempt's log tail.
    fanout_log_groups: dict[str, str] = {}
    #: Where the items' outputs are rooted (as Launch's): what an item wrote is listed
    #: there when it ends.
    fanout_outputs: str

    _groups = field_validator("fanout_log_groups", mode="before")(
        classmethod(lambda cls, v: _json(v))
    )


class RecordEnv(SettlingEnv):
    """Record: an ECS task of fanout stopped."""


class PricedEnv(FunctionEnv):
    """A function that prices the runs it announces: the config's ``cost.prices`` (JSON)
    over the package's table, for the region it runs in."""

    fanout_cost_prices: dict[str, dict[str, Any]] = {}

    _prices = field_validator("fanout_cost_prices", mode="before")(
        classmethod(lambda cls, v: _json(v))
    )

    def prices(self) -> RegionPrices:
        return prices_for(os.environ.get("AWS_REGION"), self.fanout_cost_prices)


class AnnouncingEnv(PricedEnv):
    """A function that announces run endings: to the topic, and to the config's webhooks
    (``notifications.webhooks``: kind and secret of each, JSON; never a URL)."""

    fanout_webhooks: list[Webhook] = []

    _webhooks = field_validator("fanout_webhooks", mode="before")(
        classmethod(lambda cls, v: _json(v))
    )


class FinalizeEnv(AnnouncingEnv):
    fanout_table: str
    fanout_cluster: str
    fanout_topic_arn: str
    #: The manifest bucket: never-launched items are recorded with their manifest line.
    fanout_bucket: str


class ReconcileEnv(SettlingEnv):
    """Reconcile: settles the attempts whose STOPPED event never came."""


class AbortEnv(AnnouncingEnv):
    fanout_table: str
    fanout_cluster: str
    #: Where the endings Finalize did not announce are published.
    fanout_topic_arn: str
    #: The manifest bucket: never-launched items are recorded with their manifest line.
    fanout_bucket: str
    #: A run stopped before Expand recorded it is recorded here, to expire as its runs do.
    fanout_limits: Limits

    _limits = field_validator("fanout_limits", mode="before")(
        classmethod(lambda cls, v: _json(v))
    )


class DecideEnv(FunctionEnv):
    """Decide: the pipeline loop's step (docs/decisions/0018-pipelines-on-aws.md)."""

    fanout_table: str
    #: The manifest bucket: the fan-in objects are written under ``pipelines/``.
    fanout_bucket: str
    #: The jobs and limits a pipeline's steps are checked against (as Expand's).
    fanout_jobs: dict[str, JobConfig]
    fanout_limits: Limits
    #: The run state machine: each step is one of its executions.
    fanout_run_machine: str
    #: The config's named pipelines (name -> document, JSON), started by name.
    fanout_pipelines: dict[str, Any] = {}

    _json_fields = field_validator("fanout_jobs", "fanout_limits", "fanout_pipelines",
                                   mode="before")(classmethod(lambda cls, v: _json(v)))


class AwaitStepEnv(FunctionEnv):
    """AwaitStep: keeps the pipeline loop's task token on the pipeline record."""

    fanout_table: str


class StepEndedEnv(FunctionEnv):
    """StepEnded: an execution of the run or the pipeline state machine ended."""

    fanout_table: str
    fanout_run_machine: str
    #: The pipeline state machine's name: its executions' ends stop their steps.
    fanout_pipeline_machine: str


#: Variables the stack sets on every function besides its env model (Powertools settings).
COMMON_VARIABLES: frozenset[str] = frozenset(
    {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
)

@dataclass(frozen=True)
class FunctionSpec:
    """One of the control plane's functions: its name, env model, size and invocation."""

    name: str
    env: type[FunctionEnv]
    memory_mb: int
    timeout_seconds: int
    #: Invoked asynchronously by events (EventBridge, Scheduler): retried by Lambda, then
    #: dead-lettered; the others are called by the state machine and answer it.
    asynchronous: bool


#: The functions, written once: the stack, the local mode and the benchmarks read these.
#: Expand streams the expansion to S3, so it gets the most memory and time.
FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("expand", ExpandEnv, memory_mb=1024, timeout_seconds=300, asynchronous=False),
    FunctionSpec("launch", LaunchEnv, memory_mb=256, timeout_seconds=30, asynchronous=False),
    # The dispatcher loops while items wait, then invokes itself again before its timeout;
    # a lost invocation is made good by the next Launch or Reconcile that wakes it, so it
    # has no dead-letter queue. 832 MB: Lambda's CPU grows with memory, and a launch costs
    # the dispatcher 18-22 ms of CPU (bench/dispatcher.py), so 512 MB sustains 13-16/s,
    # short of Fargate's 20/s; 832 MB 21-26/s. More only bills the waits between permits
    # at a higher rate (docs/operating.md, docs/decisions/0016-storm-dispatcher-memory.md).
    FunctionSpec("dispatch", DispatchEnv, memory_mb=832, timeout_seconds=300,
                 asynchronous=False),
    FunctionSpec("record", RecordEnv, memory_mb=256, timeout_seconds=30, asynchronous=True),
    FunctionSpec("finalize", FinalizeEnv, memory_mb=512, timeout_seconds=120,
                 asynchronous=False),
    FunctionSpec("reconcile", ReconcileEnv, memory_mb=512, timeout_seconds=240,
                 asynchronous=True),
    FunctionSpec("abort", AbortEnv, memory_mb=512, timeout_seconds=240, asynchronous=True),
    # The pipeline loop (docs/decisions/0018-pipelines-on-aws.md). Decide writes fan-in
    # objects a time budget at a time, so it gets Finalize's size.
    FunctionSpec("decide", DecideEnv, memory_mb=512, timeout_seconds=120, asynchronous=False),
    FunctionSpec("await_step", AwaitStepEnv, memory_mb=128, timeout_seconds=30,
                 asynchronous=False),
    FunctionSpec("step_ended", StepEndedEnv, memory_mb=256, timeout_seconds=60,
                 asynchronous=True),
)

#: Function name (as the stack and the local mode call it) -> its env model.
FUNCTION_ENVS: dict[str, type[FunctionEnv]] = {f.name: f.env for f in FUNCTIONS}
