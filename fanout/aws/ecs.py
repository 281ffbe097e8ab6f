"""The task launcher: RunTask (idempotent per ``clientToken``), DescribeTasks, StopTask.

:class:`EcsLauncher` is the boto3 form; errors come back as the control plane's names
(:mod:`fanout.runtime.errors`) so the state machine can tell throttling and missing
capacity (retried, attempts untouched) from a launch refused for good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fanout.aws.launch_errors import classify
from fanout.outputs import is_s3
from fanout.schema import STARTED_BY, TASK_ENV_RUN_ID, container_overrides

#: The variable naming a packed task's batch (fanout.runtime.packing has the same).
TASK_ENV_BATCH = "FANOUT_BATCH"
#: The containers a ``<job>-packed`` task definition adds beside the job's (docs/decisions/
#: 0021): the runner's init container and the agent.
RUNNER_CONTAINER, AGENT_CONTAINER = "fanout-runner", "fanout-agent"

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

#: DescribeTasks takes at most this many tasks per call.
DESCRIBE_BATCH = 100
TAG_RUN, TAG_ITEM, TAG_ATTEMPT = "fanout:run", "fanout:item", "fanout:attempt"
#: A packed task's tag: its batch (docs/decisions/0020).
TAG_BATCH = "fanout:batch"



def client_token(run_id: str, index: int, attempt: int, capacity: str | None = None) -> str:
    """Deterministic per attempt (48 hex chars; RunTask allows 64).

    A fall-back launch on on-demand Fargate after Spot capacity ran out is a different
    request, so it gets its own token (suffix ``|FARGATE``).
    """
    key = f"{run_id}|{index}|{attempt}" + (f"|{capacity}" if capacity else "")
    return hashlib.sha256(key.encode()).hexdigest()[:48]


@dataclass(frozen=True)
class LaunchRequest:
    run_id: str
    index: int
    attempt: int
    task_definition: str
    container: str
    command: list[str]
    environment: dict[str, str]
    capacity: str  # FARGATE or FARGATE_SPOT
    client_token: str
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    assign_public_ip: str = "ENABLED"
    #: The item's output location (``FANOUT_OUTPUT``), if any.
    output: str | None = None
    #: A packed task (docs/decisions/0020): its batch's key, where its ``batch.json`` is,
    #: and how many of its items run at once. ``index``/``attempt`` are its first item's.
    batch: str | None = None
    batch_location: str | None = None
    concurrency: int = 1

    def overrides(self) -> dict[str, Any]:
        if self.batch is not None and is_s3(str(self.batch_location)):
            # The ``-packed`` task definition (docs/decisions/0021): its agent downloads
            # the batch (FANOUT_BATCH); the job's container runs the runner unchanged.
            return {"containerOverrides": [{
                "name": self.container,
                "environment": [{"name": TASK_ENV_RUN_ID, "value": self.run_id},
                                {"name": TASK_ENV_BATCH, "value": str(self.batch_location)}],
            }]}
        if self.batch is not None:
            # The runner reads each item's command and environment from the batch object.
            return {"containerOverrides": [{
                "name": self.container,
                "command": ["--batch", str(self.batch_location),
                            "--concurrency", str(self.concurrency)],
                "environment": [{"name": TASK_ENV_RUN_ID, "value": self.run_id},
                                {"name": TASK_ENV_BATCH, "value": self.batch}],
            }]}
        return container_overrides(self.container, self.command, self.environment,
                                   run_id=self.run_id, index=self.index, attempt=self.attempt,
                                   output=self.output)

    def tags(self) -> list[dict[str, str]]:
        if self.batch is not None:
            return [{"key": TAG_RUN, "value": self.run_id},
                    {"key": TAG_BATCH, "value": self.batch}]
        return [{"key": TAG_RUN, "value": self.run_id},
                {"key": TAG_ITEM, "value": str(self.index)},
                {"key": TAG_ATTEMPT, "value": str(self.attempt)}]


class LaunchError(Exception):
    """RunTask did not start a task. ``kind``: throttled, capacity or refused
    (:mod:`fanout.aws.launch_errors`); ``reason``: what the waiting item shows."""

    def __init__(self, kind: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason or {"throttled": "launch throttled",
                                 "capacity": "capacity unavailable"}.get(kind, "launch refused")


class TaskLauncher(Protocol):
    def run_task(self, request: LaunchRequest) -> str:
        """Start the task; returns its ARN or raises :class:`LaunchError`.

        Called again with the same ``client_token`` (within 24 hours), ECS returns the task
        the first call started instead of starting another: this is how a launch that died
        after RunTask finds its task, never by listing the cluster."""
        ...

    def describe_tasks(self, task_arns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """ARN -> task description (as in the ECS API) for those that exist."""
        ...

    def stop_task(self, task_arn: str, reason: str) -> None: ...

    def running_tasks(self) -> list[str]:
        """ARNs of the tasks fanout started in the cluster that nobody asked to stop yet."""
        ...


def _batches(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class EcsLauncher:
    def __init__(self, cluster: str, client: ECSClient | None = None) -> None:
        self.cluster = cluster
        self._client = client

    @property
    def client(self) -> ECSClient:
        if self._client is None:
            from fanout.aws.clients import client

            self._client = client("ecs")
        return self._client

    def run_task(self, request: LaunchRequest) -> str:
        from botocore.exceptions import ClientError

        try:
            kwargs: dict[str, Any] = {
                "cluster": self.cluster,
                "taskDefinition": request.task_definition,
                "count": 1,
                "capacityProviderStrategy": [{"capacityProvider": request.capacity,
                                              "weight": 1}],
                "networkConfiguration": {"awsvpcConfiguration": {
                    "subnets": request.subnets,
                    "securityGroups": request.security_groups,
                    "assignPublicIp": request.assign_public_ip,
                }},
                "overrides": request.overrides(),
                "startedBy": STARTED_BY,
                "tags": request.tags(),
                "enableECSManagedTags": True,
                "propagateTags": "TASK_DEFINITION",
                "clientToken": request.client_token,
            }
            response = self.client.run_task(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", str(exc))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            verdict = classify(code, message, status)
            text = message if verdict.kind != "refused" else f"{code}: {message}"
            raise LaunchError(verdict.kind, text, verdict.reason) from exc
        tasks = response.get("tasks", [])
        if tasks:
            return tasks[0]["taskArn"]
        reasons = "; ".join(
            " ".join(str(f[k]) for k in ("arn", "reason", "detail") if f.get(k))
            for f in response.get("failures", [])) or "no task and no reason"
        verdict = classify("", reasons)
        raise LaunchError(verdict.kind, reasons, verdict.reason)

    def describe_tasks(self, task_arns: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for batch in _batches(list(task_arns), DESCRIBE_BATCH):
            response = self.client.describe_tasks(cluster=self.cluster, tasks=list(batch),
                                                  include=["TAGS"])
            for task in response.get("tasks", []):
                found[task["taskArn"]] = dict(task)
        return found

    def stop_task(self, task_arn: str, reason: str) -> None:
        self.client.stop_task(cluster=self.cluster, task=task_arn, reason=reason[:255])

    def running_tasks(self) -> list[str]:
        return self._list("RUNNING")

    def _list(self, desired_status: Literal["RUNNING", "STOPPED"]) -> list[str]:
        arns: list[str] = []
        paginator = self.client.get_paginator("list_tasks")
        for page in paginator.paginate(cluster=self.cluster, startedBy=STARTED_BY,
                                       desiredStatus=desired_status):
            arns.extend(page.get("taskArns", []))
        return arns

