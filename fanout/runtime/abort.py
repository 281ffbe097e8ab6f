"""Abort: a run's execution was stopped, failed or timed out; leave no task running.

Its open attempts' tasks are stopped and their items end ABORTED, every other item not
yet terminal is settled by the same sweep Finalize uses, and the run is closed: ABORTED,
TIMED_OUT, or FAILED for a failed execution. Every ending Finalize did not announce is
announced here, a REJECTED run's included (its execution failed with the bad spec).

The sweep pages through the run's items within a time budget (:mod:`fanout.runtime.closing`):
when the budget is spent, the result carries ``next_event``, the event of the next
invocation (the execution's name, status and ARN, and the cursor), which the handler sends
to its own function asynchronously; Lambda retries it, then dead-letters it, as it does the
EventBridge event that started the chain.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import TaskLauncher
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.config import Limits
from fanout.records.model import RunRecord, RunStatus
from fanout.records.store import RecordsStore
from fanout.runtime.clock import Clock, iso, parse, utcnow
from fanout.runtime.closing import Budget, Cursor, close_pages, failed_items
from fanout.runtime.finalize import summary_of
from fanout.runtime.leftovers import stop_leftovers
from fanout.runtime.notify import Chat, announce

if TYPE_CHECKING:
    from fanout.cost import RegionPrices

_RUN_STATUS: dict[str, RunStatus] = {"ABORTED": "ABORTED", "FAILED": "FAILED",
                                     "TIMED_OUT": "TIMED_OUT"}


class ExecutionStatusChange(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    detail: dict[str, Any]
    #: Where the previous invocation of this run's Abort left off (a continuation).
    cursor: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.detail.get("name", ""))

    @property
    def status(self) -> str:
        return str(self.detail.get("status", ""))


def abort(change: ExecutionStatusChange, *, store: RecordsStore, launcher: TaskLauncher,
          callbacks: TaskCallbacks, sns: Any = None, topic_arn: str = "", s3: Any = None,
          bucket: str = "", prices: RegionPrices | None = None,
          limits: Limits | None = None, clock: Clock = utcnow, budget: Budget | None = None,
          page_records: int | None = None, chat: Chat | None = None) -> dict[str, Any]:
    run_id, execution_status = change.run_id, change.status
    if execution_status not in _RUN_STATUS:
        return {"run_id": run_id, "result": f"nothing to do for {execution_status}"}
    run = store.get_run(run_id)
    if run is None:
        # Stopped (or failed) before Expand recorded the run, or while it did. The run is
        # recorded closed, so an Expand still under way finds it so and records nothing (its
        # write is conditional); if Expand wrote first, the run is closed as any other.
        document = _input_of(change)
        closed = never_expanded(change, document, _RUN_STATUS[execution_status], iso(clock()),
                                limits)
        if store.create_run(closed, spec=document):
            announced = announce(store, sns, topic_arn, closed, [], prices, chat)
            return {"run_id": run_id, "result": "closed before its items were expanded",
                    "status": closed.status, "announced": announced}
        run = store.get_run(run_id)
        if run is None:
            return {"run_id": run_id, "result": "nothing to do", "status": None}
    running = run.status == "RUNNING"
    if not running and (run.notified or not topic_arn or sns is None):
        # Finished and announced by Finalize: nothing to read.
        return {"run_id": run_id, "result": "nothing to do", "status": run.status,
                "announced": False}
    cursor = Cursor.model_validate(change.cursor or {})
    reason = f"execution {execution_status}"
    if not close_pages(run, cursor, store=store, launcher=launcher, callbacks=callbacks,
                       reason=reason, budget=budget or Budget(), clock=clock, s3=s3,
                       bucket=bucket, page_records=page_records):
        detail = {k: change.detail.get(k) for k in ("name", "status", "executionArn")}
        return {"run_id": run_id, "result": "continues", "status": run.status,
                "next_event": {"detail": detail, "cursor": cursor.model_dump()},
                **cursor.settled()}
    failed = failed_items(store, run_id, cursor)
    if not running:
        # Finished by Finalize (announced there) or REJECTED by Expand (announced here).
        announced = announce(store, sns, topic_arn, run, failed, prices, chat)
        return {"run_id": run_id, "result": "nothing to do", "status": run.status,
                "announced": announced}
    run = store.get_run(run_id) or run
    status = _RUN_STATUS[execution_status]
    store.finish_run(run_id, status, iso(clock()), summary_of(run, status, failed))
    settled = cursor.settled()
    # A task whose RunTask was in flight during the sweep is running now, or its Launch
    # reads the run as closed and stops it: look for the first kind only after closing.
    settled["stopped"] += stop_leftovers(store, launcher, run_id=run_id)
    run = store.get_run(run_id) or run
    announced = announce(store, sns, topic_arn, run, failed, prices, chat)
    return {"run_id": run_id, "result": "closed", "status": run.status, "announced": announced,
            **settled}


def _input_of(change: ExecutionStatusChange) -> dict[str, Any]:
    """The execution's input (the run spec) when the event carries it, else empty."""
    try:
        document = json.loads(str(change.detail.get("input") or ""))
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def never_expanded(change: ExecutionStatusChange, document: dict[str, Any], status: RunStatus,
                   now: str, limits: Limits | None) -> RunRecord:
    """The record of a run whose execution ended before Expand recorded it: no items, the
    job and trigger its input (``document``) names, why it ended."""
    job = document.get("job")
    start = change.detail.get("startDate")
    started = (iso(datetime.fromtimestamp(start / 1000, UTC))
               if isinstance(start, (int, float)) else now)
    why = f"the execution ended {status} before its items were expanded"
    cause = " ".join(str(change.detail.get("cause") or "").split())
    return RunRecord(
        run_id=change.run_id, job=job if isinstance(job, str) and job else "-", status=status,
        started_at=started, finished_at=now, trigger=str(document.get("trigger", "console")),
        execution_arn=str(change.detail.get("executionArn") or ""),
        parent_run=document.get("parent_run") if isinstance(document.get("parent_run"), str)
        else None,
        summary=why, problems=[cause[:400]] if cause else [],
        expires_at=(limits or Limits()).records_expire(parse(started)),
    )
