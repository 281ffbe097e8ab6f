"""The launch gate's records in memory (tests), beside a :class:`MemoryRecords`.

The queue and the job slots live in the records store, as in DynamoDB they live in the same
table: Launch queues an attempt in the write that begins it, and settling an attempt takes
it out of the queue and gives its slot back. The lease and the wake-ups are read against
``now`` (seconds), the dispatcher's clock in a fake-time test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from fanout.records.gate_store import KICK_EVERY_SECONDS, QueueEntry
from fanout.records.model import AttemptRecord
from fanout.testing.records import MemoryRecords


class MemoryGateStore:
    """:class:`~fanout.records.gate_store.GateStore` in memory, with the DynamoDB store's
    conditions."""

    def __init__(self, records: MemoryRecords, now: Callable[[], float] = time.time) -> None:
        self.records = records
        self.now = now
        self.lease_until = 0.0
        self.lease_owner: str | None = None
        self.kicked_at: float | None = None
        self.buckets: dict[str, dict[str, float]] = {}
        #: Wake-ups won (:meth:`claim_wake`), for tests to count.
        self.wakes = 0

    # --- the queue -----------------------------------------------------------------------
    def queue_entries(self, capacity: str, limit: int) -> list[QueueEntry]:
        with self.records._lock:
            keys = sorted(k for k in self.records.queue if k.startswith(f"Q#{capacity}#"))
            return [QueueEntry(sk=k, run_id=str(e["run_id"]), index=int(e["index"]),
                               attempt=int(e["attempt"]), capacity=str(e["capacity"]),
                               turn=int(e.get("turn") or 0))
                    for k, e in ((k, self.records.queue[k]) for k in keys[:limit])]

    def drop_entry(self, sk: str) -> None:
        with self.records._lock:
            self.records.queue.pop(sk, None)

    # --- the dispatcher's lease ----------------------------------------------------------
    def claim_wake(self, *, again: bool) -> bool:
        with self.records._lock:
            now = self.now()
            recent = now if again else now - KICK_EVERY_SECONDS
            if self.lease_until >= now or (self.kicked_at is not None
                                           and self.kicked_at > recent):
                return False
            self.kicked_at = now
            self.wakes += 1
            return True

    def acquire_lease(self, owner: str, seconds: float) -> bool:
        with self.records._lock:
            now = self.now()
            if self.lease_until >= now and self.lease_owner != owner:
                return False
            self.lease_until, self.lease_owner = now + seconds, owner
            return True

    def release_lease(self, owner: str) -> None:
        with self.records._lock:
            if self.lease_owner == owner:
                self.lease_until = 0.0

    # --- the buckets ---------------------------------------------------------------------
    def bucket_state(self, capacity: str) -> dict[str, float]:
        return dict(self.buckets.get(capacity, {}))

    def save_bucket(self, capacity: str, state: dict[str, float]) -> None:
        self.buckets[capacity] = dict(state)

    # --- job slots -----------------------------------------------------------------------
    def take_slot(self, attempt: AttemptRecord, job: str, limit: int) -> bool:
        with self.records._lock:
            key = (attempt.run_id, attempt.index, attempt.attempt)
            record = self.records.attempt_records.get(key)
            if record is None or not record.is_open or record.slot is not None:
                return False
            if self.records.running.get(job, 0) >= limit:
                return False
            self.records.running[job] = self.records.running.get(job, 0) + 1
            self.records.attempt_records[key] = replace(record, slot=job)
            return True

    def give_slot(self, attempt: AttemptRecord, job: str) -> bool:
        with self.records._lock:
            key = (attempt.run_id, attempt.index, attempt.attempt)
            record = self.records.attempt_records.get(key)
            if record is None or record.slot != job:
                return False
            self.records.running[job] = self.records.running.get(job, 0) - 1
            self.records.attempt_records[key] = replace(record, slot=None)
            return True

    def running_of(self, job: str) -> int:
        return self.records.running.get(job, 0)
