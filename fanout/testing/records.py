"""The records store in a dict, with the same conditions as the DynamoDB form (tests)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from fanout.records.gate_store import WAITED_SECONDS
from fanout.records.layout import attempt_queue_sk, queue_entry, waiting_of
from fanout.records.model import (
    AttemptRecord,
    ItemRecord,
    ItemStatus,
    RunRecord,
    RunStatus,
    Settlement,
    settled,
)


class MemoryRecords:
    """The records store in a dict, with the same conditions as the DynamoDB form."""

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.item_records: dict[tuple[str, int], ItemRecord] = {}
        self.attempt_records: dict[tuple[str, int, int], AttemptRecord] = {}
        self.specs: dict[str, Any] = {}
        self.tasks: dict[str, tuple[str, int, int]] = {}
        self.task_member_lists: dict[str, list[tuple[int, int]]] = {}
        #: ``<schedule>#<scheduled time>`` -> the run that claimed the slot
        self.schedule_slots: dict[str, str] = {}
        self._lock = threading.Lock()
        #: The launch queue: sort key -> entry.
        self.queue: dict[str, dict[str, Any]] = {}
        #: Job -> slots held (``max_running``); taken by the gate store, given back when
        #: the attempt holding one settles.
        self.running: dict[str, int] = {}

    def _move(self, run_id: str, old: ItemStatus, new: ItemStatus, waiting: int = 0) -> bool:
        run = self.runs.get(run_id)
        if run is None or run.status != "RUNNING":
            return False
        counts = dict(run.counts)
        if old != new:
            if old != "PENDING":
                counts[old] = counts.get(old, 0) - 1
            counts[new] = counts.get(new, 0) + 1
        self.runs[run_id] = replace(run, counts=counts, waiting=run.waiting + waiting)
        return True

    def create_run(self, run: RunRecord, spec: Any = None) -> bool:
        with self._lock:
            if spec is not None:
                self.specs[run.run_id] = copy.deepcopy(spec)
            if run.run_id in self.runs:
                return False
            self.runs[run.run_id] = copy.deepcopy(run)
            return True

    def get_run(self, run_id: str, totals: bool = True) -> RunRecord | None:
        return self.runs.get(run_id)

    def get_spec(self, run_id: str) -> Any:
        return copy.deepcopy(self.specs.get(run_id))

    def finish_run(self, run_id: str, status: RunStatus, finished_at: str, summary: str) -> bool:
        with self._lock:
            run = self.runs.get(run_id)
            if run is None or run.status != "RUNNING":
                return False
            self.runs[run_id] = replace(
                run, status=status, finished_at=finished_at, summary=summary)
            return True

    def mark_notified(self, run_id: str) -> None:
        with self._lock:
            self.runs[run_id] = replace(self.runs[run_id], notified=True)

    def get_item(self, run_id: str, index: int) -> ItemRecord | None:
        return self.item_records.get((run_id, index))

    def items(self, run_id: str) -> Iterator[ItemRecord]:
        keys = sorted(k for k in self.item_records if k[0] == run_id)
        return iter([self.item_records[k] for k in keys])

    def items_page(self, run_id: str, after: int, limit: int) -> tuple[list[ItemRecord], int]:
        # As DynamoDB reads the partition: an item's record, then its attempts', and the
        # attempts count toward the page's limit.
        if limit < 1:
            raise ValueError(f"a page holds at least one record, not {limit}")
        span = range(after + 1, after + limit + 1)
        keys = sorted([(k[1], 0) for k in self.item_records if k[0] == run_id and k[1] in span]
                      + [(k[1], k[2]) for k in self.attempt_records
                         if k[0] == run_id and k[1] in span])
        page = keys[:limit]
        found = [self.item_records[(run_id, i)] for i, n in page if n == 0]
        return found, page[-1][0] if len(keys) > limit else after + limit

    def get_attempt(self, run_id: str, index: int, attempt: int) -> AttemptRecord | None:
        return self.attempt_records.get((run_id, index, attempt))

    def attempts(self, run_id: str, index: int | None = None) -> list[AttemptRecord]:
        keys = sorted(k for k in self.attempt_records
                      if k[0] == run_id and (index is None or k[1] == index))
        return [self.attempt_records[k] for k in keys]

    def begin_attempt(self, item: ItemRecord, attempt: AttemptRecord) -> bool:
        with self._lock:
            key = (item.run_id, item.index, attempt.attempt)
            if key in self.attempt_records:
                return False
            current = self.item_records.get((item.run_id, item.index))
            waiting = waiting_of(attempt)
            if attempt.attempt == 1:
                if current is not None or not self._move(item.run_id, "PENDING", "RUNNING",
                                                         1 if waiting else 0):
                    return False
                self.item_records[(item.run_id, item.index)] = replace(
                    item, status="RUNNING", attempts=1, open_attempt=1, waiting=waiting)
            else:
                if (current is None or current.attempts != attempt.attempt - 1
                        or current.status != "RUNNING" or current.open_attempt is not None):
                    return False
                if waiting:
                    self._move(item.run_id, "RUNNING", "RUNNING", 1)
                self.item_records[(item.run_id, item.index)] = replace(
                    current, attempts=attempt.attempt, open_attempt=attempt.attempt,
                    waiting=waiting)
            if waiting:
                self.queue[attempt_queue_sk(attempt)] = queue_entry(item, attempt)
            self.attempt_records[key] = attempt
            return True

    def claim_launch(self, run_id: str, index: int, attempt: int, now: str,
                     lease_until: str) -> tuple[bool, AttemptRecord | None]:
        with self._lock:
            key = (run_id, index, attempt)
            record = self.attempt_records.get(key)
            if record is None:
                return False, None
            lease = record.launch_lease_until
            if (record.status == "LAUNCHING" and record.queued and record.task_arn is None
                    and (lease is None or lease < now)):
                record = replace(record, launch_lease_until=lease_until)
                self.attempt_records[key] = record
                return True, record
            return False, record

    def release_launch(self, run_id: str, index: int, attempt: int) -> None:
        with self._lock:
            key = (run_id, index, attempt)
            if key in self.attempt_records:
                self.attempt_records[key] = replace(self.attempt_records[key],
                                                    launch_lease_until=None)

    def attach_task(self, run_id: str, index: int, attempt: int, task_arn: str,
                    started_at: str, expires_at: int | None = None,
                    deadline: str | None = None, waited: bool = False,
                    members: list[tuple[int, int]] | None = None,
                    known: AttemptRecord | None = None) -> bool:
        with self._lock:
            key = (run_id, index, attempt)
            self.tasks[task_arn] = key
            if members:
                self.task_member_lists[task_arn] = list(members)
            record = self.attempt_records.get(key)
            if record is None:
                return False
            if record.status != "LAUNCHING":
                if record.task_arn is None:
                    self.attempt_records[key] = replace(record, task_arn=task_arn)
                return False
            queued_seconds = None
            if record.queued:
                self._leave_queue(record)
                if record.created_at:  # as the DynamoDB store counts a wait
                    queued_seconds = round(max((_moment(started_at) - _moment(
                        record.created_at)).total_seconds(), 0.0), 3)
                    waited = waited or queued_seconds > WAITED_SECONDS
            self.attempt_records[key] = replace(
                record, task_arn=task_arn, status="RUNNING", started_at=started_at,
                launch_lease_until=None, queued=False, deadline=deadline or record.deadline,
                waited=waited, queued_seconds=queued_seconds)
            return True

    def _leave_queue(self, record: AttemptRecord) -> None:
        self._move(record.run_id, "RUNNING", "RUNNING", -1)
        item = self.item_records[(record.run_id, record.index)]
        self.item_records[(record.run_id, record.index)] = replace(item, waiting=None)
        self.queue.pop(attempt_queue_sk(record), None)

    def keep_token(self, run_id: str, index: int, attempt: int, task_token: str) -> bool:
        with self._lock:
            record = self.attempt_records.get((run_id, index, attempt))
            if record is None or not record.is_open:
                return False
            self.attempt_records[(run_id, index, attempt)] = replace(
                record, task_token=task_token)
            return True

    def note_waiting(self, run_id: str, index: int, waiting: dict[str, Any]) -> None:
        with self._lock:
            item = self.item_records.get((run_id, index))
            if item is not None and item.waiting:
                self.item_records[(run_id, index)] = replace(item, waiting=dict(waiting))

    def find_task(self, task_arn: str) -> tuple[str, int, int] | None:
        return self.tasks.get(task_arn)

    def task_members(self, task_arn: str) -> list[tuple[int, int]] | None:
        return self.task_member_lists.get(task_arn)

    def requeue_attempt(self, attempt: AttemptRecord, why: str, now: str,
                        turn: int | None = None) -> bool:
        with self._lock:
            key = (attempt.run_id, attempt.index, attempt.attempt)
            record = self.attempt_records.get(key)
            if (record is None or record.status != "RUNNING" or not record.is_open
                    or record.task_arn != attempt.task_arn):
                return False
            requeued = replace(record, status="LAUNCHING", queued=True, task_arn=None,
                               started_at=None, launch_lease_until=None, slot=None,
                               turn=turn or record.turn)
            self.attempt_records[key] = requeued
            item = self.item_records[key[:2]]
            self.item_records[key[:2]] = replace(
                item, waiting={"why": why, "since": now, "tries": 0})
            self._move(attempt.run_id, "RUNNING", "RUNNING", 1)
            self.queue[attempt_queue_sk(requeued)] = queue_entry(item, requeued)
            return True

    def settle_attempt(self, attempt: AttemptRecord, s: Settlement) -> AttemptRecord | None:
        with self._lock:
            key = (attempt.run_id, attempt.index, attempt.attempt)
            record = self.attempt_records.get(key)
            item = self.item_records.get(key[:2])
            if record is None or not record.is_open or item is None:
                return None
            if item.open_attempt != attempt.attempt or item.status != "RUNNING":
                return None
            if s.item_status is not None and not self._move(
                    attempt.run_id, "RUNNING", s.item_status):
                return None
            if record.queued:
                self._leave_queue(record)
                item = self.item_records[key[:2]]
            if record.slot:
                self.running[record.slot] = self.running.get(record.slot, 0) - 1
            done = settled(record, s)
            self.attempt_records[key] = done
            final = s.item_status is not None
            self.item_records[key[:2]] = replace(
                item, status=s.item_status or item.status, open_attempt=None,
                reason=s.reason if final and s.reason is not None else item.reason,
                log_tail=s.log_tail if final and s.log_tail is not None else item.log_tail,
                outputs=s.outputs if final and s.outputs is not None else item.outputs,
                exit_code=s.exit_code if s.exit_code is not None else item.exit_code,
                on_demand=item.on_demand or s.on_demand)
            return done

    def mark_answered(self, run_id: str, index: int, attempt: int) -> None:
        with self._lock:
            key = (run_id, index, attempt)
            self.attempt_records[key] = replace(self.attempt_records[key], answered=True)

    def settle_item(self, run_id: str, index: int, status: ItemStatus, reason: str,
                    first: ItemRecord | None = None) -> bool:
        with self._lock:
            current = self.item_records.get((run_id, index))
            if current is None:
                if not self._move(run_id, "PENDING", status):
                    return False
                base = first or ItemRecord(run_id, index, status)
                self.item_records[(run_id, index)] = replace(
                    base, run_id=run_id, index=index, status=status, reason=reason,
                    attempts=0, open_attempt=None)
                return True
            if current.status != "RUNNING" or current.open_attempt is not None:
                return False
            if not self._move(run_id, "RUNNING", status):
                return False
            self.item_records[(run_id, index)] = replace(current, status=status, reason=reason)
            return True

    def open_attempts(self, run_id: str | None = None) -> list[AttemptRecord]:
        return [a for k, a in sorted(self.attempt_records.items())
                if a.is_open and (run_id is None or k[0] == run_id)]

    def claim_slot(self, schedule: str, logical_time: str, run_id: str, expires_at: int) -> str:
        with self._lock:
            return self.schedule_slots.setdefault(f"SLOT#{schedule}#{logical_time}", run_id)

    def recent_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        runs = sorted((r for r in self.runs.values() if job is None or r.job == job),
                      key=lambda r: (r.started_at, r.run_id), reverse=True)
        return runs[:limit]

    def partition(self, run_id: str) -> Iterator[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if run_id in self.runs:
            rows.append(asdict(self.runs[run_id]))
        if run_id in self.specs:
            rows.append({"spec": copy.deepcopy(self.specs[run_id])})
        rows += [asdict(i) for i in self.items(run_id)]
        rows += [asdict(a) for a in self.attempts(run_id)]
        return iter(rows)



def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
