"""The launch gate: one queue of attempts waiting to launch, one dispatcher that paces them.

Launch writes the attempt, its item (``waiting``) and a queue entry in one transaction,
wakes the dispatcher and returns: the item's child execution waits on its token, which
costs nothing. The dispatcher (one at a time: a lease in the table, reserved concurrency 1
on AWS) drains the queue oldest first at the rate of a token bucket per capacity type
(burst and refill from the config; fanout.runtime.bucket), starts each attempt's task
under its launch lease and ``clientToken`` (docs/decisions/0002) and takes it out of the
queue in the same write as its ARN. Each worker takes its permit right before its RunTask,
so the calls reach Fargate at the pace the bucket gives permits. A throttle halves the
bucket's rate, which climbs back (AIMD); a capacity refusal blocks the capacity type for a
backoff that doubles up to 15 s. No deadline: an item waits until it launches or its run
ends. docs/decisions/0006.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from fanout.aws.ecs import LaunchError, LaunchRequest, TaskLauncher, client_token
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.config import LaunchBucket, LaunchGateConfig
from fanout.policy import Capacity
from fanout.records.dynamo import DynamoRecords
from fanout.records.model import AttemptRecord, RunRecord, Settlement
from fanout.records.store import RecordsStore
from fanout.runtime import errors
from fanout.runtime.bucket import AIMD_FLOOR, PERMIT_WAITED, Bucket
from fanout.runtime.classify import Decision, StopClass
from fanout.runtime.clock import Clock, iso, later, utcnow
from fanout.runtime.leftovers import stop_if_run_ended
from fanout.runtime.settle import answer, final_stop, settle
from fanout.settings import DispatchEnv, LaunchEnv

log = logging.getLogger(__name__)

CAPACITY_TYPES = ("FARGATE", "FARGATE_SPOT")
#: How long one Launch or dispatcher owns the right to call RunTask for an attempt.
LAUNCH_LEASE_SECONDS = 120
#: RunTask calls in flight at once (RunTask takes 0.1-0.5 s: 20/s needs several).
WORKERS = 16
#: Queue entries read per query.
PAGE = 100

@dataclass(frozen=True)
class QueueEntry:
    sk: str
    run_id: str
    index: int
    attempt: int
    capacity: str


class Gate:
    """The dispatcher's lease, the queue and the buckets (records in the table), and how
    the dispatcher is woken (an asynchronous invocation)."""

    def __init__(self, store: DynamoRecords, dispatcher: str,
                 invoke: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self._invoke = invoke

    def wake(self, *, again: bool = False) -> bool:
        """Invoke the dispatcher unless one holds the lease or was woken a moment ago
        (``again``: even then); returns whether this call woke it."""
        if not self.store.claim_wake(again=again):
            return False
        self.invoke()
        return True

    def invoke(self) -> None:
        if self._invoke is not None:
            self._invoke(self.dispatcher)
            return
        from fanout.aws.clients import client

        client("lambda").invoke(FunctionName=self.dispatcher, InvocationType="Event",
                                Payload=b"{}")

    def acquire(self, owner: str, seconds: float) -> bool:
        return self.store.acquire_lease(owner, seconds)

    def release(self, owner: str) -> None:
        self.store.release_lease(owner)

    def entries(self, capacity: str, limit: int = PAGE) -> list[QueueEntry]:
        return [QueueEntry(**e) for e in self.store.queue_entries(capacity, limit)]

    def waiting(self) -> bool:
        return any(self.entries(c, limit=1) for c in CAPACITY_TYPES)

    def drop(self, sk: str) -> None:
        self.store.drop_entry(sk)

    def load(self, capacity: str, config: LaunchBucket) -> Bucket:
        bucket = Bucket(config.burst, config.per_second)
        for name, value in self.store.bucket_state(capacity).items():
            if name in bucket.state():
                setattr(bucket, name, value)
        bucket.current = min(max(bucket.current, config.per_second * AIMD_FLOOR),
                             config.per_second)
        bucket.tokens = min(bucket.tokens, float(config.burst))
        return bucket

    def save(self, capacity: str, bucket: Bucket) -> None:
        self.store.save_bucket(capacity, bucket.state())


# --- one queued attempt --------------------------------------------------------------------


def launch_request(env: LaunchEnv, run: RunRecord, attempt: AttemptRecord,
                   command: list[str], environment: dict[str, str]) -> LaunchRequest | None:
    job = env.fanout_task_definitions.get(run.job)
    if job is None:
        return None
    return LaunchRequest(
        run_id=run.run_id, index=attempt.index, attempt=attempt.attempt,
        task_definition=job.task_definition, container=job.container,
        command=command, environment=environment, capacity=attempt.capacity,
        client_token=attempt.client_token, subnets=env.subnets,
        security_groups=env.security_groups, assign_public_ip=env.fanout_assign_public_ip,
    )


def run_task(request: LaunchRequest, run: RunRecord, launcher: TaskLauncher) -> str:
    """RunTask; under FARGATE_SPOT_THEN_FARGATE a Spot capacity refusal tries on-demand
    at once (with its own client token). Raises :class:`LaunchError`."""
    try:
        return launcher.run_task(request)
    except LaunchError as exc:
        fallback = (request.capacity == "FARGATE_SPOT"
                    and run.settings.get("capacity") == Capacity.FARGATE_SPOT_THEN_FARGATE)
        if exc.kind == "capacity" and fallback:
            return launcher.run_task(replace(request, capacity="FARGATE", client_token=(
                client_token(run.run_id, request.index, request.attempt, "FARGATE"))))
        raise


def fail_for_good(store: RecordsStore, callbacks: TaskCallbacks | None, attempt: AttemptRecord,
                  reason: str, clock: Clock, *, answer_token: bool) -> None:
    """RunTask refused the attempt for good (a bad task definition...): the item FAILS."""
    owed = {"outcome": "fail", "error": errors.LaunchFailed.__name__, "cause": reason[:1000]} \
        if answer_token else {"outcome": "raised"}
    settlement = Settlement(status="FAILED", item_status="FAILED",
                            stop_class=StopClass.START_FAILURE.value + ":launch_refused",
                            stopped_at=iso(clock()), answer=owed,
                            stopped_reason=reason[:1000])
    if store.settle_attempt(attempt, settlement):
        fresh = store.get_attempt(attempt.run_id, attempt.index, attempt.attempt)
        if fresh is not None:
            if answer_token and callbacks is not None:
                answer(store, callbacks, fresh)
            else:  # the raised error is this attempt's answer: none is owed to the token
                store.mark_answered(fresh.run_id, fresh.index, fresh.attempt)


def _job_of(runs: _Runs, entry: QueueEntry) -> str | None:
    run = runs.get(entry.run_id)
    return run.job if run is not None else None


@dataclass
class _Runs:
    """Run records read by the dispatcher, each kept for a moment (one read per run, not
    one per item)."""

    store: RecordsStore
    seconds: float = 2.0
    cache: dict[str, tuple[float, RunRecord | None]] = field(default_factory=dict)

    def get(self, run_id: str) -> RunRecord | None:
        now = time.monotonic()
        hit = self.cache.get(run_id)
        if hit is None or now - hit[0] > self.seconds:
            hit = (now, self.store.get_run(run_id))
            self.cache[run_id] = hit
        return hit[1]


def launch_entry(entry: QueueEntry, *, env: LaunchEnv, store: RecordsStore, gate: Gate,
                 launcher: TaskLauncher, callbacks: TaskCallbacks, runs: _Runs,
                 waited: bool = False, max_running: dict[str, int] | None = None,
                 permit: Callable[[], float | None] | None = None,
                 clock: Clock = utcnow) -> str:
    """Start one queued attempt's task. Returns launched, throttled, capacity, capped (its
    job has ``max_running`` tasks running), busy or gone.

    ``waited``: the attempt was refused before; the attempt record keeps it, as it keeps
    a wait for ``permit`` (the bucket's, taken right before RunTask: seconds waited, or
    None when none came in time and the entry goes back to the queue)."""
    attempt = store.get_attempt(entry.run_id, entry.index, entry.attempt)
    if attempt is None or not attempt.is_open or not attempt.queued or attempt.task_arn:
        gate.drop(entry.sk)
        return "gone"
    run = runs.get(entry.run_id)
    if run is None or run.status != "RUNNING":
        reason = f"run is {run.status if run else 'gone'}"
        if run is not None:
            settle(store, callbacks, run, attempt, final_stop(StopClass.ABORTED, reason),
                   stopped_at=iso(clock()),
                   decision=Decision("fail", "ABORTED", errors.ITEM_ABORTED, reason))
        gate.drop(entry.sk)
        return "gone"
    now = clock()
    if not store.claim_launch(run.run_id, attempt.index, attempt.attempt, attempt.task_token,
                              iso(now), later(now, LAUNCH_LEASE_SECONDS)):
        return "busy"
    item = store.get_item(run.run_id, attempt.index)
    limit = (max_running or {}).get(run.job)
    if limit and not attempt.slot:
        if not gate.store.take_slot(attempt, run.job, limit):
            store.release_launch(run.run_id, attempt.index, attempt.attempt)
            _note(store, attempt, item, f"job {run.job} has {limit} tasks running (max_running)",
                  now, tried=False)
            return "capped"
        attempt = replace(attempt, slot=run.job)
    # A lease that ran out: an earlier call may have started the task. Look first.
    arn = launcher.find_task(run.run_id, attempt.index, attempt.attempt) \
        if attempt.launch_lease_until is not None else None
    request = launch_request(env, run, attempt, item.command if item else [],
                             item.environment if item else {})
    if request is None:
        fail_for_good(store, callbacks, attempt,
                      f"job {run.job} has no task definition in this deployment", clock,
                      answer_token=True)
        return "gone"
    if arn is None and permit is not None:
        waited_for = permit()
        if waited_for is None:  # no permit in time: back to the queue as it was
            if attempt.slot:
                gate.store.give_slot(attempt, attempt.slot)
            store.release_launch(run.run_id, attempt.index, attempt.attempt)
            return "busy"
        waited = waited or waited_for > PERMIT_WAITED
    if arn is None:
        try:
            arn = run_task(request, run, launcher)
        except LaunchError as exc:
            if exc.kind not in ("throttled", "capacity"):
                fail_for_good(store, callbacks, attempt, str(exc), clock, answer_token=True)
                return "gone"
            if attempt.slot:
                gate.store.give_slot(attempt, attempt.slot)
            store.release_launch(run.run_id, attempt.index, attempt.attempt)
            why = "capacity unavailable" if exc.kind == "capacity" else "launch throttled"
            _note(store, attempt, item, why, now, tried=True)
            return exc.kind
    timeout = int(run.settings.get("timeout_seconds", 3600))
    waited = waited or bool(((item.waiting if item else None) or {}).get("tries"))
    started = clock()
    store.attach_task(run.run_id, attempt.index, attempt.attempt, arn, iso(started),
                      expires_at=run.expires_at, deadline=later(started, timeout),
                      waited=waited)
    stop_if_run_ended(store, launcher, run.run_id, arn)  # the run stopped as RunTask ran
    return "launched"


def _note(store: RecordsStore, attempt: AttemptRecord, item: Any, why: str, now: Any, *,
          tried: bool) -> None:
    """The item's ``waiting``: why, since when (this reason), and RunTask calls refused."""
    before = (item.waiting if item else None) or {}
    same = before.get("why") == why
    if same and not tried:
        return
    store.note_waiting(attempt.run_id, attempt.index, {
        "why": why, "since": before.get("since") if same else iso(now),
        "tries": int(before.get("tries", 0)) + (1 if tried else 0)})


# --- the dispatcher ------------------------------------------------------------------------


def dispatch(*, env: DispatchEnv, store: RecordsStore, gate: Gate, launcher: TaskLauncher,
             callbacks: TaskCallbacks, budget_seconds: float, clock: Clock = utcnow,
             sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Drain the launch queue at the buckets' pace for up to ``budget_seconds``.

    Returns what happened. When the budget runs out with items still queued, the
    dispatcher invokes itself again (after giving up its lease).
    """
    owner = uuid.uuid4().hex
    if not gate.acquire(owner, budget_seconds + 30):
        return {"result": "another dispatcher holds the lease"}
    try:
        return _drain(owner, env=env, store=store, gate=gate, launcher=launcher,
                      callbacks=callbacks, budget_seconds=budget_seconds, clock=clock,
                      sleep=sleep)
    finally:
        gate.release(owner)


def _drain(owner: str, *, env: DispatchEnv, store: RecordsStore, gate: Gate,
           launcher: TaskLauncher, callbacks: TaskCallbacks, budget_seconds: float,
           clock: Clock, sleep: Callable[[float], None]) -> dict[str, Any]:
    config: LaunchGateConfig = env.fanout_launch_gate
    buckets = {c: gate.load(c, config.bucket(c)) for c in CAPACITY_TYPES}
    buffers: dict[str, deque[QueueEntry]] = {c: deque() for c in CAPACITY_TYPES}
    inflight: dict[str, tuple[QueueEntry, Future[str]]] = {}
    counts = {"launched": 0, "throttled": 0, "capacity": 0, "capped": 0, "busy": 0, "gone": 0}
    #: job -> until when it is known to be at its max_running (looked at again after).
    capped: dict[str, float] = {}
    runs = _Runs(store)
    deadline = time.monotonic() + budget_seconds
    saved_at = time.monotonic()
    quiet_until = dict.fromkeys(CAPACITY_TYPES, 0.0)
    #: Entries that waited for their turn (the bucket ran dry) or were refused.
    held: set[str] = set()
    more = False
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="dispatch") as pool:
        while True:
            now = time.monotonic()
            wall = time.time()
            for sk, (entry, future) in list(inflight.items()):
                if not future.done():
                    continue
                del inflight[sk]
                try:
                    outcome = future.result()
                except Exception:  # a transient error (DynamoDB, ECS): try the entry again
                    log.exception("launch of %s failed; it stays queued", sk)
                    outcome = "busy"
                counts[outcome] += 1
                bucket = buckets[entry.capacity]
                with bucket.lock:
                    if outcome == "launched":
                        bucket.launched()
                    elif outcome == "throttled":
                        bucket.throttled()
                    elif outcome == "capacity":
                        bucket.refused(wall)
                if outcome == "capped":
                    run = runs.get(entry.run_id)
                    if run is not None:
                        capped[run.job] = now + 1.0
                if outcome in ("throttled", "capacity", "busy", "capped"):
                    buffers[entry.capacity].appendleft(entry)
                    held.add(sk)
            if now >= deadline:
                more = True
                break
            pause = 1.0
            for capacity in CAPACITY_TYPES:
                buffer, bucket = buffers[capacity], buckets[capacity]
                if not buffer and now >= quiet_until[capacity]:
                    buffer.extend(e for e in gate.entries(capacity) if e.sk not in inflight)
                    # An empty queue is looked at again a moment later, not on every turn.
                    quiet_until[capacity] = now + (0.0 if buffer else 0.25)
                skipped: list[QueueEntry] = []
                while buffer and len(inflight) < WORKERS:
                    if buffer[0].sk in inflight:
                        buffer.popleft()
                        continue
                    job = _job_of(runs, buffer[0])
                    if job is not None and capped.get(job, 0.0) > now:
                        skipped.append(buffer.popleft())  # others' items go first
                        continue
                    if bucket.backoff and any(e.capacity == capacity
                                              for e, _ in inflight.values()):
                        held.update(e.sk for e in buffer)  # they wait for capacity
                        break  # refused for capacity lately: one probe at a time
                    if time.time() < bucket.blocked_until:
                        pause = min(pause, bucket.blocked_until - time.time())
                        held.update(e.sk for e in buffer)
                        break
                    entry = buffer.popleft()
                    inflight[entry.sk] = (entry, pool.submit(
                        launch_entry, entry, env=env, store=store, gate=gate,
                        launcher=launcher, callbacks=callbacks, runs=runs,
                        waited=entry.sk in held, max_running=env.fanout_max_running,
                        permit=bucket.acquire, clock=clock))
                buffer.extendleft(reversed(skipped))
                if skipped:
                    pause = min(pause, max(min(capped.values()) - now, 0.05))
            if time.monotonic() - saved_at > 5:
                for capacity, bucket in buckets.items():
                    gate.save(capacity, bucket)
                saved_at = time.monotonic()
            if inflight:
                sleep(min(pause, 0.02))
                continue
            if any(buffers.values()):
                sleep(max(min(pause, 1.0), 0.005))
                continue
            # Nothing queued: give the lease up, then look once more (a Launch that saw
            # the lease held did not wake anyone).
            gate.release(owner)
            if not gate.waiting() or not gate.acquire(owner, budget_seconds + 30):
                break
    for capacity, bucket in buckets.items():
        gate.save(capacity, bucket)
    gate.release(owner)
    if more and gate.waiting():
        gate.invoke()
    return {"result": "again" if more else "drained", **counts}
