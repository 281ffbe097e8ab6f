"""Finalize: settle what the map left open, decide the run's status, tell the people.

The "nothing lost" sweep runs first: an item never launched (the map failed or was cut
short) ends ABORTED, its record written with its params, command and environment from the
items manifest; an item whose launch failed for good, FAILED; an item with a task still
running has that task stopped and ends ABORTED. After it, run totals equal the count of
item states, and every item is terminal. Every record already carries its expiry (from its
first write), so finishing the run writes only the run record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import TaskLauncher
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.records.model import TERMINAL, ItemRecord, ItemStatus, RunRecord, RunStatus
from fanout.records.store import RecordsStore
from fanout.runtime.classify import ABORT_REASON, Decision, StopClass
from fanout.runtime.clock import Clock, iso, utcnow
from fanout.runtime.notify import LISTED, Chat, announce, console_url
from fanout.runtime.settle import final_stop, settle

if TYPE_CHECKING:
    from fanout.cost import RegionPrices


class FinalizeInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str
    outcome: dict[str, Any] = {}


def sweep(run: RunRecord, *, store: RecordsStore, launcher: TaskLauncher,
          callbacks: TaskCallbacks, reason: str, clock: Clock = utcnow,
          s3: Any = None, bucket: str = "") -> dict[str, int]:
    """Make every item of ``run`` terminal; returns how many of each were settled.

    With ``s3`` and ``bucket``, never-launched items are written with their manifest line.
    """
    settled = {"stopped": 0, "aborted": 0, "failed": 0}
    aborted = Decision("fail", "ABORTED", "Fanout.ItemAborted", reason)
    for attempt in store.open_attempts(run.run_id):
        if attempt.task_arn:
            launcher.stop_task(attempt.task_arn, f"{ABORT_REASON}: {reason}")
            settled["stopped"] += 1
        stop = final_stop(StopClass.ABORTED, reason)
        if settle(store, callbacks, run, attempt, stop, stopped_at=iso(clock()),
                  decision=aborted) == "fail":
            settled["aborted"] += 1
    if sum(run.count(s) for s in TERMINAL) == run.total:
        # Item states and the run's counters change in one transaction: every item is
        # settled, so there is nothing to look for item by item.
        return settled
    seen: set[int] = set()
    for item in store.items(run.run_id):
        seen.add(item.index)
        if item.status in TERMINAL or item.open_attempt is not None:
            continue
        status: ItemStatus = "FAILED" if _launch_failed(store, run, item.index) else "ABORTED"
        if store.settle_item(run.run_id, item.index, status, reason):
            settled[status.lower()] += 1
    missing = {index for index in range(run.total) if index not in seen}
    never = f"never launched: {reason}"
    if missing and s3 is not None and bucket:
        # Usually few are missing: the manifest is read only then, streamed, and left as
        # soon as every missing item was found in it.
        from fanout.aws.s3 import manifest_items

        for line in manifest_items(s3, bucket, run.run_id):
            index = int(line["index"])
            if index not in missing:
                continue
            missing.discard(index)
            first = ItemRecord(run.run_id, index, "PENDING", params=line.get("params", {}),
                               command=line.get("command", []),
                               environment=line.get("environment", {}),
                               expires_at=run.expires_at)
            if store.settle_item(run.run_id, index, "ABORTED", never, first=first):
                settled["aborted"] += 1
            if not missing:
                break
    for index in sorted(missing):  # no manifest (expired): the record has no params
        first = ItemRecord(run.run_id, index, "PENDING", expires_at=run.expires_at)
        if store.settle_item(run.run_id, index, "ABORTED", never, first=first):
            settled["aborted"] += 1
    return settled


def _launch_failed(store: RecordsStore, run: RunRecord, index: int) -> bool:
    attempts = store.attempts(run.run_id, index)
    return bool(attempts) and attempts[-1].stop_class is not None \
        and attempts[-1].stop_class.endswith(":launch_refused")


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
        more = len(failed_items) - LISTED
        text += f"; failed items: {listed}" + (f" and {more} more" if more > 0 else "")
    return text


def finalize(request: FinalizeInput, *, store: RecordsStore, launcher: TaskLauncher,
             callbacks: TaskCallbacks, sns: Any, topic_arn: str, s3: Any = None,
             bucket: str = "", prices: RegionPrices | None = None,
             clock: Clock = utcnow, chat: Chat | None = None) -> dict[str, Any]:
    run = store.get_run(request.run_id)
    if run is None:
        raise ValueError(f"no run record for {request.run_id}")
    map_error = request.outcome.get("map_error")
    if run.status == "RUNNING":
        why = "the run's map ended early" if map_error else "the run finished"
        sweep(run, store=store, launcher=launcher, callbacks=callbacks, reason=why, clock=clock,
              s3=s3, bucket=bucket)
        run = store.get_run(run.run_id) or run
        failed_items = failed_items_of(store, run)
        status = run_status(run, map_error)
        summary = summary_of(run, status, failed_items)
        store.finish_run(run.run_id, status, iso(clock()), summary)
        run = store.get_run(run.run_id) or run
    else:
        failed_items = failed_items_of(store, run)
    # Also on a retry: a Finalize that died before publishing publishes now.
    announce(store, sns, topic_arn, run, failed_items, prices, chat)
    status = run.status
    summary = run.summary or summary_of(run, status, failed_items)
    return {"status": status, "summary": summary, "run_id": run.run_id, "job": run.job,
            **run.totals(), "failed_items": failed_items[:LISTED],
            "console_url": console_url(run.execution_arn)}


def failed_items_of(store: RecordsStore, run: RunRecord) -> list[dict[str, Any]]:
    if not any(run.count(s) for s in ("FAILED", "TIMED_OUT", "ABORTED")):
        return []  # the counters say none failed: no need to read every item
    return [{"index": i.index, "status": i.status, "exit_code": i.exit_code,
             "params": i.params, "reason": i.reason, "log_tail": i.log_tail or []}
            for i in store.items(run.run_id) if i.status in ("FAILED", "TIMED_OUT", "ABORTED")]
