"""Finalize: settle what the map left open, decide the run's status, tell the people.

The "nothing lost" sweep runs first (:mod:`fanout.runtime.closing`), a page of items at
a time over as many invocations as the run needs (the state machine loops on ``done``):
an item never launched (the map failed or was cut short) ends ABORTED, its record written
with its params, command and environment from the items manifest; an item whose launch
failed for good, FAILED; an item with a task still running has that task stopped and ends
ABORTED. After it, run totals equal the count of item states, and every item is terminal.
Every record already carries its expiry (from its first write), so finishing the run
writes only the run record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import TaskLauncher
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.names import console_url
from fanout.records.model import RunRecord, RunStatus
from fanout.records.store import RecordsStore
from fanout.runtime.clock import Clock, iso, utcnow
from fanout.runtime.closing import (
    FAILED,
    Budget,
    Cursor,
    close_pages,
    failed_items,
)
from fanout.runtime.notify import LISTED, Chat, announce

if TYPE_CHECKING:
    from fanout.cost import RegionPrices


class FinalizeInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str
    outcome: dict[str, Any] = {}


def run_status(run: RunRecord, map_error: Any) -> RunStatus:
    failed = run.total - run.count("SUCCEEDED")
    tolerated = float(run.settings.get("tolerated_failure_percent", 0))
    if run.total and failed * 100 > tolerated * run.total:
        return "FAILED"
    if map_error and failed:
        return "FAILED"
    return "SUCCEEDED"


def summary_of(run: RunRecord, status: str, failed_items: list[dict[str, Any]]) -> str:
    t = run.totals()
    text = (f"run {run.run_id} of job {run.job} {status}: {t['succeeded']} of {t['total']} "
            f"items succeeded, {t['failed']} failed, {t['timed_out']} timed out, "
            f"{t['aborted']} aborted")
    if failed_items:
        listed = ", ".join(f"{i['index']} ({i['status']})" for i in failed_items[:LISTED])
        # The list holds the first few; the counters say how many there are.
        more = max(sum(run.count(s) for s in FAILED), len(failed_items)) \
            - len(failed_items[:LISTED])
        text += f"; failed items: {listed}" + (f" and {more} more" if more > 0 else "")
    return text


def finalize(request: FinalizeInput, *, store: RecordsStore, launcher: TaskLauncher,
             callbacks: TaskCallbacks, sns: Any, topic_arn: str, s3: Any = None,
             bucket: str = "", prices: RegionPrices | None = None,
             clock: Clock = utcnow, budget: Budget | None = None,
             page_records: int | None = None, chat: Chat | None = None
             ) -> dict[str, Any]:
    """Close the run a budget's worth of pages at a time: ``done`` false hands the cursor
    to the state machine, which calls again with this output as the outcome."""
    run = store.get_run(request.run_id)
    if run is None:
        raise ValueError(f"no run record for {request.run_id}")
    map_error = request.outcome.get("map_error")
    cursor = Cursor.model_validate(request.outcome.get("cursor") or {})
    why = "the run's map ended early" if map_error else "the run finished"
    if not close_pages(run, cursor, store=store, launcher=launcher, callbacks=callbacks,
                       reason=why, budget=budget or Budget(), clock=clock, s3=s3,
                       bucket=bucket, page_records=page_records):
        more: dict[str, Any] = {"map_error": map_error} if map_error else {}
        return {"run_id": run.run_id, **more, "cursor": cursor.model_dump(), "done": False}
    listed = failed_items(store, run.run_id, cursor)
    if run.status == "RUNNING":
        run = store.get_run(run.run_id) or run
        status = run_status(run, map_error)
        store.finish_run(run.run_id, status, iso(clock()), summary_of(run, status, listed))
        run = store.get_run(run.run_id) or run
    # Also on a retry: a Finalize that died before publishing publishes now.
    announce(store, sns, topic_arn, run, listed, prices, chat)
    status = run.status
    summary = run.summary or summary_of(run, status, listed)
    return {"status": status, "summary": summary, "run_id": run.run_id, "job": run.job,
            **run.totals(), "failed_items": listed[:LISTED],
            "console_url": console_url(run.execution_arn), "done": True}
