"""Record: an ECS task stopped; classify it, write the attempt, answer the item's token."""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import AGENT_CONTAINER, RUNNER_CONTAINER, TASK_ENV_BATCH
from fanout.aws.logs import LogTail
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.outputs import is_s3
from fanout.records.model import AttemptRecord, RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime.classify import ABORT_REASON, TIMEOUT_REASON, Stop, StopClass, classify
from fanout.runtime.clock import Clock, iso, utcnow
from fanout.runtime.packing import (
    Ending,
    ItemResult,
    item_lines,
    read_batch,
    read_items,
    settle_batch,
)
from fanout.runtime.settle import Outputs, final_stop, heal, settle
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


#: Runs read by this process, by store: at most this many each (the newest kept).
CREATED_RUNS = 64
_created: weakref.WeakKeyDictionary[Any, OrderedDict[str, RunRecord]] = \
    weakref.WeakKeyDictionary()


def run_as_created(store: RecordsStore, run_id: str) -> RunRecord | None:
    """The run's record, read once per run by this process (a Lambda container settles
    many of a run's items): what settling an item reads of it (the job, its retry policy
    and timeout, its expiry) never changes once it is created. Its status and totals do,
    and must not be read from it."""
    try:
        runs = _created.setdefault(store, OrderedDict())
    except TypeError:  # a store that cannot be referred to weakly is read every time
        return store.get_run(run_id, totals=False)
    run = runs.get(run_id)
    if run is None:
        run = store.get_run(run_id, totals=False)
        if run is None:
            return None
        runs[run_id] = run
        while len(runs) > CREATED_RUNS:
            runs.popitem(last=False)
    return run


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
    # A packed task's items (no read for a task of one item): its record's, or (a task
    # that stopped before the dispatcher recorded it) its batch object's.
    members = None
    if batch_location(task) is not None:
        members = (store.task_members(arn) if arn else None) or batch_members(task)
    if members:
        return record_packed_stop(task, members, store=store, callbacks=callbacks,
                                  clock=clock, log_tail=log_tail, log_groups=log_groups,
                                  outputs=outputs)
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
    run = run_as_created(store, attempt.run_id)
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


# --- a packed task: each item it carries settles alone (docs/decisions/0020) -----------------

#: Why an item of a packed task waits in the launch queue again.
REQUEUED_WHY = "back in the launch queue: its task stopped before starting it"


def batch_location(task: dict[str, Any]) -> str | None:
    """Where a packed task's batch object is, from its overrides: the runner's command
    (locally) or the agent's ``FANOUT_BATCH`` (AWS, docs/decisions/0021)."""
    for override in (task.get("overrides") or {}).get("containerOverrides", []):
        command = list(override.get("command") or [])
        if command[:1] == ["--batch"] and len(command) > 1:
            return str(command[1])
        env = {e.get("name"): e.get("value") for e in override.get("environment") or []}
        if is_s3(str(env.get(TASK_ENV_BATCH) or "")):
            return str(env[TASK_ENV_BATCH])
    return None


def batch_members(task: dict[str, Any]) -> list[tuple[int, int]] | None:
    """The (index, attempt) pairs of a packed task, from the batch object it names."""
    location = batch_location(task)
    batch = read_batch(location) if location is not None else None
    try:
        return [(int(i["index"]), int(i["attempt"])) for i in batch["items"]] if batch else None
    except (ValueError, KeyError, TypeError):
        return None


#: On AWS, the exit codes that say the batch was never run (docs/decisions/0021): the agent
#: refused it (2), or the runner did (2: a bad batch file) or never saw it ``ready`` (3).
AGENT_REFUSED, RUNNER_REFUSED = {2}, {2, 3}


def batch_refused(task: dict[str, Any], container: str | None) -> bool:
    """Whether a packed task on AWS stopped because its batch could not be run: then its
    unstarted items take the task's stop, or a batch that can never be laid out would
    requeue forever."""
    codes = {c.get("name"): c.get("exitCode") for c in task.get("containers") or []}
    if AGENT_CONTAINER not in codes:
        return False
    return codes[AGENT_CONTAINER] in AGENT_REFUSED or codes.get(container) in RUNNER_REFUSED


def item_stop(result: ItemResult, timeout_seconds: int | None) -> Stop:
    """How an item that ended in its task ended: its own exit code or its timeout."""
    if result.timed_out:
        return Stop(StopClass.TIMEOUT, result.exit_code, None,
                    f"{TIMEOUT_REASON} after {timeout_seconds} s")
    if result.exit_code == 0:
        return Stop(StopClass.SUCCEEDED, 0, "EssentialContainerExited",
                    "Essential container exited")
    return Stop(StopClass.EXIT_NONZERO, result.exit_code, "EssentialContainerExited",
                "Essential container in task exited")


def record_packed_stop(task: dict[str, Any], members: list[tuple[int, int]], *,
                       store: RecordsStore, callbacks: TaskCallbacks, clock: Clock = utcnow,
                       log_tail: LogTail | None = None,
                       log_groups: dict[str, str] | None = None,
                       outputs: Outputs | None = None) -> dict[str, Any]:
    """Settle every item of a stopped packed task (``fanout.runtime.packing.settle_batch``):
    those that ended by their own exit code or timeout and retry policy, those it was
    running by the task's stop, and those it never started back to the launch queue with
    their attempt not spent. Each item's settlement is its attempt's conditional write, so
    a repeated or late event changes nothing."""
    arn = str(task.get("taskArn", ""))
    where = identity_of_batch(task)
    if where is None:
        found = store.find_task(arn)
        where = found[0] if found else None
    run = store.get_run(where, totals=False) if where else None
    if run is None:
        return {"task_arn": arn, "result": "unknown run"}
    location = batch_location(task)
    started, results = read_items(location) if location else ({}, {})
    container = container_name(task)
    if container == AGENT_CONTAINER:
        # On AWS only the agent is overridden: the job's container is the one that ran the
        # items (its exit, its log stream, its image).
        container = next((str(c["name"]) for c in task.get("containers") or []
                          if c.get("name") not in (AGENT_CONTAINER, RUNNER_CONTAINER)), None)
    task_stop = classify(task, container)
    task_class = task_stop.stop_class
    if task_stop.stop_class in (StopClass.SUCCEEDED, StopClass.EXIT_NONZERO):
        # The runner ended on its own with the item begun and not ended: the item is lost.
        task_stop = Stop(StopClass.LOST, None, task_stop.stop_code,
                         "the task's runner ended before the item did")
    # The runner ran unless the task never started (no image, no runner).
    runner_ran = (task_stop.stop_class is not StopClass.START_FAILURE
                  and not batch_refused(task, container)) or bool(started)
    task_id = arn.rsplit("/", 1)[-1]
    stream = log_stream_name(container, task_id) if container else None
    group = (log_groups or {}).get(container or "")
    version = task.get("version")
    version = int(version) if version is not None else None
    stopped_at = _iso(task.get("stoppedAt"), iso(clock()))
    timeout = run.settings.get("timeout_seconds")
    numbers = dict(members)
    shared_tail: list[str] | None = None
    summary: dict[str, str] = {}
    slot = None
    settlements = settle_batch(list(numbers), started=started, results=results,
                               runner_ran=runner_ran)
    # The unstarted items go back together: the dispatcher launches them as one task.
    back = sum(1 for s in settlements if s.ending is Ending.REQUEUED)
    for settlement in settlements:
        index = settlement.index
        attempt = store.get_attempt(run.run_id, index, numbers[index])
        if attempt is None:
            summary[str(index)] = "unknown attempt"
            continue
        slot = slot or attempt.slot
        if attempt.task_arn not in (None, arn):
            summary[str(index)] = "another task"  # requeued and launched again since
            continue
        if not attempt.is_open:
            summary[str(index)] = heal(store, callbacks, attempt, version)
            continue
        result = settlement.result
        if settlement.ending is Ending.REQUEUED:
            if run.status == "RUNNING":
                requeued = store.requeue_attempt(attempt, REQUEUED_WHY, iso(clock()),
                                                 turn=back)
                summary[str(index)] = "requeued" if requeued else "ignored"
                continue
            stop = final_stop(StopClass.ABORTED, f"{ABORT_REASON}: run is {run.status}")
        elif settlement.ending is Ending.ENDED and result is not None:
            stop = item_stop(result, timeout)
        else:
            stop = task_stop
        tail = list(result.log_tail) if result is not None else None
        if tail is None and stop.stop_class is not StopClass.SUCCEEDED and log_tail \
                and stream and group:
            if shared_tail is None:
                shared_tail = log_tail(group, stream)
            tail = list(item_lines(shared_tail, index, attempt.attempt))
        summary[str(index)] = settle(
            store, callbacks, run, attempt, stop,
            stopped_at=result.stopped if result is not None and settlement.ending
            is Ending.ENDED else stopped_at,
            started_at=(result.started if result is not None else started.get(index))
            or attempt.started_at,
            version=version, log_stream=stream,
            log_tail=tail if stop.stop_class is not StopClass.SUCCEEDED else None,
            image_digest=image_digest(task, container), outputs=outputs)
    return {"task_arn": arn, "run_id": run.run_id, "result": "packed", "items": summary,
            "class": task_class.value, "slot": slot,
            "requeued": sum(1 for v in summary.values() if v == "requeued")}


def identity_of_batch(task: dict[str, Any]) -> str | None:
    """The run id a packed task's overrides name."""
    for override in (task.get("overrides") or {}).get("containerOverrides", []):
        env = {e.get("name"): e.get("value") for e in override.get("environment", [])}
        if env.get(TASK_ENV_RUN_ID) and env.get(TASK_ENV_BATCH):
            return str(env[TASK_ENV_RUN_ID])
    return None
