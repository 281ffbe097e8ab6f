"""The emulated ECS's tasks: task definitions, tasks in ECS's own shapes, their events.

What :class:`fanout.local.fargate.EmulatedFargate` runs and describes; an "ECS Task State
Change" event is made from a task the way EventBridge delivers it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fanout.runtime.clock import utcnow
from fanout.schema import TASK_ENV_OUTPUT


class EcsError(Exception):
    """An ECS API error: ``code`` is what boto3 shows as ``Error.Code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TaskDefinition:
    """What the emulation needs of a task definition of the template."""

    arn: str
    family: str
    container: str
    #: What runs in place of the image's entrypoint (the job's ``local_command``).
    local_command: Sequence[str]
    environment: Mapping[str, str] = field(default_factory=dict)
    log_group: str | None = None
    stream_prefix: str | None = None
    image: str = ""
    cpu: str = "256"
    memory: str = "512"


class LaunchRate:
    """Fargate's launch rate limit as a token bucket (burst, then ``per_second``)."""

    def __init__(self, burst: int, per_second: float) -> None:
        self.burst = burst
        self.per_second = per_second
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


#: The bucket the launch gate is told when the emulated Fargate has none (no
#: ``--launch-rate``) and the config names none: the emulation grants every launch, so the
#: gate's queue, lease and permits all run, but no permit waits. Pacing an unlimited
#: emulation to AWS's 20 launches a second would make a local run of N items take N / 20
#: seconds whatever the machine (docs/decisions/0012-local-launch-bucket.md).
#: Its burst is no bigger than that: after a throttle (``--faults throttle=P``) the gate
#: waits for a tenth of the burst to refill at half the rate, 0.02 s here, where a burst of
#: 100,000 made each injected throttle stall the launches for 2 to 10 s.
UNLIMITED = {"burst": 1_000, "per_second": 10_000.0}


def gate_env(rate: LaunchRate | None, *, configured: bool = False) -> dict[str, str]:
    """What the launch gate is told of the emulated Fargate's bucket.

    With ``--launch-rate``, that bucket, as a deployment's config tells the gate its
    account's. Without it the emulated Fargate throttles nothing: the gate is told so,
    unless the config names a ``launch_gate`` of its own (``configured``), which is kept.
    """
    if rate is None:
        if configured:
            return {}
        bucket: dict[str, float] = dict(UNLIMITED)
    else:
        bucket = {"burst": rate.burst, "per_second": rate.per_second}
    return {"FANOUT_LAUNCH_GATE": json.dumps({"FARGATE": bucket, "FARGATE_SPOT": bucket})}


def outputs_env(records_dir: Path) -> dict[str, str]:
    """Where a local run's items write (fanout.outputs): under each run's records folder,
    ``<records>/<run_id>/outputs/<index>/``, given to Launch and Record as the stack's
    bucket is on AWS."""
    return {"FANOUT_OUTPUTS": str(records_dir.resolve())}


def make_output_folder(environment: Mapping[str, str]) -> None:
    """Make the item's local output folder before its task starts (on S3 nothing is made:
    a prefix exists once an object is put under it)."""
    location = environment.get(TASK_ENV_OUTPUT, "")
    if location and not location.startswith("s3://"):
        Path(location).mkdir(parents=True, exist_ok=True)


LogSink = Callable[[str, str, list[tuple[int, str]]], None]
EventSink = Callable[[dict[str, Any]], None]


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Task:
    """One emulated task and its process."""

    arn: str
    id: str
    definition: TaskDefinition
    cluster_arn: str
    started_by: str
    group: str
    capacity_provider: str
    overrides: dict[str, Any]
    tags: list[dict[str, str]]
    command: list[str]
    environment: dict[str, str]
    created_at: datetime
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    started_at: datetime | None = None
    stopping_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None
    version: int = 1
    process: subprocess.Popen[bytes] | None = None
    #: Why the emulation (not the program) is ending the task, once it is.
    ending: tuple[str, str] | None = None

    @property
    def log_stream(self) -> str | None:
        if not self.definition.stream_prefix:
            return None
        return f"{self.definition.stream_prefix}/{self.definition.container}/{self.id}"

    def describe(self) -> dict[str, Any]:
        """The task as DescribeTasks shows it."""
        container: dict[str, Any] = {
            "containerArn": self.arn.replace(":task/", ":container/")
            + f"/{self.definition.container}",
            "taskArn": self.arn,
            "name": self.definition.container,
            "image": self.definition.image,
            "lastStatus": self.last_status,
            "cpu": "0",
        }
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        if self.container_reason:
            container["reason"] = self.container_reason
        task: dict[str, Any] = {
            "taskArn": self.arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.definition.arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "launchType": "FARGATE",
            "capacityProviderName": self.capacity_provider,
            "platformVersion": "1.4.0",
            "cpu": self.definition.cpu,
            "memory": self.definition.memory,
            "startedBy": self.started_by,
            "group": self.group,
            "overrides": self.overrides,
            "containers": [container],
            "tags": self.tags,
            "version": self.version,
            "createdAt": self.created_at,
            "connectivity": "CONNECTED",
            "availabilityZone": "us-east-1a",
        }
        for key, value in (
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("stoppedAt", self.stopped_at),
            ("stopCode", self.stop_code),
            ("stoppedReason", self.stopped_reason),
        ):
            if value is not None:
                task[key] = value
        return task


def task_state_change_event(task: Task, region: str, account: str) -> dict[str, Any]:
    """An "ECS Task State Change" event as EventBridge delivers it."""
    detail = task.describe()
    detail.pop("tags", None)  # events do not carry tags
    for key in ("createdAt", "startedAt", "stoppingAt", "stoppedAt"):
        if key in detail:
            detail[key] = iso(detail[key])
    detail["updatedAt"] = iso(utcnow())
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account,
        "time": iso(utcnow()),
        "region": region,
        "resources": [task.arn],
        "detail": detail,
    }
