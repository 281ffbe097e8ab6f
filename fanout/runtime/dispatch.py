"""The dispatcher: drains the launch queue at the buckets' pace (docs/decisions/0006).

One :class:`Dispatcher` per invocation. It holds the dispatcher's lease, reads each
capacity type's queue oldest first, hands entries to a pool of workers (each runs
:func:`fanout.runtime.gate.launch_entry`, RunTask among it) and reads their
:class:`~fanout.runtime.gate.Outcome`: a throttle halves the bucket's rate, a capacity
refusal blocks the capacity type for a backoff (one probe at a time), a job at its
``max_running`` is skipped a moment. It loops while entries wait; with nothing queued it
gives its lease up and looks once more; when its budget runs out with entries queued it
invokes itself again. Time is a :class:`~fanout.runtime.clock.Timer`, so a test runs an
outage of minutes in fake time.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from enum import StrEnum
from functools import partial
from typing import Any

from fanout.aws.ecs import TaskLauncher
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.records.store import RecordsStore
from fanout.runtime.bucket import Bucket
from fanout.runtime.clock import SystemTimer, Timer
from fanout.runtime.gate import (
    CAPACITY_TYPES,
    PAGE,
    Gate,
    Outcome,
    QueueEntry,
    Runs,
    job_of,
    launch_batch,
    launch_entry,
    packs,
)
from fanout.runtime.packing import batch_number, packing_of
from fanout.settings import DispatchEnv

log = logging.getLogger(__name__)

#: RunTask calls in flight at once (RunTask takes 0.1-0.5 s: 20/s needs several).
WORKERS = 16
#: The dispatcher's lease outlives its budget by this much (seconds).
LEASE_MARGIN_SECONDS = 30
#: Buckets are written back to the table at least this often (seconds).
SAVE_EVERY_SECONDS = 5
#: How long a packed run's batch waits for its other items to be queued (seconds), when
#: its entries do not say how many there are (a run expanded before batch children).
GATHER_SECONDS = 0.5
#: How long a batch child's turn waits for the rest of its items, which its Launch is still
#: queuing (seconds): Launch's timeout, past which no more of them come. A turn whose first
#: task left some behind (a job at its ``max_running``) does not wait again that long.
TURN_SECONDS = 30.0
#: Outcomes after which the entry goes back to the head of its queue.
_AGAIN = (Outcome.THROTTLED, Outcome.NO_CAPACITY, Outcome.BUSY, Outcome.CAPPED)


class Ending(StrEnum):
    """How one dispatcher invocation ended (the ``result`` of its answer)."""

    #: Another dispatcher holds the lease: this one launched nothing.
    LEASE_HELD = "another dispatcher holds the lease"
    #: Nothing is queued any more.
    DRAINED = "drained"
    #: The budget ran out with entries queued: the dispatcher invoked itself again.
    AGAIN = "again"


def _threads(workers: int) -> Executor:
    return ThreadPoolExecutor(workers, thread_name_prefix="dispatch")


class Dispatcher:
    """One dispatcher invocation: :meth:`run` drains the queue for up to its budget."""

    def __init__(self, *, env: DispatchEnv, store: RecordsStore, gate: Gate,
                 launcher: TaskLauncher, callbacks: TaskCallbacks,
                 timer: Timer | None = None, workers: int | None = None,
                 pool: Callable[[int], Executor] = _threads) -> None:
        self.env, self.store, self.gate = env, store, gate
        self.launcher, self.callbacks = launcher, callbacks
        self.timer: Timer = timer or SystemTimer()
        self.workers = WORKERS if workers is None else workers
        self.pool = pool
        self.counts = dict.fromkeys(Outcome, 0)
        self.runs = Runs(store, now=self.timer.monotonic)
        self.buckets: dict[str, Bucket] = {}
        self.buffers: dict[str, deque[QueueEntry]] = {c: deque() for c in CAPACITY_TYPES}
        self.inflight: dict[str, tuple[QueueEntry, Future[Outcome]]] = {}
        #: job -> until when it is known to be at its max_running (looked at again after).
        self.capped: dict[str, float] = {}
        #: capacity type -> until when its empty queue is not read again.
        self.quiet_until = dict.fromkeys(CAPACITY_TYPES, 0.0)
        #: Entries that waited for their turn (the bucket ran dry) or were refused.
        self.held: set[str] = set()
        #: A packed task's entries but its first (in ``inflight``) -> (entry, first's sk).
        self.riders: dict[str, tuple[QueueEntry, str]] = {}
        #: (capacity type, run, batch) -> when its first queued item was seen (packed runs).
        self.gathering: dict[tuple[str, str, int], float] = {}
        #: (capacity type, run, batch) -> when a task of its turn was launched short.
        self.short: dict[tuple[str, str, int], float] = {}
        #: capacity type -> queue entries read at once: more than a page once a batch's turn
        #: holds more items than one (K above 100).
        self.page = dict.fromkeys(CAPACITY_TYPES, PAGE)

    def run(self, budget_seconds: float) -> dict[str, Any]:
        """Drain the launch queue at the buckets' pace for up to ``budget_seconds``; returns
        how it ended (``result``) and how many entries had each outcome."""
        owner = uuid.uuid4().hex
        if not self.gate.acquire(owner, budget_seconds + LEASE_MARGIN_SECONDS):
            return {"result": Ending.LEASE_HELD.value}
        try:
            ending = self._drain(owner, budget_seconds)
        finally:
            self.gate.release(owner)
        return {"result": ending.value, **{o.value: n for o, n in self.counts.items()}}

    def _drain(self, owner: str, budget_seconds: float) -> Ending:
        timer, gate = self.timer, self.gate
        config = self.env.fanout_launch_gate
        self.buckets = {c: gate.load(c, config.bucket(c)) for c in CAPACITY_TYPES}
        deadline = timer.monotonic() + budget_seconds
        saved_at = timer.monotonic()
        more = False
        with self.pool(self.workers) as pool:
            while True:
                now = timer.monotonic()
                self._collect(now, timer.time())
                if now >= deadline:
                    more = True
                    break
                pause = min([1.0, *(self._hand_out(c, now, pool) for c in CAPACITY_TYPES)])
                if timer.monotonic() - saved_at > SAVE_EVERY_SECONDS:
                    self._save()
                    saved_at = timer.monotonic()
                if self.inflight:
                    timer.sleep(min(pause, 0.02))
                    continue
                if any(self.buffers.values()) or self.gathering:
                    timer.sleep(max(min(pause, 1.0), 0.005))
                    continue
                # Nothing queued: give the lease up, then look once more (a Launch that saw
                # the lease held did not wake anyone).
                gate.release(owner)
                if not gate.waiting() or not gate.acquire(
                        owner, budget_seconds + LEASE_MARGIN_SECONDS):
                    break
        self._save()
        gate.release(owner)
        if more and gate.waiting():
            gate.invoke()
        return Ending.AGAIN if more else Ending.DRAINED

    def _collect(self, now: float, wall: float) -> None:
        """Read the outcomes of the workers that finished."""
        for sk, (entry, future) in list(self.inflight.items()):
            if not future.done():
                continue
            del self.inflight[sk]
            riders = [mate for mate, lead in self.riders.values() if lead == sk]
            for mate in riders:
                del self.riders[mate.sk]
            try:
                outcome = future.result()
            except Exception:  # a transient error (DynamoDB, ECS): try the entry again
                log.exception("launch of %s failed; it stays queued", sk)
                outcome = Outcome.BUSY
            if outcome in _AGAIN:  # a packed task's other items wait with it
                self.buffers[entry.capacity].extendleft(reversed(riders))
            elif outcome is Outcome.LAUNCHED and entry.turn:
                # Its turn may have left items behind (max_running): not waited for long.
                self.short[self._batch_of(entry)] = now
            self.counts[outcome] += 1
            bucket = self.buckets[entry.capacity]
            with bucket.lock:
                if outcome is Outcome.LAUNCHED:
                    bucket.launched()
                elif outcome is Outcome.THROTTLED:
                    bucket.throttled()
                elif outcome is Outcome.NO_CAPACITY:
                    bucket.refused(wall)
            if outcome is Outcome.CAPPED:
                run = self.runs.get(entry.run_id)
                if run is not None:
                    self.capped[run.job] = now + 1.0
            if outcome in _AGAIN:
                self.buffers[entry.capacity].appendleft(entry)
                self.held.add(sk)

    def _hand_out(self, capacity: str, now: float, pool: Executor) -> float:
        """Give the capacity type's next entries to free workers, reading its queue when
        its buffer is empty; returns how long the loop may pause for it (seconds)."""
        buffer, bucket, inflight = self.buffers[capacity], self.buckets[capacity], self.inflight
        pause = 1.0
        if not buffer and now >= self.quiet_until[capacity]:
            buffer.extend(e for e in self.gate.entries(capacity, self.page[capacity])
                          if e.sk not in inflight and e.sk not in self.riders)
            # An empty queue is looked at again a moment later, not on every turn.
            self.quiet_until[capacity] = now + (0.0 if buffer else 0.25)
            if self.gathering:  # batches whose items all left the queue are not waited for
                present = {self._batch_of(e) for e in buffer}
                for key in [k for k in self.gathering if k[0] == capacity and k not in present]:
                    del self.gathering[key]
        skipped: list[QueueEntry] = []
        while buffer and len(inflight) < self.workers:
            if buffer[0].sk in inflight or buffer[0].sk in self.riders:
                buffer.popleft()
                continue
            job = job_of(self.runs, buffer[0])
            if job is not None and self.capped.get(job, 0.0) > now:
                skipped.append(buffer.popleft())  # others' items go first
                continue
            if bucket.backoff and any(e.capacity == capacity for e, _ in inflight.values()):
                self.held.update(e.sk for e in buffer)  # they wait for capacity
                break  # refused for capacity lately: one probe at a time
            if self.timer.time() < bucket.blocked_until:
                pause = min(pause, bucket.blocked_until - self.timer.time())
                self.held.update(e.sk for e in buffer)
                break
            run = self.runs.get(buffer[0].run_id)
            if packs(self.env, run):
                group = self._batch(buffer, now)
                if group is None:  # its batch-mates may still be on their way
                    pause = min(pause, 0.05)
                    self.quiet_until[capacity] = now + 0.05
                    continue
                launch: Callable[..., Outcome] = partial(launch_batch, group)
            else:
                group = [buffer.popleft()]
                launch = partial(launch_entry, group[0])
            entry = group[0]
            future = pool.submit(
                launch, env=self.env, store=self.store, gate=self.gate,
                launcher=self.launcher, callbacks=self.callbacks, runs=self.runs,
                waited=entry.sk in self.held, max_running=self.env.fanout_max_running,
                permit=partial(bucket.acquire, now=self.timer.time, sleep=self.timer.sleep),
                clock=self.timer.utcnow)
            inflight[entry.sk] = (entry, future)
            for mate in group[1:]:
                self.riders[mate.sk] = (mate, entry.sk)
        buffer.extendleft(reversed(skipped))
        if skipped:
            pause = min(pause, max(min(self.capped.values()) - now, 0.05))
        return pause

    def _batch(self, buffer: deque[QueueEntry], now: float) -> list[QueueEntry] | None:
        """The head entry and its batch-mates in the buffer (one packed task's items), out
        of the buffer; None while fewer than its batch's items are queued (those of its
        turn, as the entries say) and the first of them was seen less than
        :data:`TURN_SECONDS` ago (:data:`GATHER_SECONDS` when the entries do not say; they
        are read again then). A batch child's Launch queues its turn's items at once, so
        its task is launched as soon as the turn is all read."""
        head = buffer[0]
        run = self.runs.get(head.run_id)
        k, _ = packing_of(run)
        key = self._batch_of(head)
        group = [e for e in buffer if self._batch_of(e) == key and e.sk not in self.inflight
                 and e.sk not in self.riders][:k]
        # A batch child's Launch (or a stopped task) queued ``turn`` of them together;
        # else the batch's items are queued one by one, each by its own child.
        expected = head.turn or min(k, max(1, (run.total if run else k) - key[2] * k))
        seen = self.gathering.setdefault(key, now)
        for entry in group:
            buffer.remove(entry)
        patience = TURN_SECONDS if head.turn and now - self.short.get(key, -TURN_SECONDS) \
            >= TURN_SECONDS else GATHER_SECONDS
        if len(group) < expected and now - seen < patience:
            # Read the queue again deep enough to hold the whole turn.
            self.page[head.capacity] = max(self.page[head.capacity], expected + PAGE)
            return None
        self.gathering.pop(key, None)
        if len(group) < expected:
            self.short[key] = now
        return group

    def _batch_of(self, entry: QueueEntry) -> tuple[str, str, int]:
        """The packed task an entry goes in: capacity type, run, batch."""
        k, _ = packing_of(self.runs.get(entry.run_id))
        return entry.capacity, entry.run_id, batch_number(entry.index, k)

    def _save(self) -> None:
        for capacity, bucket in self.buckets.items():
            self.gate.save(capacity, bucket)
