"""The deployment config: read from ``cdk.json`` context (key ``fanout``) into a frozen model.

This is the only place the config is read; the CDK app, the CLI and the local mode pass
the resulting :class:`FanoutConfig` down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from fanout.cost import CostConfig
from fanout.errors import ConfigError, Problem, problems_from
from fanout.policy import Frozen, JobDefaults

CONTEXT_KEY = "fanout"
NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")

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

    cpu: int = 256
    memory: int = 512
    architecture: Literal["ARM64", "X86_64"] = "ARM64"
    image_tag: str = Field(default="latest", min_length=1, max_length=128)
    #: Command template: the container's arguments, ``{name}`` placeholders per item.
    command: list[str] = []
    #: Environment template, ``{name}`` placeholders per item.
    environment: dict[str, str] = {}
    #: What the local mode runs in place of the image's entrypoint (the item's command follows).
    local_command: list[str] = []
    defaults: JobDefaults = JobDefaults()
    #: How many images the ECR lifecycle rule keeps.
    keep_images: int = Field(default=10, ge=1, le=1000)

    @model_validator(mode="after")
    def _fargate_size(self) -> JobConfig:
        if self.cpu not in _FARGATE_MEMORY:
            raise ValueError(f"cpu {self.cpu} is not a Fargate size ({sorted(_FARGATE_MEMORY)})")
        if self.memory not in _FARGATE_MEMORY[self.cpu]:
            allowed = _FARGATE_MEMORY[self.cpu]
            raise ValueError(
                f"memory {self.memory} does not fit cpu {self.cpu} "
                f"(Fargate allows {allowed[0]}..{allowed[-1]} MiB in its steps)"
            )
        return self


class NetworkConfig(Frozen):
    """A new VPC (public subnets, no NAT) unless existing subnets are named."""

    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]+$")
    subnet_ids: list[str] = []
    max_azs: int = Field(default=2, ge=1, le=6)
    #: Tasks in public subnets need a public IP to pull images when there is no NAT.
    assign_public_ip: bool = True

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

    max_items_per_run: int = Field(default=100_000, ge=1, le=10_000_000)
    max_concurrency: int = Field(default=1_000, ge=1, le=10_000)
    reconcile_every_minutes: int = Field(default=5, ge=1, le=60)
    #: Grace on top of an attempt's timeout before its callback is given up on.
    callback_grace_seconds: int = Field(default=900, ge=60, le=86_400)
    log_retention_days: int = 30
    #: A run's maximum life: the state machine's TimeoutSeconds (a run past it is aborted).
    run_timeout_hours: int = Field(default=168, ge=1, le=8760)
    #: Records (runs, items, attempts) expire this many days after the run's maximum life
    #: ends (each record carries its expiry from its first write).
    record_ttl_days: int = Field(default=90, ge=1, le=3650)
    #: Items manifests expire from the bucket after this many days.
    manifest_expiry_days: int = Field(default=30, ge=1, le=3650)


class ScheduleConfig(Frozen):
    """An EventBridge Scheduler schedule that starts a run."""

    name: str = Field(pattern=NAME.pattern)
    expression: str = Field(pattern=r"^(cron|rate|at)\(.+\)$")
    timezone: str = "UTC"
    flexible_window_minutes: int | None = Field(default=None, ge=1, le=1440)
    enabled: bool = True
    #: The run spec (validated against the jobs at synth).
    spec: dict[str, Any]


class NotificationsConfig(Frozen):
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


#: A Lambda layer version's ARN, in any partition.
LAYER_ARN = r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]{1,140}:\d+$"
#: An AWS region name (us-east-1, cn-north-1, us-gov-west-1, eusc-de-east-1...).
REGION = r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$"


class PowertoolsConfig(Frozen):
    """Where the functions get Powertools (and pydantic) from: the public layer of the
    stack's region by default; a layer of your own, or one the stack publishes from
    ``build/powertools-layer`` (``make powertools-layer``), where there is none."""

    #: Version of the public ``AWSLambdaPowertoolsPythonV3-python312-arm64`` layer
    #: (27 is a Powertools 3.x release).
    layer_version: int = Field(default=27, ge=1)
    #: A Powertools layer (python3.12, arm64) to use instead of the public one.
    layer_arn: str | None = Field(default=None, pattern=LAYER_ARN)
    #: Publish a layer with the stack from ``build/powertools-layer``.
    bundle: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> PowertoolsConfig:
        if self.layer_arn and self.bundle:
            raise ValueError("set layer_arn or bundle, not both")
        return self


class FanoutConfig(Frozen):
    """Everything a deployment of fanout is made of."""

    stack_name: str = Field(default="Fanout", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    jobs: dict[str, JobConfig] = Field(min_length=1)
    network: NetworkConfig = NetworkConfig()
    limits: Limits = Limits()
    schedules: list[ScheduleConfig] = []
    notifications: NotificationsConfig = NotificationsConfig()
    #: Prices for the cost estimate, per region, over the package's dated table.
    cost: CostConfig = CostConfig()
    #: The region the stack is for. Unset, the template deploys to any region where the
    #: public Powertools layer exists; set, it is bound to that region and a region without
    #: the layer fails the synth.
    region: str | None = Field(default=None, pattern=REGION)
    powertools: PowertoolsConfig = PowertoolsConfig()

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
        return self

    def job(self, name: str) -> JobConfig:
        return self.jobs[name]


def load_config(context: Mapping[str, Any] | None) -> FanoutConfig:
    """The config from the ``fanout`` context value; a bad one raises :class:`ConfigError`."""
    if not isinstance(context, Mapping):
        raise ConfigError([Problem(CONTEXT_KEY, "missing from cdk.json context")])
    try:
        config = FanoutConfig.model_validate(context)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, prefix=CONTEXT_KEY)) from None
    return config


def load_config_file(path: str | Path = "cdk.json") -> FanoutConfig:
    """The config from a ``cdk.json`` file (what the CLI and the local mode read)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "no such file")]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([Problem(str(path), f"not valid JSON ({exc})")]) from None
    return load_config(document.get("context", {}).get(CONTEXT_KEY))
