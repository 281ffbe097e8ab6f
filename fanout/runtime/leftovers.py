"""Tasks left running that no attempt waits for: stopped by the control plane.

A task can outlive what it was started for: RunTask was in flight when its run was
stopped (Abort swept the attempt before the task existed), or an attempt was settled as
lost while its late task was still coming up. Such a task is stopped when its run is no
longer RUNNING or its attempt is closed (or was never written). Launch stops the task it
started for a run stopped meanwhile; Abort stops what is left of the run it closed; and
Reconcile, every period, what is left of any run.
"""

from __future__ import annotations

from collections.abc import Mapping

from fanout.aws.ecs import TaskLauncher
from fanout.records.model import RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime.classify import ABORT_REASON
from fanout.runtime.record import identity

Key = tuple[str, int, int]
#: Why a task whose attempt was already settled is stopped.
SETTLED_REASON = "fanout: attempt already settled"


def stop_if_run_ended(store: RecordsStore, launcher: TaskLauncher, run_id: str,
                      task_arn: str) -> bool:
    """After RunTask: stop the task if its run stopped while the call was in flight."""
    run = store.get_run(run_id, totals=False)
    if run is not None and run.status == "RUNNING":
        return False
    status = run.status if run is not None else "gone"
    launcher.stop_task(task_arn, f"{ABORT_REASON}: started as the run was {status}")
    return True


def stop_leftovers(store: RecordsStore, launcher: TaskLauncher, *, run_id: str | None = None,
                   running: list[str] | None = None,
                   open_attempts: Mapping[str, Key] | None = None) -> int:
    """Stop every running fanout task (of ``run_id`` only, when given) that nothing waits
    for; returns how many were stopped.

    ``running`` are the running tasks' ARNs when the caller listed them already, and
    ``open_attempts`` the open attempts it read after listing (task ARN -> attempt key):
    those tasks are not described again, and their attempts not read again.
    """
    known = dict(open_attempts or {})
    listed = launcher.running_tasks() if running is None else running
    tasks: dict[str, Key] = {arn: known[arn] for arn in listed if arn in known}
    unknown = [arn for arn in listed if arn not in known]
    for arn, task in (launcher.describe_tasks(unknown) if unknown else {}).items():
        if task.get("desiredStatus") == "STOPPED" or task.get("lastStatus") == "STOPPED":
            continue  # stopping already
        key = identity(task)
        if key is not None:
            tasks[arn] = key
    open_keys = set(known.values())
    runs: dict[str, RunRecord | None] = {}
    stopped = 0
    for arn, key in tasks.items():
        if run_id is not None and key[0] != run_id:
            continue
        if key[0] not in runs:
            runs[key[0]] = store.get_run(key[0], totals=False)
        run = runs[key[0]]
        if run is not None and run.status == "RUNNING":
            if key in open_keys:
                continue
            attempt = store.get_attempt(*key)
            if attempt is not None and attempt.is_open:
                continue
            reason = f"{SETTLED_REASON}: attempt {key[2]} of item {key[1]}"
        else:
            reason = f"{ABORT_REASON}: its run is {run.status if run is not None else 'gone'}"
        launcher.stop_task(arn, reason)
        stopped += 1
    return stopped
