"""The launch gate: one queue of attempts waiting to launch, one dispatcher that paces them.

Launch writes the attempt, its item (``waiting``) and a queue entry in one transaction,
wakes the dispatcher and returns: the item's child execution waits on its token, which
costs nothing. The dispatcher (:mod:`fanout.runtime.dispatch`; one at a time: a lease
in the table; reserved concurrency only when configured) drains the queue oldest first at
the rate of a token bucket per capacity type (burst and refill from the config;
fanout.runtime.bucket),
starts each attempt's task under its launch lease and ``clientToken``
(docs/decisions/0002) and takes it out of the queue in the same write as its ARN
(:func:`launch_entry`, here). Each worker takes its permit right before its RunTask, so
the calls reach Fargate at the pace the bucket gives permits. A throttle halves the
bucket's rate, which climbs back (AIMD); a capacity refusal blocks the capacity type for a
backoff that doubles up to 15 s. No deadline: an item waits until it launches or its run
ends. docs/decisions/0006.

The gate's records are reached through :class:`~fanout.records.gate_store.GateStore`, the
attempts and items through :class:`~fanout.records.store.RecordsStore`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from fanout.aws.ecs import LaunchError, LaunchRequest, TaskLauncher, client_token
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.config import LaunchBucket
from fanout.outputs import is_s3, output_location
from fanout.policy import Capacity
from fanout.records.gate_store import GateStore, QueueEntry
from fanout.records.model import AttemptRecord, RunRecord, Settlement
from fanout.records.store import RecordsStore
from fanout.runtime import errors
from fanout.runtime.bucket import AIMD_FLOOR, PERMIT_WAITED, Bucket
from fanout.runtime.classify import Decision, StopClass
from fanout.runtime.clock import Clock, iso, later, utcnow
from fanout.runtime.leftovers import stop_if_run_ended
from fanout.runtime.packing import batch_key, batch_location, packing_of, write_batch
from fanout.runtime.settle import answer, final_stop, settle
from fanout.schema import TASK_ENV_ATTEMPT, TASK_ENV_ITEM_INDEX, TASK_ENV_OUTPUT, TASK_ENV_RUN_ID
from fanout.settings import LaunchEnv

__all__ = ["CAPACITY_TYPES", "LAUNCH_LEASE_SECONDS", "Gate", "Outcome", "QueueEntry",
           "launch_entry"]

CAPACITY_TYPES = ("FARGATE", "FARGATE_SPOT")
#: How long one Launch or dispatcher owns the right to call RunTask for an attempt.
LAUNCH_LEASE_SECONDS = 120
#: Queue entries read per query.
PAGE = 100


class Outcome(StrEnum):
    """What became of one queue entry handed to a worker (:func:`launch_entry`)."""

    #: Its task started (or one an earlier dispatcher started was adopted).
    LAUNCHED = "launched"
    #: RunTask was throttled: the entry waits at the head of the queue, the rate halves.
    THROTTLED = "throttled"
    #: RunTask was refused for capacity: the capacity type backs off.
    NO_CAPACITY = "capacity"
    #: Its job has ``max_running`` tasks running: other jobs' entries go first.
    CAPPED = "capped"
    #: Another holds the attempt's launch lease, or no permit came in time: it stays queued.
    BUSY = "busy"
    #: Nothing to launch: no longer queued, its run ended, or refused for good (FAILED).
    GONE = "gone"


class Gate:
    """The dispatcher's lease, the queue and the buckets (records of a
    :class:`GateStore`), and how the dispatcher is woken (an asynchronous invocation)."""

    def __init__(self, store: GateStore, dispatcher: str,
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
        return self.store.queue_entries(capacity, limit)

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
        output=output_location(env.fanout_outputs, run.run_id, attempt.index),
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


def fail_for_good(store: RecordsStore, callbacks: TaskCallbacks, attempt: AttemptRecord,
                  reason: str, clock: Clock) -> None:
    """RunTask refused the attempt for good (a bad task definition...): the item FAILS."""
    owed = {"outcome": "fail", "error": errors.LaunchFailed.__name__, "cause": reason[:1000]}
    settlement = Settlement(status="FAILED", item_status="FAILED",
                            stop_class=StopClass.START_FAILURE.value + ":launch_refused",
                            stopped_at=iso(clock()), answer=owed,
                            stopped_reason=reason[:1000])
    done = store.settle_attempt(attempt, settlement)
    if done is not None:
        answer(store, callbacks, done)


def job_of(runs: Runs, entry: QueueEntry) -> str | None:
    run = runs.get(entry.run_id)
    return run.job if run is not None else None


@dataclass
class Runs:
    """Run records read by the dispatcher, each kept for a moment (one read per run, not
    one per item)."""

    store: RecordsStore
    seconds: float = 2.0
    cache: dict[str, tuple[float, RunRecord | None]] = field(default_factory=dict)
    now: Callable[[], float] = time.monotonic

    def get(self, run_id: str) -> RunRecord | None:
        now = self.now()
        hit = self.cache.get(run_id)
        if hit is None or now - hit[0] > self.seconds:
            hit = (now, self.store.get_run(run_id, totals=False))
            self.cache[run_id] = hit
        return hit[1]


def launch_entry(entry: QueueEntry, *, env: LaunchEnv, store: RecordsStore, gate: Gate,
                 launcher: TaskLauncher, callbacks: TaskCallbacks, runs: Runs,
                 waited: bool = False, max_running: dict[str, int] | None = None,
                 permit: Callable[[], float | None] | None = None,
                 clock: Clock = utcnow) -> Outcome:
    """Start one queued attempt's task; says what became of the entry.

    ``waited``: the attempt was refused before; the attempt record keeps it, as it keeps
    a wait for ``permit`` (the bucket's, taken right before RunTask: seconds waited, or
    None when none came in time and the entry goes back to the queue)."""
    now = clock()
    # The claim is the first call: its answer is the attempt (no read before it).
    claimed, attempt = store.claim_launch(entry.run_id, entry.index, entry.attempt, iso(now),
                                          later(now, LAUNCH_LEASE_SECONDS))
    if attempt is None or not attempt.is_open or not attempt.queued or attempt.task_arn:
        gate.drop(entry.sk)
        return Outcome.GONE
    if not claimed:  # another launcher holds its lease
        return Outcome.BUSY
    run = runs.get(entry.run_id)
    if run is None or run.status != "RUNNING":
        reason = f"run is {run.status if run else 'gone'}"
        if run is not None:
            settle(store, callbacks, run, attempt, final_stop(StopClass.ABORTED, reason),
                   stopped_at=iso(clock()),
                   decision=Decision("fail", "ABORTED", errors.ITEM_ABORTED, reason))
        gate.drop(entry.sk)
        return Outcome.GONE
    item = store.get_item(run.run_id, attempt.index)
    limit = (max_running or {}).get(run.job)
    if limit and not attempt.slot:
        if not gate.store.take_slot(attempt, run.job, limit):
            store.release_launch(run.run_id, attempt.index, attempt.attempt)
            _note(store, attempt, item, f"job {run.job} has {limit} tasks running (max_running)",
                  now, tried=False)
            return Outcome.CAPPED
        attempt = replace(attempt, slot=run.job)
    # A lease that ran out: an earlier call may have started the task. RunTask with the
    # attempt's clientToken returns that task rather than a second one (docs/decisions/0002).
    arn: str | None = None
    request = launch_request(env, run, attempt, item.command if item else [],
                             item.environment if item else {})
    if request is None:
        fail_for_good(store, callbacks, attempt,
                      f"job {run.job} has no task definition in this deployment", clock)
        return Outcome.GONE
    if arn is None and permit is not None:
        waited_for = permit()
        if waited_for is None:  # no permit in time: back to the queue as it was
            if attempt.slot:
                gate.store.give_slot(attempt, attempt.slot)
            store.release_launch(run.run_id, attempt.index, attempt.attempt)
            return Outcome.BUSY
        waited = waited or waited_for > PERMIT_WAITED
    if arn is None:
        try:
            arn = run_task(request, run, launcher)
        except LaunchError as exc:
            if exc.kind not in ("throttled", "capacity"):
                fail_for_good(store, callbacks, attempt, str(exc), clock)
                return Outcome.GONE
            if attempt.slot:
                gate.store.give_slot(attempt, attempt.slot)
            store.release_launch(run.run_id, attempt.index, attempt.attempt)
            # The reason from fanout.aws.launch_errors: "vCPU quota", "capacity unavailable"...
            _note(store, attempt, item, exc.reason, now, tried=True)
            return Outcome.NO_CAPACITY if exc.kind == "capacity" else Outcome.THROTTLED
    timeout = int(run.settings.get("timeout_seconds", 3600))
    waited = waited or bool(((item.waiting if item else None) or {}).get("tries"))
    started = clock()
    store.attach_task(run.run_id, attempt.index, attempt.attempt, arn, iso(started),
                      expires_at=run.expires_at, deadline=later(started, timeout),
                      waited=waited, known=attempt)
    stop_if_run_ended(store, launcher, run.run_id, arn)  # the run stopped as RunTask ran
    return Outcome.LAUNCHED


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


# --- a packed task: many queued attempts, one RunTask (docs/decisions/0020) ------------------

#: The packed task's bound past its items' timeouts: it only catches a hung runner.
PACKED_DEADLINE_GRACE_SECONDS = 60


def packs(env: LaunchEnv, run: RunRecord | None) -> bool:
    """Whether the run's items go into packed tasks: its ``items_per_task`` is above 1 and
    the runner reaches the task. Locally the batch runner (fanout.local.packed) is the
    task's process; on AWS (outputs rooted in S3) only a job with a ``<job>-packed`` task
    definition (docs/decisions/0021) packs, others keep one item per task."""
    if packing_of(run)[0] <= 1:
        return False
    if not is_s3(env.fanout_outputs):
        return True
    job = env.fanout_task_definitions.get(run.job) if run is not None else None
    return job is not None and job.packed_task_definition is not None


def launch_batch(entries: list[QueueEntry], *, env: LaunchEnv, store: RecordsStore, gate: Gate,
                 launcher: TaskLauncher, callbacks: TaskCallbacks, runs: Runs,
                 waited: bool = False, max_running: dict[str, int] | None = None,
                 permit: Callable[[], float | None] | None = None,
                 clock: Clock = utcnow) -> Outcome:
    """Start one packed task for queued attempts of one batch of a run (one capacity type):
    one permit, one RunTask; every attempt it carries gets its ARN. Attempts another
    launcher holds stay queued; those over the job's ``max_running`` wait."""
    run = runs.get(entries[0].run_id)
    if run is None or run.status != "RUNNING":
        outcomes = [launch_entry(e, env=env, store=store, gate=gate, launcher=launcher,
                                 callbacks=callbacks, runs=runs, clock=clock) for e in entries]
        return Outcome.GONE if Outcome.GONE in outcomes else outcomes[0]
    now = clock()
    members: list[AttemptRecord] = []
    for entry in entries:
        claimed, attempt = store.claim_launch(run.run_id, entry.index, entry.attempt,
                                              iso(now), later(now, LAUNCH_LEASE_SECONDS))
        if attempt is None or not attempt.is_open or not attempt.queued or attempt.task_arn:
            gate.drop(entry.sk)
            continue
        if claimed:
            members.append(attempt)
    if not members:
        return Outcome.BUSY
    members.sort(key=lambda a: a.index)  # the runner runs them in index order
    items = {a.index: store.get_item(run.run_id, a.index) for a in members}
    limit = (max_running or {}).get(run.job)
    if limit:
        slotted = []
        for attempt in members:
            if attempt.slot or gate.store.take_slot(attempt, run.job, limit):
                slotted.append(replace(attempt, slot=attempt.slot or run.job))
            else:
                store.release_launch(run.run_id, attempt.index, attempt.attempt)
                _note(store, attempt, items[attempt.index],
                      f"job {run.job} has {limit} items running (max_running)", now,
                      tried=False)
        members = slotted
        if not members:
            return Outcome.CAPPED
    job = env.fanout_task_definitions.get(run.job)
    if job is None:
        for attempt in members:
            fail_for_good(store, callbacks, attempt,
                          f"job {run.job} has no task definition in this deployment", clock)
        return Outcome.GONE
    _, concurrency = packing_of(run)
    pairs = [(a.index, a.attempt) for a in members]
    key = batch_key(run.run_id, pairs)
    location = batch_location(env.fanout_outputs, run.run_id, key)
    timeout = int(run.settings.get("timeout_seconds", 3600))
    write_batch(location, _batch(run, members, items, env.fanout_outputs, timeout,
                                 concurrency))
    first = members[0]
    on_aws = is_s3(location)
    request = LaunchRequest(
        run_id=run.run_id, index=first.index, attempt=first.attempt,
        # On AWS the job's ``-packed`` task definition; only its agent is overridden.
        task_definition=(job.packed_task_definition or job.task_definition) if on_aws
        else job.task_definition,
        container=(job.agent_container or job.container) if on_aws else job.container,
        command=[], environment={}, capacity=first.capacity,
        client_token=client_token(run.run_id, first.index, first.attempt, f"batch:{key}"),
        subnets=env.subnets, security_groups=env.security_groups,
        assign_public_ip=env.fanout_assign_public_ip, batch=key,
        batch_location=location, concurrency=concurrency)

    def back_to_queue() -> None:
        for attempt in members:
            if attempt.slot:
                gate.store.give_slot(attempt, attempt.slot)
            store.release_launch(run.run_id, attempt.index, attempt.attempt)

    if permit is not None:
        waited_for = permit()
        if waited_for is None:
            back_to_queue()
            return Outcome.BUSY
        waited = waited or waited_for > PERMIT_WAITED
    try:
        arn = run_task(request, run, launcher)
    except LaunchError as exc:
        if exc.kind not in ("throttled", "capacity"):
            for attempt in members:
                fail_for_good(store, callbacks, attempt, str(exc), clock)
            return Outcome.GONE
        back_to_queue()
        for attempt in members:
            _note(store, attempt, items[attempt.index], exc.reason, now, tried=True)
        return Outcome.NO_CAPACITY if exc.kind == "capacity" else Outcome.THROTTLED
    started = clock()
    rounds = math.ceil(len(members) / concurrency)
    deadline = later(started, rounds * timeout + PACKED_DEADLINE_GRACE_SECONDS)
    for attempt in members:
        item = items[attempt.index]
        store.attach_task(run.run_id, attempt.index, attempt.attempt, arn, iso(started),
                          expires_at=run.expires_at, deadline=deadline,
                          waited=waited or bool(((item.waiting if item else None) or {})
                                                .get("tries")),
                          members=pairs, known=attempt)
    stop_if_run_ended(store, launcher, run.run_id, arn)
    return Outcome.LAUNCHED


def _batch(run: RunRecord, members: list[AttemptRecord], items: dict[int, Any], outputs: str,
           timeout: int, concurrency: int) -> dict[str, Any]:
    """The batch object the packed task's runner reads (locally) or its agent lays out for
    it (AWS, fanout.runtime.packed_agent): each item's command, environment (with the
    variables a task of its own would get), attempt and timeout."""
    entries = []
    for attempt in members:
        item = items[attempt.index]
        output = output_location(outputs, run.run_id, attempt.index)
        if not is_s3(output):
            Path(output).mkdir(parents=True, exist_ok=True)
        entries.append({
            "index": attempt.index, "attempt": attempt.attempt,
            "argv": list(item.command if item else []),
            "environment": {**(item.environment if item else {}),
                            TASK_ENV_RUN_ID: run.run_id, TASK_ENV_ITEM_INDEX: str(attempt.index),
                            TASK_ENV_ATTEMPT: str(attempt.attempt), TASK_ENV_OUTPUT: output},
            "timeout_seconds": timeout})
    return {"run_id": run.run_id, "per_task_concurrency": concurrency, "items": entries}
