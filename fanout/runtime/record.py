"""Record: an ECS task stopped; classify it, write the attempt, answer the item's token."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.logs import LogTail
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.records.model import AttemptRecord
from fanout.records.store import RecordsStore
from fanout.runtime.classify import StopClass, classify
from fanout.runtime.clock import Clock, iso, utcnow
from fanout.runtime.settle import Outputs, heal, settle
from fanout.schema import (
    TASK_ENV_ATTEMPT,
    TASK_ENV_ITEM_INDEX,
    TASK_ENV_RUN_ID,
    log_stream_name,
)

log = logging.getLogger(__name__)


class TaskStateChange(BaseModel):
    """The parts of an EventBridge "ECS Task State Change" event that Record reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = ""
    detail_type: str = ""
    detail: dict[str, Any]

    @classmethod
    def parse(cls, event: dict[str, Any]) -> TaskStateChange:
        return cls.model_validate({**event, "detail_type": event.get("detail-type", "")})


def identity(task: dict[str, Any]) -> tuple[str, int, int] | None:
    """Run id, item index and attempt from the FANOUT_* environment in the task's overrides."""
    for override in (task.get("overrides") or {}).get("containerOverrides", []):
        env = {e.get("name"): e.get("value") for e in override.get("environment", [])}
        if {TASK_ENV_RUN_ID, TASK_ENV_ITEM_INDEX, TASK_ENV_ATTEMPT} <= set(env):
            try:
                return (str(env[TASK_ENV_RUN_ID]), int(str(env[TASK_ENV_ITEM_INDEX])),
                        int(str(env[TASK_ENV_ATTEMPT])))
            except ValueError:
                return None
    return None


def container_name(task: dict[str, Any]) -> str | None:
    for override in (task.get("overrides") or {}).get("containerOverrides", []):
        if override.get("name"):
            return str(override["name"])
    return None


def find_attempt(store: RecordsStore, task: dict[str, Any]) -> AttemptRecord | None:
    """The attempt a task ran for, as its FANOUT_* overrides name it; when they are missing
    or name an attempt of another task, as the task's own record (one more read) names it."""
    arn = str(task.get("taskArn", ""))
    where = identity(task)
    attempt = store.get_attempt(*where) if where is not None else None
    if attempt is None or attempt.task_arn not in (None, arn):
        found = store.find_task(arn) if arn else None
        if found is not None and found != where:
            where, attempt = found, store.get_attempt(*found)
    if where is None or attempt is None:
        return None
    if attempt.task_arn is None and arn:
        # Launch died after RunTask: the event is how the task's ARN is learnt.
        store.attach_task(*where, arn, str(task.get("startedAt") or attempt.started_at or ""),
                          expires_at=attempt.expires_at)
        attempt = store.get_attempt(*where)
    return attempt


def _iso(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value
    return iso(value)  # DescribeTasks through boto3 gives datetimes


def record_stop(task: dict[str, Any], *, store: RecordsStore, callbacks: TaskCallbacks,
                clock: Clock = utcnow, log_tail: LogTail | None = None,
                log_groups: dict[str, str] | None = None,
                outputs: Outputs | None = None) -> dict[str, Any]:
    """Settle the attempt of a STOPPED task (an event's ``detail`` or a DescribeTasks task).

    With ``log_tail`` and the jobs' ``log_groups`` (container -> group), an attempt that did
    not succeed carries the last lines of its log; with ``outputs``, an item that ends
    carries what it wrote.
    """
    arn = str(task.get("taskArn", ""))
    if task.get("lastStatus") != "STOPPED":
        return {"task_arn": arn, "result": "not stopped"}
    attempt = find_attempt(store, task)
    if attempt is None:
        log.warning("no attempt for task %s", arn)
        return {"task_arn": arn, "result": "unknown task"}
    version = task.get("version")
    version = int(version) if version is not None else None
    where = {"task_arn": arn, "run_id": attempt.run_id, "index": attempt.index,
             "attempt": attempt.attempt}
    if not attempt.is_open:
        return {**where, "result": heal(store, callbacks, attempt, version)}
    run = store.get_run(attempt.run_id, totals=False)
    if run is None:
        return {**where, "result": "unknown run"}
    container = container_name(task)
    stop = classify(task, container)
    task_id = arn.rsplit("/", 1)[-1]
    stream = log_stream_name(container, task_id) if container else None
    group = (log_groups or {}).get(container or "")
    tail = None
    if (log_tail is not None and stream and group
            and stop.stop_class is not StopClass.SUCCEEDED):
        tail = log_tail(group, stream)
    result = settle(
        store, callbacks, run, attempt, stop,
        stopped_at=_iso(task.get("stoppedAt"), iso(clock())),
        started_at=_iso(task.get("startedAt"), attempt.started_at or iso(clock())),
        version=version,
        log_stream=stream, log_tail=tail, image_digest=image_digest(task, container),
        outputs=outputs,
    )
    return {**where, "result": result, "class": stop.stop_class.value,
            "exit_code": stop.exit_code, "slot": attempt.slot}


def image_digest(task: dict[str, Any], container: str | None) -> str | None:
    """The digest of the image the job's container ran (``containers[].imageDigest`` of
    the event or of DescribeTasks); None when ECS did not say (the image was never pulled)."""
    for found in task.get("containers") or []:
        if found.get("name") == container and found.get("imageDigest"):
            return str(found["imageDigest"])
    return None
