"""Reconcile (scheduled): settle attempts whose STOPPED event never came; enforce timeouts.

Open attempts come from the sparse ``open_attempts`` index. Those with a task are
described in batches of 100: a STOPPED task is settled as Record would; a task past its
deadline is stopped and its attempt ends TIMED_OUT (or is retried, by the policy); a task
ECS no longer knows is settled as lost (an infrastructure failure). An attempt without a
task whose launch lease ran out a while ago (Launch died, and its retries, which repeat
RunTask with the attempt's ``clientToken`` and so adopt any task it started, are spent) is
settled as lost so the state machine launches again; a task it did start is stopped as a
leftover. No task is ever looked for by listing the cluster. Last, every running fanout
task that nothing waits for (its run is no longer RUNNING, or its attempt is closed) is
stopped (:mod:`leftovers`).
"""

from __future__ import annotations

from fanout.aws.ecs import TaskLauncher
from fanout.aws.logs import LogTail
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.records.model import AttemptRecord
from fanout.records.store import RecordsStore
from fanout.runtime.classify import TIMEOUT_REASON, StopClass
from fanout.runtime.clock import Clock, iso, parse, utcnow
from fanout.runtime.leftovers import stop_leftovers
from fanout.runtime.record import record_stop
from fanout.runtime.settle import Outputs, final_stop, settle

#: An attempt younger than this is left alone (its events may be on their way).
SETTLE_AFTER_SECONDS = 60


def reconcile(*, store: RecordsStore, launcher: TaskLauncher, callbacks: TaskCallbacks,
              clock: Clock = utcnow, log_tail: LogTail | None = None,
              log_groups: dict[str, str] | None = None,
              outputs: Outputs | None = None) -> dict[str, int]:
    """Settle what the events missed (a failed attempt with its log's end and an ending
    item with its outputs, as Record does), stop what ran past its deadline or outlived
    its run."""
    now = clock()
    counts = {"open": 0, "settled": 0, "timed_out": 0, "lost": 0, "leftovers": 0}
    # Listed before the attempts are read: every task listed had its attempt written first.
    running = launcher.running_tasks()
    with_task: dict[str, AttemptRecord] = {}
    for attempt in store.open_attempts():
        counts["open"] += 1
        if attempt.task_arn:
            with_task[attempt.task_arn] = attempt
        elif attempt.queued:
            continue  # the dispatcher's: it adopts or starts the task (fanout.runtime.gate)
        # Its Launch died and its retries are spent (a retried Launch repeats RunTask with
        # the attempt's clientToken and adopts the task). Settled lost: a task it may have
        # started is stopped below, its attempt being closed.
        elif _lease_expired(attempt, iso(now), SETTLE_AFTER_SECONDS) and _settle_lost(
                store, callbacks, attempt, "the launch died before a task was recorded",
                clock):
            counts["lost"] += 1
    described = launcher.describe_tasks(list(with_task)) if with_task else {}
    for arn, attempt in with_task.items():
        task = described.get(arn)
        if task is None:
            if _age(attempt, iso(now)) > SETTLE_AFTER_SECONDS and _settle_lost(
                    store, callbacks, attempt, "ECS no longer knows the task", clock, outputs):
                counts["lost"] += 1
            continue
        if task.get("lastStatus") == "STOPPED":
            result = record_stop(task, store=store, callbacks=callbacks, clock=clock,
                                 log_tail=log_tail, log_groups=log_groups, outputs=outputs)
            counts["settled"] += result.get("result") in ("success", "retry", "fail")
        elif attempt.deadline and attempt.deadline < iso(now):
            launcher.stop_task(arn, f"{TIMEOUT_REASON} after the run's timeout")
            run = store.get_run(attempt.run_id, totals=False)
            if run is not None:
                stop = final_stop(StopClass.TIMEOUT, f"{TIMEOUT_REASON} at {attempt.deadline}")
                settle(store, callbacks, run, attempt, stop, stopped_at=iso(now),
                       outputs=outputs)
                counts["timed_out"] += 1
    counts["leftovers"] = stop_leftovers(store, launcher, running=running, open_attempts={
        arn: (a.run_id, a.index, a.attempt) for arn, a in with_task.items()})
    return counts


def _lease_expired(attempt: AttemptRecord, now: str, grace: float) -> bool:
    """The launch lease ran out over ``grace`` seconds ago."""
    lease = attempt.launch_lease_until
    return lease is not None and (parse(now) - parse(lease)).total_seconds() > grace


def _age(attempt: AttemptRecord, now: str) -> float:
    begun = attempt.started_at or attempt.created_at
    return (parse(now) - parse(begun)).total_seconds() if begun else 0.0


def _settle_lost(store: RecordsStore, callbacks: TaskCallbacks, attempt: AttemptRecord,
                 reason: str, clock: Clock, outputs: Outputs | None = None) -> bool:
    run = store.get_run(attempt.run_id, totals=False)
    if run is None:
        return False
    stop = final_stop(StopClass.LOST, reason)
    return settle(store, callbacks, run, attempt, stop, stopped_at=iso(clock()),
                  outputs=outputs) in (
        "retry", "fail")

