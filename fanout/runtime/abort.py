"""Abort: a run's execution was stopped, failed or timed out; leave no task running.

Its open attempts' tasks are stopped and their items end ABORTED, every other item not
yet terminal is settled by the same sweep Finalize uses, and the run is closed. A run
that already finished (Finalize ran) or was REJECTED needs nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import TaskLauncher
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.records.model import RunStatus
from fanout.records.store import RecordsStore
from fanout.runtime.clock import Clock, iso, utcnow
from fanout.runtime.finalize import _failed_items, summary_of, sweep

_RUN_STATUS: dict[str, RunStatus] = {"ABORTED": "ABORTED", "FAILED": "FAILED",
                                     "TIMED_OUT": "FAILED"}


class ExecutionStatusChange(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    detail: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.detail.get("name", ""))

    @property
    def status(self) -> str:
        return str(self.detail.get("status", ""))


def abort(change: ExecutionStatusChange, *, store: RecordsStore, launcher: TaskLauncher,
          callbacks: TaskCallbacks, s3: Any = None, bucket: str = "",
          clock: Clock = utcnow) -> dict[str, Any]:
    run_id, execution_status = change.run_id, change.status
    if execution_status not in _RUN_STATUS:
        return {"run_id": run_id, "result": f"nothing to do for {execution_status}"}
    run = store.get_run(run_id)
    if run is None or run.status != "RUNNING":
        return {"run_id": run_id, "result": "nothing to do",
                "status": run.status if run else None}
    reason = f"execution {execution_status}"
    settled = sweep(run, store=store, launcher=launcher, callbacks=callbacks, reason=reason,
                    clock=clock, s3=s3, bucket=bucket)
    run = store.get_run(run_id) or run
    status = _RUN_STATUS[execution_status]
    summary = summary_of(run, status, _failed_items(store, run))
    store.finish_run(run_id, status, iso(clock()), summary)
    return {"run_id": run_id, "result": "closed", "status": status, **settled}
