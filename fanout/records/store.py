"""The records store interface: what the control plane reads and writes.

Implemented on DynamoDB by :class:`fanout.records.dynamo.DynamoRecords` and in memory by
:class:`fanout.testing.records.MemoryRecords` (tests). Every write that can race is
conditional, and the method says with its return value whether it won; a write refused
for contention (a conflict, a throttle) is retried and then raised
(:class:`fanout.records.writes.ContentionError`), never answered as a lost race.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from fanout.records.model import (
    AttemptRecord,
    ItemRecord,
    ItemStatus,
    RunRecord,
    RunStatus,
    Settlement,
)


class RecordsStore(Protocol):
    """What the control plane reads and writes. Every write that can race says if it won."""

    def create_run(self, run: RunRecord, spec: Any = None) -> bool:
        """Write the run record once, and its spec as given (``SPEC``) before it."""
        ...
    def get_run(self, run_id: str, totals: bool = True) -> RunRecord | None:
        """The run; without ``totals`` its counts are not read (the per-item paths need its
        status and settings only, and reading totals costs a Query of the counter shards)."""
        ...
    def get_spec(self, run_id: str) -> Any:
        """The run's spec as given; None when the run has no spec record."""
        ...
    def finish_run(self, run_id: str, status: RunStatus, finished_at: str, summary: str) -> bool:
        """Close a RUNNING run (once)."""
        ...
    def mark_notified(self, run_id: str) -> None:
        """The run's ending was published."""
        ...
    def get_item(self, run_id: str, index: int) -> ItemRecord | None: ...
    def items(self, run_id: str) -> Iterator[ItemRecord]: ...
    def items_page(self, run_id: str, after: int, limit: int) -> tuple[list[ItemRecord], int]:
        """The item records with ``after < index <= after + limit`` in index order, reading
        ``limit`` records at most (an item's attempts count), and the last index the page
        covers, the next page's ``after``: an index up to it with no record has none."""
        ...
    def get_attempt(self, run_id: str, index: int, attempt: int) -> AttemptRecord | None: ...
    def attempts(self, run_id: str, index: int | None = None) -> list[AttemptRecord]: ...
    def begin_attempt(self, item: ItemRecord, attempt: AttemptRecord) -> bool:
        """Write attempt n (and the item at n = 1, moving it PENDING -> RUNNING)."""
        ...
    def claim_launch(self, run_id: str, index: int, attempt: int, now: str,
                     lease_until: str) -> tuple[bool, AttemptRecord | None]:
        """Win the right to call RunTask for a queued attempt with no task and no live
        lease; returns whether it was won and the attempt (None when there is none)."""
        ...
    def release_launch(self, run_id: str, index: int, attempt: int) -> None: ...
    def keep_token(self, run_id: str, index: int, attempt: int, task_token: str) -> bool:
        """Store the newest token on an open attempt (a Launch retried while it waits)."""
        ...
    def note_waiting(self, run_id: str, index: int, waiting: dict[str, Any]) -> None:
        """Say why an item still waits for its launch (``why``, ``since``, ``tries``)."""
        ...
    def attach_task(self, run_id: str, index: int, attempt: int, task_arn: str,
                    started_at: str, expires_at: int | None = None,
                    deadline: str | None = None, waited: bool = False,
                    members: list[tuple[int, int]] | None = None,
                    known: AttemptRecord | None = None) -> bool:
        """Write the task record (TTL ``expires_at``; a packed task's lists its
        ``members``), then the ARN on a LAUNCHING attempt (a queued one leaves the launch
        queue in the same write; ``deadline`` then replaces its deadline, counted from the
        launch). ``known``: the attempt as the caller read it before its launch claim
        (the write's conditions still check it), so it is not read again."""
        ...
    def find_task(self, task_arn: str) -> tuple[str, int, int] | None: ...
    def task_members(self, task_arn: str) -> list[tuple[int, int]] | None:
        """The (index, attempt) pairs of a packed task; None for a task of one item."""
        ...
    def requeue_attempt(self, attempt: AttemptRecord, why: str, now: str,
                        turn: int | None = None) -> bool:
        """A packed task stopped before starting the attempt's item: back to the launch
        queue, its attempt not spent; False if it was settled or requeued already."""
        ...
    def settle_attempt(self, attempt: AttemptRecord, settlement: Settlement
                       ) -> AttemptRecord | None:
        """Close an open attempt and move its item, once: the attempt as settled
        (:func:`fanout.records.model.settled`), None if it was closed already."""
        ...
    def mark_answered(self, run_id: str, index: int, attempt: int) -> None: ...
    def settle_item(self, run_id: str, index: int, status: ItemStatus, reason: str,
                    first: ItemRecord | None = None) -> bool:
        """An item with no open attempt (never launched, or between attempts) ends.

        A never-launched item is written from ``first`` (params, command, environment,
        expires_at) when given.
        """
        ...
    def open_attempts(self, run_id: str | None = None) -> list[AttemptRecord]: ...
    def claim_slot(self, schedule: str, logical_time: str, run_id: str, expires_at: int) -> str:
        """Claim a schedule's slot for ``run_id`` once; returns the run that holds it."""
        ...
    def recent_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        """The newest runs first (of ``job`` only when given), at most ``limit``."""
        ...
    def partition(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Every record of the run as stored (run, spec, items, attempts), in key order."""
        ...
