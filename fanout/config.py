"""The deployment config: read from ``cdk.json`` context (key ``fanout``) into a frozen model.

This is the only place the config is read; the CDK app, the CLI and the local mode pass
the resulting :class:`FanoutConfig` down.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from fanout.cost import CostConfig
from fanout.dashboard_config import DashboardConfig
from fanout.errors import ConfigError, Problem, described, problems_from
from fanout.job_settings import VolumeConfig, checked_policies, checked_secrets
from fanout.policy import Count, Flag, Frozen, JobDefaults
from fanout.schedule_expressions import expression_problem, window_moment, window_utc

CONTEXT_KEY = "fanout"
NAME = re.compile(described(
    r"^[a-z][a-z0-9-]{0,39}$",
    "a name of lowercase letters, digits and '-', starting with a letter, at most 40 long",
))
#: The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

# Fargate's valid task sizes: cpu units -> allowed memory (MiB).
_FARGATE_MEMORY: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}


class JobConfig(Frozen):
    """A containerized program registered in the deployment."""

    cpu: Count = 256
    memory: Count = 512
    architecture: Literal["ARM64", "X86_64"] = "ARM64"
    image_tag: str = Field(default="latest", min_length=1, max_length=128)
    #: The image the task definition runs, pinned: a digest of the job's repository.
    #: Set, tasks run ``repository@sha256:...`` whatever the tag points at since.
    image_digest: str | None = Field(default=None, pattern=described(
        r"^sha256:[0-9a-f]{64}$", "an image digest: sha256: then 64 hexadecimal digits"))
    #: Environment variable -> Secrets Manager secret or SSM parameter, handed to the
    #: container by ECS (never in the run's records, logs, S3 or notifications).
    secrets: dict[str, str] = {}
    #: Managed policy ARNs or IAM policy statements (JSON) for the job's task role.
    policies: list[str | dict[str, Any]] = []
    #: The task's ephemeral storage, GiB (Fargate gives 20 unless asked for 21 to 200).
    ephemeral_storage_gib: Count | None = Field(default=None, ge=21, le=200)
    #: EFS volumes mounted into the container.
    volumes: list[VolumeConfig] = Field(default=[], max_length=20)
    #: Command template: the container's arguments, ``{name}`` placeholders per item.
    command: list[str] = []
    #: Environment template, ``{name}`` placeholders per item.
    environment: dict[str, str] = {}
    #: What the local mode runs in place of the image's entrypoint (the item's command follows).
    local_command: list[str] = []
    #: The image's ENTRYPOINT, which the packed task's runner runs each item with
    #: (docs/decisions/0020); packing a job needs it.
    entrypoint: list[str] = []
    #: False: the job's program must have a task to itself (it reads the task's metadata,
    #: owns its disk...), and a run that packs it is refused.
    packable: Flag = True
    defaults: JobDefaults = JobDefaults()
    #: How many images the ECR lifecycle rule keeps.
    keep_images: Count = Field(default=10, ge=1, le=1000)
    #: The job's tasks running at once, all runs together (schedules, console, CLI); a
    #: run's own ``max_concurrency`` still applies inside it. None: no job-wide cap.
    max_running: Count | None = Field(default=None, ge=1, le=100_000)

    _secrets = field_validator("secrets")(classmethod(lambda cls, v: checked_secrets(v)))
    _policies = field_validator("policies")(classmethod(lambda cls, v: checked_policies(v)))

    @model_validator(mode="after")
    def _secrets_apart_from_environment(self) -> JobConfig:
        both = sorted(set(self.secrets) & set(self.environment))
        if both:
            raise ValueError(f"secrets and environment both set {', '.join(both)}: a "
                             "variable comes from one of them")
        paths = [v.container_path for v in self.volumes]
        twice = sorted({p for p in paths if paths.count(p) > 1})
        if twice:
            raise ValueError(f"volumes mount twice at {', '.join(twice)}")
        k, c = self.defaults.items_per_task, self.defaults.per_task_concurrency
        if k != 1 and not self.packable:
            raise ValueError("defaults.items_per_task packs a job whose packable is false; "
                             "set one of them")
        if k != "auto" and c > k:
            raise ValueError(f"defaults.per_task_concurrency ({c}) is more than "
                             f"defaults.items_per_task ({k})")
        return self

    @field_validator("cpu")
    @classmethod
    def _fargate_cpu(cls, cpu: int) -> int:
        if cpu not in _FARGATE_MEMORY:
            sizes = ", ".join(map(str, sorted(_FARGATE_MEMORY)))
            raise ValueError(f"{cpu} is not a Fargate task size; use one of {sizes}")
        return cpu

    @field_validator("memory")
    @classmethod
    def _fargate_memory(cls, memory: int, info: ValidationInfo) -> int:
        cpu = info.data.get("cpu")
        if cpu in _FARGATE_MEMORY and memory not in _FARGATE_MEMORY[cpu]:
            allowed = _FARGATE_MEMORY[cpu]
            steps = {b - a for a, b in itertools.pairwise(allowed)}
            sizes = (f"{allowed[0]} to {allowed[-1]} MiB in steps of {steps.pop()}"
                     if len(steps) == 1 and len(allowed) > 3
                     else ", ".join(map(str, allowed)) + " MiB")
            raise ValueError(f"{memory} MiB does not fit cpu {cpu}: Fargate allows {sizes}")
        return memory


class NetworkConfig(Frozen):
    """A new VPC (public subnets, no NAT) unless existing subnets are named."""

    vpc_id: str | None = Field(default=None, pattern=described(
        r"^vpc-[0-9a-f]+$", "a VPC id (vpc- then hexadecimal digits)"))
    subnet_ids: list[str] = []
    max_azs: Count = Field(default=2, ge=1, le=6)
    #: Tasks in public subnets need a public IP to pull images when there is no NAT.
    assign_public_ip: Flag = True

    @field_validator("subnet_ids")
    @classmethod
    def _subnet_ids(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not re.fullmatch(r"subnet-[0-9a-f]+", s)]
        if bad:
            raise ValueError(f"not subnet ids: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _existing_needs_vpc(self) -> NetworkConfig:
        if bool(self.subnet_ids) != bool(self.vpc_id):
            raise ValueError("existing subnets need both vpc_id and subnet_ids")
        return self

    @property
    def uses_existing(self) -> bool:
        return bool(self.subnet_ids)


class Limits(Frozen):
    """Deployment-wide limits that protect the account and the bill."""

    max_items_per_run: Count = Field(default=100_000, ge=1, le=10_000_000)
    #: A Distributed Map runs at most 10,000 child executions at once.
    max_concurrency: Count = Field(default=1_000, ge=1, le=10_000)
    reconcile_every_minutes: Count = Field(default=5, ge=1, le=60)
    #: Grace on top of an attempt's timeout before its callback is given up on.
    callback_grace_seconds: Count = Field(default=900, ge=60, le=86_400)
    log_retention_days: Count = 30
    #: A run's maximum life: the state machine's TimeoutSeconds (a run past it is aborted);
    #: a Standard execution lives at most a year.
    run_timeout_hours: Count = Field(default=168, ge=1, le=8760)
    #: Records (runs, items, attempts) expire this many days after the run's maximum life
    #: ends (each record carries its expiry from its first write).
    record_ttl_days: Count = Field(default=90, ge=1, le=3650)
    #: Items manifests expire from the bucket after this many days.
    manifest_expiry_days: Count = Field(default=30, ge=1, le=3650)

    def records_expire(self, started: datetime) -> int:
        """When a run's records expire (TTL, epoch seconds): record_ttl_days after the end
        of the run's maximum life (the state machine's timeout). Every record of the run
        carries it from its first write, so finishing a run rewrites nothing."""
        end = started + timedelta(hours=self.run_timeout_hours, days=self.record_ttl_days)
        return int(end.timestamp())

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            nearest = min(LOG_RETENTION_DAYS, key=lambda d: (abs(d - days), d))
            raise ValueError(f"{days} is not a CloudWatch Logs retention; use one of "
                             f"{', '.join(map(str, LOG_RETENTION_DAYS))} (nearest: {nearest})")
        return days


class LaunchBucket(Frozen):
    """What Fargate grants one capacity type of an account: a burst, then a steady rate."""

    burst: Count = Field(default=100, ge=1, le=100_000)
    per_second: float = Field(default=20.0, gt=0, le=10_000)


class LaunchGateConfig(Frozen):
    """The launch gate's buckets, per capacity type (Fargate's published defaults)."""

    FARGATE: LaunchBucket = LaunchBucket()
    FARGATE_SPOT: LaunchBucket = LaunchBucket()
    #: Reserve this much Lambda concurrency for the dispatcher (unset: none). The lease in
    #: the table already keeps one dispatcher at a time; a reservation only guarantees it a
    #: slot when the account's other functions use all of theirs. A new account (quota 10,
    #: of which AWS keeps 10 unreserved) cannot reserve any: ``cdk deploy`` would fail.
    reserved_concurrency: int | None = Field(default=None, ge=1, le=10)

    def bucket(self, capacity: str) -> LaunchBucket:
        return self.FARGATE_SPOT if capacity == "FARGATE_SPOT" else self.FARGATE


class ScheduleConfig(Frozen):
    """An EventBridge Scheduler schedule that starts a run."""

    name: str = Field(pattern=NAME.pattern)
    #: EventBridge Scheduler's ``cron(...)``, ``rate(...)`` or ``at(...)``.
    expression: str
    #: An IANA time zone (``Europe/Paris``), as EventBridge Scheduler takes it.
    timezone: str = "UTC"
    #: The window in which a recurring schedule starts runs (StartDate and EndDate), in its
    #: time zone: a day (``2027-01-04``; an end day is in the window) or a time
    #: (``2027-01-04T09:00``). Either may be left open.
    start_date: str | None = None
    end_date: str | None = None
    flexible_window_minutes: Count | None = Field(default=None, ge=1, le=1440)
    enabled: Flag = True
    #: The run spec (validated against the jobs at synth), or the name of a pipeline of the
    #: config (``pipelines``) it starts instead.
    spec: dict[str, Any] | None = None
    pipeline: str | None = None

    @field_validator("expression")
    @classmethod
    def _expression(cls, expression: str) -> str:
        problem = expression_problem(expression)
        if problem:
            raise ValueError(problem)
        return expression

    @field_validator("start_date", "end_date")
    @classmethod
    def _window_bound(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            window_moment(value, end=info.field_name == "end_date")
        except ValueError as exc:
            raise ValueError(f"schedule {info.data.get('name', '?')}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_target(self) -> ScheduleConfig:
        if (self.spec is None) == (self.pipeline is None):
            raise ValueError(f"schedule {self.name}: give spec (a run spec) or pipeline (a name)")
        return self

    @model_validator(mode="after")
    def _window(self) -> ScheduleConfig:
        if (self.start_date or self.end_date) and self.expression.strip().startswith("at("):
            raise ValueError(f"schedule {self.name}: start_date and end_date do nothing for "
                             "a one-time at(...) schedule; remove them, or use cron(...)")
        if self.start_date and self.end_date and window_moment(
                self.end_date, end=True) <= window_moment(self.start_date, end=False):
            raise ValueError(f"schedule {self.name}: end_date {self.end_date} is not after "
                             f"start_date {self.start_date}; swap them or move end_date later")
        return self

    def window(self) -> tuple[str | None, str | None]:
        """StartDate and EndDate in UTC (``...Z``), None where the window is open."""
        return (window_utc(self.start_date, self.timezone, end=False)
                if self.start_date else None,
                window_utc(self.end_date, self.timezone, end=True) if self.end_date else None)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, timezone: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{timezone!r} is not an IANA time zone; use a name like UTC, "
                             "Europe/Paris or America/New_York") from None
        return timezone


WebhookKind = Literal["slack", "teams", "generic"]
#: A Secrets Manager secret: its name, or its full ARN.
SECRET = described(
    r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
    r"|[A-Za-z0-9/_+=.@-]{1,512})$",
    "a Secrets Manager secret's name (letters, digits, /_+=.@-) or its full ARN")


class Webhook(Frozen):
    """A webhook run endings are posted to: its kind, and the Secrets Manager secret
    (name or full ARN) whose value is its URL (the URL is a credential: never in cdk.json)."""

    kind: WebhookKind
    secret: str = Field(pattern=SECRET)

    @property
    def name(self) -> str:
        """How logs and errors name it: never by its URL."""
        return f"{self.kind} webhook (secret {self.secret})"


class NotificationsConfig(Frozen):
    email: str | None = Field(default=None, pattern=described(
        r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an email address (name@example.com)"))
    #: Slack, Microsoft Teams and generic webhooks, each URL kept in Secrets Manager.
    webhooks: list[Webhook] = Field(default=[], max_length=10)


#: A Lambda layer version's ARN, in any partition.
LAYER_ARN = described(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]{1,140}:\d+$",
    "a Lambda layer version's ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)")
#: An AWS region name (us-east-1, cn-north-1, us-gov-west-1, eusc-de-east-1...).
REGION = described(r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$", "an AWS region name like eu-west-1")


class PowertoolsConfig(Frozen):
    """Where the functions get Powertools (and pydantic) from: the public layer of the
    stack's region by default; a layer of your own, or one the stack publishes from
    ``build/powertools-layer`` (``make powertools-layer``), where there is none."""

    #: Version of the public ``AWSLambdaPowertoolsPythonV3-python312-arm64`` layer
    #: (27 is a Powertools 3.x release).
    layer_version: Count = Field(default=27, ge=1)
    #: A Powertools layer (python3.12, arm64) to use instead of the public one.
    layer_arn: str | None = Field(default=None, pattern=LAYER_ARN)
    #: Publish a layer with the stack from ``build/powertools-layer``.
    bundle: Flag = False

    @model_validator(mode="after")
    def _one_source(self) -> PowertoolsConfig:
        if self.layer_arn and self.bundle:
            raise ValueError("set layer_arn or bundle, not both")
        return self


class FanoutConfig(Frozen):
    """Everything a deployment of fanout is made of."""

    stack_name: str = Field(default="Fanout", pattern=described(
        r"^[A-Za-z][A-Za-z0-9-]{0,63}$",
        "a stack name (letters, digits and '-', starting with a letter, at most 64 long)"))
    jobs: dict[str, JobConfig] = Field(min_length=1)
    network: NetworkConfig = NetworkConfig()
    limits: Limits = Limits()
    schedules: list[ScheduleConfig] = []
    notifications: NotificationsConfig = NotificationsConfig()
    #: How fast the deployment launches tasks, all runs and schedules together.
    launch_gate: LaunchGateConfig = LaunchGateConfig()
    #: Prices for the cost estimate, per region, over the package's dated table.
    cost: CostConfig = CostConfig()
    #: The region the stack is for. Unset, the template deploys to any region where the
    #: public Powertools layer exists; set, it is bound to that region and a region without
    #: the layer fails the synth.
    region: str | None = Field(default=None, pattern=REGION)
    powertools: PowertoolsConfig = PowertoolsConfig()
    #: The team dashboard, deployed with the stack (opt-in).
    dashboard: DashboardConfig = DashboardConfig()
    #: Named pipelines (name -> document, docs/pipelines.md), checked at synth.
    pipelines: dict[str, dict[str, Any]] = {}

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, value: dict[str, JobConfig]) -> dict[str, JobConfig]:
        bad = [name for name in value if not NAME.fullmatch(name)]
        if bad:
            raise ValueError(
                f"job names must be lowercase letters, digits and '-': {', '.join(bad)}"
            )
        return value

    @model_validator(mode="after")
    def _distinct_schedules(self) -> FanoutConfig:
        names = [s.name for s in self.schedules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schedule names repeat: {', '.join(dupes)}")
        for schedule in self.schedules:
            if schedule.pipeline is not None and schedule.pipeline not in self.pipelines:
                known = ", ".join(sorted(self.pipelines)) or "none"
                raise ValueError(f"schedule {schedule.name}: no pipeline "
                                 f"{schedule.pipeline!r} in pipelines (pipelines: {known})")
        return self

    def job(self, name: str) -> JobConfig:
        return self.jobs[name]


def load_config(context: Mapping[str, Any] | None) -> FanoutConfig:
    """The config from the ``fanout`` context value; a bad one raises :class:`ConfigError`."""
    if context is None:
        raise ConfigError([Problem(f"context.{CONTEXT_KEY}", "is missing from cdk.json; add "
                                   "the deployment config there (see docs/config.md)")])
    if not isinstance(context, Mapping):
        raise ConfigError([Problem(f"context.{CONTEXT_KEY}", "must be an object ({...}) "
                                   "holding the deployment config (see docs/config.md)")])
    try:
        config = FanoutConfig.model_validate(context)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, prefix=CONTEXT_KEY)) from None
    return config


def read_config_document(path: str | Path) -> dict[str, Any]:
    """The ``cdk.json`` document at ``path``, checked to be one (raises ConfigError)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError([Problem("--config", f"{path} is a folder; name the cdk.json file "
                                               "in it")])
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "no such file; give --config the deployment's "
                                              "cdk.json")]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), f"cannot be read ({exc.strerror})")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(path), f"is not UTF-8 text (byte {exc.start}); save "
                                              "it as UTF-8")]) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([Problem(str(path), f"not valid JSON ({exc})")]) from None
    except RecursionError:
        raise ConfigError([Problem(str(path), "is nested too deeply to be a cdk.json")]) \
            from None
    if not isinstance(document, dict):
        raise ConfigError([Problem(str(path), "must be a JSON object ({...}) with a "
                                              "\"context\" key, as cdk.json is")])
    context = document.get("context", {})
    if not isinstance(context, dict):
        raise ConfigError([Problem(f"{path}: context", "must be an object ({...}) holding "
                                                       f"\"{CONTEXT_KEY}\"")])
    return document


def load_config_file(path: str | Path = "cdk.json") -> FanoutConfig:
    """The config from a ``cdk.json`` file (what the CLI and the local mode read)."""
    return load_config(read_config_document(path).get("context", {}).get(CONTEXT_KEY))
