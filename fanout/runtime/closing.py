"""Closing a run a page at a time: what Finalize and Abort share (docs/decisions/0009).

A run of any size closes in invocations that each work a bounded time: each reads the
run's items a page at a time (:meth:`RecordsStore.items_page`) from a :class:`Cursor`,
makes every item of the page terminal, and hands the cursor on when its :class:`Budget`
is spent: Finalize to the state machine's loop, Abort to its next invocation.

The "nothing lost" sweep of a page: an item with an open attempt has its task stopped and
ends ABORTED; an item between attempts ends FAILED (its launch was refused for good) or
ABORTED; an index of the page with no record (never launched) ends ABORTED, written with
its params, command and environment from the items manifest, streamed from the byte the
cursor says. Every write is conditional, so an invocation retried on the same cursor
settles nothing twice. On the way the cursor keeps the first :data:`LISTED` failed items'
indexes (never the items): the summary and the notification read only those back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import TaskLauncher
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.records.model import TERMINAL, ItemRecord, ItemStatus, RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime.classify import ABORT_REASON, Decision, StopClass
from fanout.runtime.clock import Clock, iso, utcnow
from fanout.runtime.notify import LISTED
from fanout.runtime.settle import final_stop, settle

#: Records (items and their attempts) read per page: one Query of about 100 KB.
PAGE_RECORDS = 200
#: An invocation starts no page after this many seconds (Finalize's timeout is 120 s,
#: Abort's 240 s: a page that starts in time ends well within them).
BUDGET_SECONDS = 60.0
#: Passes over a run at most: a second one only when the counters say the first left an
#: item open.
MAX_PASSES = 2
#: Item statuses listed as failed in the summary and the notification.
FAILED: tuple[ItemStatus, ...] = ("FAILED", "TIMED_OUT", "ABORTED")


class Cursor(BaseModel):
    """Where closing a run stands: passed from one invocation to the next (a few hundred
    bytes whatever the run's size)."""

    model_config = ConfigDict(extra="ignore")

    #: Every item with an index up to this one is terminal (and listed if failed).
    after: int = -1
    #: The items manifest's byte offset past the last line read (never-launched items).
    manifest_offset: int = 0
    #: The indexes of the first :data:`LISTED` failed items, in index order.
    failed: list[int] = []
    stopped: int = 0
    aborted: int = 0
    settled_failed: int = 0
    pages: int = 0
    invocations: int = 0
    #: Passes over the run begun (another when one ended with an item still open).
    passes: int = 1

    def settled(self) -> dict[str, int]:
        return {"stopped": self.stopped, "aborted": self.aborted, "failed": self.settled_failed}


class Budget:
    """Whether an invocation may start another page: ``seconds`` from its creation on
    ``clock`` (monotonic seconds; tests tick it)."""

    def __init__(self, seconds: float = BUDGET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.ends = clock() + seconds

    @classmethod
    def of(cls, context: Any, cap: float = BUDGET_SECONDS) -> Budget:
        """At most ``cap`` seconds, and half of what the Lambda ``context`` has left: the
        rest is for the page under way and closing the run."""
        remaining = context.get_remaining_time_in_millis() / 1000 if context else 2 * cap
        return cls(min(cap, remaining / 2))

    def allows(self) -> bool:
        return self.clock() < self.ends


def close_pages(run: RunRecord, cursor: Cursor, *, store: RecordsStore,
                launcher: TaskLauncher, callbacks: TaskCallbacks, reason: str,
                budget: Budget, clock: Clock = utcnow, s3: Any = None, bucket: str = "",
                page_records: int | None = None) -> bool:
    """Page through ``run``'s items from ``cursor`` (updated in place) while ``budget``
    allows (one page at least); True once every item is terminal and the failed ones are
    listed. A closed run is only read (its failed items listed)."""
    limit = page_records or PAGE_RECORDS  # read now: tests lower it
    cursor.invocations += 1
    sweeping = run.status == "RUNNING"
    manifest = _Manifest(s3, bucket, run.run_id, cursor.manifest_offset)
    first = True
    while True:
        if cursor.after >= run.total - 1 or _nothing_left(store, run.run_id, cursor, sweeping):
            return True
        if not first and not budget.allows():
            return False
        first = False
        items, last = store.items_page(run.run_id, cursor.after, limit)
        last = min(last, run.total - 1)
        seen: set[int] = set()
        for item in items:
            if item.index > last:
                break
            seen.add(item.index)
            status = item.status
            if sweeping and status not in TERMINAL:
                status = _close_item(store, launcher, callbacks, run, item, reason, cursor,
                                     clock)
            _list(cursor, item.index, status)
        missing = [i for i in range(cursor.after + 1, last + 1) if i not in seen]
        if sweeping and missing:
            _close_never_launched(store, run, missing, manifest, reason, cursor)
        cursor.manifest_offset = manifest.offset
        cursor.after = last
        cursor.pages += 1
        if cursor.after >= run.total - 1 and sweeping and cursor.passes < MAX_PASSES \
                and not _all_terminal(store, run.run_id):
            # An item began while its page was swept (a launch in flight), or a write lost
            # to a concurrent one: the counters say so, and the run is read once more.
            cursor.after, cursor.manifest_offset, cursor.passes = -1, 0, cursor.passes + 1
            cursor.failed = []
            manifest = _Manifest(s3, bucket, run.run_id, 0)


def _all_terminal(store: RecordsStore, run_id: str) -> bool:
    run = store.get_run(run_id)
    return run is None or sum(run.count(s) for s in TERMINAL) >= run.total


def _nothing_left(store: RecordsStore, run_id: str, cursor: Cursor, sweeping: bool) -> bool:
    """The counters say every item is terminal and every failed one is listed already:
    the rest of the items need not be read."""
    run = store.get_run(run_id)
    if run is None:
        return True
    if sweeping and sum(run.count(s) for s in TERMINAL) < run.total:
        return False
    return len(cursor.failed) >= min(LISTED, sum(run.count(s) for s in FAILED))


def _list(cursor: Cursor, index: int, status: ItemStatus) -> None:
    if status in FAILED and len(cursor.failed) < LISTED and index not in cursor.failed:
        cursor.failed.append(index)


def _close_item(store: RecordsStore, launcher: TaskLauncher, callbacks: TaskCallbacks,
                run: RunRecord, item: ItemRecord, reason: str, cursor: Cursor,
                clock: Clock) -> ItemStatus:
    """End a non-terminal item; returns its status after (read back if another writer
    ended it first)."""
    if item.open_attempt is not None:
        attempt = store.get_attempt(run.run_id, item.index, item.open_attempt)
        if attempt is not None and attempt.is_open:
            if attempt.task_arn:
                launcher.stop_task(attempt.task_arn, f"{ABORT_REASON}: {reason}")
                cursor.stopped += 1
            aborted = Decision("fail", "ABORTED", "Fanout.ItemAborted", reason)
            if settle(store, callbacks, run, attempt, final_stop(StopClass.ABORTED, reason),
                      stopped_at=iso(clock()), decision=aborted) == "fail":
                cursor.aborted += 1
                return "ABORTED"
    else:
        status: ItemStatus = "FAILED" if _launch_failed(store, run, item.index) else "ABORTED"
        if store.settle_item(run.run_id, item.index, status, reason):
            if status == "FAILED":
                cursor.settled_failed += 1
            else:
                cursor.aborted += 1
            return status
    current = store.get_item(run.run_id, item.index)
    return current.status if current is not None else item.status


def _launch_failed(store: RecordsStore, run: RunRecord, index: int) -> bool:
    attempts = store.attempts(run.run_id, index)
    return bool(attempts) and attempts[-1].stop_class is not None \
        and attempts[-1].stop_class.endswith(":launch_refused")


def _close_never_launched(store: RecordsStore, run: RunRecord, missing: list[int],
                          manifest: _Manifest, reason: str, cursor: Cursor) -> None:
    never = f"never launched: {reason}"
    lines = manifest.lines(set(missing), missing[-1])
    for index in missing:
        line = lines.get(index, {})
        first = ItemRecord(run.run_id, index, "PENDING", params=line.get("params", {}),
                           command=line.get("command", []),
                           environment=line.get("environment", {}), expires_at=run.expires_at)
        if store.settle_item(run.run_id, index, "ABORTED", never, first=first):
            cursor.aborted += 1
            _list(cursor, index, "ABORTED")
        else:  # begun or settled meanwhile
            current = store.get_item(run.run_id, index)
            if current is not None:
                _list(cursor, index, current.status)


class _Manifest:
    """The run's items manifest, streamed forward from a byte offset, opened only when a
    page has never-launched items (an expired manifest gives none: their records then
    have no params)."""

    def __init__(self, s3: Any, bucket: str, run_id: str, offset: int) -> None:
        self.s3, self.bucket, self.run_id, self.offset = s3, bucket, run_id, offset
        self._lines: Iterator[tuple[dict[str, Any], int]] | None = None
        self._ahead: tuple[dict[str, Any], int] | None = None

    def lines(self, wanted: set[int], last: int) -> dict[int, dict[str, Any]]:
        """The lines of the ``wanted`` indexes, reading on up to index ``last``."""
        if self.s3 is None or not self.bucket:
            return {}
        if self._lines is None:
            from fanout.aws.s3 import manifest_from

            self._lines = manifest_from(self.s3, self.bucket, self.run_id, self.offset)
        found: dict[int, dict[str, Any]] = {}
        while True:
            if self._ahead is None:
                self._ahead = next(self._lines, None)
                if self._ahead is None:
                    return found
            line, end = self._ahead
            index = int(line["index"])
            if index > last:
                return found  # the next page's: kept for it
            if index in wanted:
                found[index] = line
            self.offset, self._ahead = end, None


def failed_items(store: RecordsStore, run_id: str, cursor: Cursor) -> list[dict[str, Any]]:
    """The listed failed items as the summary and the notification show them."""
    out = []
    for index in cursor.failed:
        item = store.get_item(run_id, index)
        if item is not None:
            out.append({"index": item.index, "status": item.status, "exit_code": item.exit_code,
                        "params": item.params, "reason": item.reason,
                        "log_tail": item.log_tail or []})
    return out


def failed_items_of(store: RecordsStore, run: RunRecord) -> list[dict[str, Any]]:
    """The first failed items of a closed run, read in index order (no cursor at hand)."""
    wanted = min(LISTED, sum(run.count(s) for s in FAILED))
    cursor = Cursor()
    for item in store.items(run.run_id) if wanted else ():
        if item.status in FAILED:
            cursor.failed.append(item.index)
            if len(cursor.failed) >= wanted:
                break
    return failed_items(store, run.run_id, cursor)
