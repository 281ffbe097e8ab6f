"""Launch: queue the item's attempt for the launch gate and keep the state machine's token.

Idempotent per attempt: the attempt record is written (conditionally) with its queue entry,
so a retried or doubled invocation never queues a second attempt; it stores the newest
token on the open attempt instead. The dispatcher starts the task (fanout.runtime.gate,
fanout.runtime.dispatch, docs/decisions/0006); Launch itself never calls RunTask.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import client_token
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.policy import Capacity
from fanout.records.model import TERMINAL, AttemptRecord, ItemRecord, RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime import errors
from fanout.runtime.clock import Clock, iso, later, utcnow
from fanout.runtime.gate import Gate
from fanout.runtime.settle import answer, answer_batch_now

#: A batch's items are read and queued this many at once: a turn of K = 1,000 items is
#: 1,000 reads and transactions, which Launch's 30 s could not hold one after another.
TURN_WORKERS = 16
_FINAL_ERRORS = {"FAILED": errors.ITEM_FAILED, "TIMED_OUT": errors.ITEM_TIMED_OUT,
                 "ABORTED": errors.ITEM_ABORTED}


class ManifestItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int
    params: dict[str, Any] = {}
    command: list[str] = []
    environment: dict[str, str] = {}


class ManifestBatch(BaseModel):
    """A packed run's manifest element: one batch of items, one child execution."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    batch: int
    items: list[ManifestItem]


class LaunchInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str
    run_id: str
    item: ManifestBatch | ManifestItem


def launch(request: LaunchInput, *, store: RecordsStore, callbacks: TaskCallbacks, gate: Gate,
           clock: Clock = utcnow) -> dict[str, Any]:
    """Queue the item's next attempt for the launch gate and wake the dispatcher.

    The item's child execution waits on its token; the dispatcher starts the task when the
    gate lets it (docs/decisions/0006). An attempt already open is not queued again: it
    keeps the newest token, queued or with its task started."""
    run = store.get_run(request.run_id, totals=False)
    if run is None:
        raise errors.LaunchFailed(f"no run record for {request.run_id}")
    if isinstance(request.item, ManifestBatch):
        return launch_turn(request, request.item, run, store=store, callbacks=callbacks,
                           gate=gate, clock=clock)
    index = request.item.index
    for _ in range(5):  # a lost race re-reads; a handful of rounds is always enough
        item = store.get_item(run.run_id, index)
        if item is not None and item.status in TERMINAL:
            return _answer_terminal(request.token, item, callbacks)
        if run.status != "RUNNING":
            store.settle_item(run.run_id, index, "ABORTED", f"run is {run.status}",
                              first=_item_of(request, run))
            callbacks.fail(request.token, errors.ITEM_ABORTED, f"run is {run.status}")
            return {"launched": False, "reason": f"run is {run.status}"}
        current = _current_attempt(store, run, item, request, clock)
        if current is not None:
            attempt, begun = current
            ident = {"run_id": run.run_id, "index": attempt.index, "attempt": attempt.attempt}
            if begun or attempt.queued:
                if not begun:
                    store.keep_token(run.run_id, attempt.index, attempt.attempt,
                                     request.token)
                gate.wake()
                return {**ident, "launched": False, "queued": True}
            return _started(attempt, request, store, callbacks)
        run = store.get_run(run.run_id, totals=False) or run
    raise errors.LaunchThrottled("records kept changing under this launch; try again")


def launch_turn(request: LaunchInput, batch: ManifestBatch, run: RunRecord, *,
                store: RecordsStore, callbacks: TaskCallbacks, gate: Gate,
                clock: Clock = utcnow) -> dict[str, Any]:
    """One turn of a batch's child execution (docs/decisions/0020): queue an attempt for
    each of the batch's items that is not settled for good, all under the child's one
    token, and wake the dispatcher, which launches them as one task. The token is answered
    once none of them has an attempt open (fanout.runtime.settle.answer_batch): success,
    failure, or ``Fanout.Retry`` for another turn with the items that need one.

    Idempotent as :func:`launch` is: an attempt already open keeps the newest token; a
    batch whose items are all settled answers at once."""
    with ThreadPoolExecutor(min(TURN_WORKERS, len(batch.items)),
                            thread_name_prefix="turn") as pool:
        for _ in range(5):  # a lost race re-reads
            found = pool.map(partial(store.get_item, run.run_id),
                             (m.index for m in batch.items))
            items = dict(zip((m.index for m in batch.items), found, strict=True))
            pending = [m for m in batch.items if not _settled(items[m.index])]
            if not pending:
                answer_batch_now(store, callbacks, run, batch.batch, request.token)
                return {"run_id": run.run_id, "batch": batch.batch, "launched": False,
                        "reason": "batch already settled"}
            if run.status != "RUNNING":
                for member in pending:
                    one = LaunchInput(token=request.token, run_id=run.run_id, item=member)
                    store.settle_item(run.run_id, member.index, "ABORTED",
                                      f"run is {run.status}", first=_item_of(one, run))
                callbacks.fail(request.token, errors.ITEM_ABORTED, f"run is {run.status}")
                return {"run_id": run.run_id, "batch": batch.batch, "launched": False,
                        "reason": f"run is {run.status}"}
            # One moment for the turn: its queue entries sort together (the queue's order
            # is its entries' creation time, then run and index), so a page reads it whole.
            turn = partial(_queue_member, request, run, store, items, clock, batch.batch,
                           len(pending), clock())
            if all(pool.map(turn, pending)):
                gate.wake()
                return {"run_id": run.run_id, "batch": batch.batch, "launched": False,
                        "queued": len(pending)}
            run = store.get_run(run.run_id, totals=False) or run
    raise errors.LaunchThrottled("records kept changing under this launch; try again")


def _queue_member(request: LaunchInput, run: RunRecord, store: RecordsStore,
                  items: dict[int, ItemRecord | None], clock: Clock, batch: int, turn: int,
                  at: datetime, member: ManifestItem) -> bool:
    """Queue one item of a batch's turn under the child's token (an open attempt keeps it);
    False when a race was lost."""
    one = LaunchInput(token=request.token, run_id=run.run_id, item=member)
    current = _current_attempt(store, run, items[member.index], one, clock, batch=batch,
                               turn=turn, at=at)
    if current is None:
        return False
    attempt, begun = current
    if not begun and attempt.is_open:
        store.keep_token(run.run_id, attempt.index, attempt.attempt, request.token)
    return True


def _settled(item: ItemRecord | None) -> bool:
    return item is not None and item.status in TERMINAL


def _answer_terminal(token: str, item: ItemRecord, callbacks: TaskCallbacks) -> dict[str, Any]:
    if item.status == "SUCCEEDED":
        callbacks.succeed(token, {"index": item.index, "status": item.status,
                                  "exit_code": item.exit_code})
    else:
        callbacks.fail(token, _FINAL_ERRORS[item.status], f"item already {item.status}")
    return {"launched": False, "reason": f"item already {item.status}"}


def _item_of(request: LaunchInput, run: RunRecord) -> ItemRecord:
    """The item record as first written, from the manifest line."""
    assert isinstance(request.item, ManifestItem)
    return ItemRecord(run.run_id, request.item.index, "PENDING", params=request.item.params,
                      command=request.item.command, environment=request.item.environment,
                      expires_at=run.expires_at)


def _current_attempt(store: RecordsStore, run: RunRecord, item: ItemRecord | None,
                     request: LaunchInput, clock: Clock, *, batch: int | None = None,
                     turn: int | None = None,
                     at: datetime | None = None) -> tuple[AttemptRecord, bool] | None:
    """The open attempt of the item, or a new one (True: begun by this call, which then
    holds its launch lease); None when a race was lost. ``batch`` and ``turn``: the item
    goes with its batch's other pending items, under their child's token."""
    assert isinstance(request.item, ManifestItem)
    index = request.item.index
    if item is not None and item.open_attempt is not None:
        found = store.get_attempt(run.run_id, index, item.open_attempt)
        return (found, False) if found is not None else None
    number = (item.attempts if item else 0) + 1
    now = at or clock()
    timeout = int(run.settings.get("timeout_seconds", 3600))
    attempt = AttemptRecord(
        run_id=run.run_id, index=index, attempt=number,
        client_token=client_token(run.run_id, index, number),
        task_token=request.token, capacity=_capacity(run, item),
        created_at=iso(now), started_at=iso(now), deadline=later(now, timeout),
        # Queued: the dispatcher takes the launch lease when the gate lets the task start.
        expires_at=run.expires_at, queued=True, batch=batch, turn=turn,
    )
    if store.begin_attempt(item or _item_of(request, run), attempt):
        return attempt, True
    return None


def _capacity(run: RunRecord, item: ItemRecord | None) -> str:
    asked = Capacity(run.settings.get("capacity", Capacity.FARGATE.value))
    if asked is Capacity.FARGATE_SPOT_THEN_FARGATE:
        return "FARGATE" if item is not None and item.on_demand else "FARGATE_SPOT"
    return asked.value


def _started(attempt: AttemptRecord, request: LaunchInput, store: RecordsStore,
             callbacks: TaskCallbacks) -> dict[str, Any]:
    """The open attempt left the launch queue: the dispatcher started its task. The newest
    token is stored, unless the attempt settled first: its answer then went to an earlier
    token, and goes to this one too."""
    ident = {"run_id": attempt.run_id, "index": attempt.index, "attempt": attempt.attempt}
    if not store.keep_token(attempt.run_id, attempt.index, attempt.attempt, request.token):
        current = store.get_attempt(attempt.run_id, attempt.index, attempt.attempt)
        if current is not None and not current.is_open and current.task_token != request.token:
            answer(store, callbacks, replace(current, task_token=request.token))
    return {**ident, "launched": False, "task_arn": attempt.task_arn}
