"""What a run leaves behind: the run, item and attempt records, and how an attempt ended.

Statuses: a run is RUNNING until Finalize (or Abort) closes it; an item moves
PENDING -> RUNNING -> one of :data:`TERMINAL`. Every record carries ``expires_at`` (TTL)
from its first write. Where the records are kept is :mod:`fanout.records.store`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

RunStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT", "REJECTED"]
ItemStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
TERMINAL: tuple[ItemStatus, ...] = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: Run counters, by item status (``pending`` is ``total`` minus the others).
COUNTED: tuple[ItemStatus, ...] = ("RUNNING", *TERMINAL)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    job: str
    status: RunStatus
    started_at: str
    total: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    trigger: str = "console"
    logical_time: str = ""
    execution_arn: str = ""
    parent_run: str | None = None
    finished_at: str | None = None
    summary: str | None = None
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: TTL (epoch seconds), from the first write: the end of the run's life + record_ttl_days.
    expires_at: int | None = None
    #: Items whose attempt waits in the launch queue (counted among RUNNING).
    waiting: int = 0
    #: The run's ending was published (once per run: a retry does not publish again).
    notified: bool = False

    def count(self, status: ItemStatus) -> int:
        if status == "PENDING":
            return self.total - sum(self.counts.get(s, 0) for s in COUNTED)
        return self.counts.get(status, 0)

    def totals(self) -> dict[str, int]:
        """``total`` and one count per item status, lower case (what users read)."""
        out = {"total": self.total, "pending": self.count("PENDING")}
        out.update({s.lower(): self.count(s) for s in COUNTED})
        out["running"] -= self.waiting
        out["waiting"] = self.waiting
        return out


@dataclass(frozen=True)
class ItemRecord:
    run_id: str
    index: int
    status: ItemStatus
    params: dict[str, Any] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    #: Attempts started so far; the last one is open while ``open_attempt`` is set.
    attempts: int = 0
    open_attempt: int | None = None
    exit_code: int | None = None
    #: Launch the next attempt on on-demand Fargate (after a Spot interruption).
    on_demand: bool = False
    #: Why the item ended, one line in a user's words (its last attempt's reason).
    reason: str | None = None
    #: The last lines of its last attempt's log (failed items only).
    log_tail: list[str] | None = None
    expires_at: int | None = None
    #: While its attempt waits in the launch queue: ``{"why", "since", "tries"}``.
    waiting: dict[str, Any] | None = None
    #: What its last attempt wrote to ``FANOUT_OUTPUT``, listed when it ended
    #: (:meth:`fanout.outputs.OutputsListing.to_json`: location, entries, count, bytes).
    outputs: dict[str, Any] | None = None

    @property
    def shown_status(self) -> str:
        """The status users read: WAITING while the open attempt waits for its launch."""
        return "WAITING" if self.status == "RUNNING" and self.waiting else self.status


@dataclass(frozen=True)
class AttemptRecord:
    run_id: str
    index: int
    attempt: int
    client_token: str
    task_token: str
    status: str = "LAUNCHING"  # LAUNCHING, RUNNING, then the class's item status or RETRY
    capacity: str = "FARGATE"
    created_at: str = ""
    deadline: str = ""
    task_arn: str | None = None
    launch_lease_until: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    log_stream: str | None = None
    #: The image the attempt's container ran (``sha256:...``), as ECS reported it.
    image_digest: str | None = None
    stop_class: str | None = None
    #: How the attempt ended in a user's words ("exit code 3", "Spot interruption").
    reason: str | None = None
    #: The last lines (at most 20, 4 KB) of its log, for an attempt that did not succeed.
    log_tail: list[str] | None = None
    event_version: int | None = None
    #: The answer owed to the state machine, kept until it is given (heals a crash).
    answer: dict[str, Any] | None = None
    answered: bool = False
    expires_at: int | None = None
    #: Set while the attempt waits in the launch queue (the dispatcher starts its task).
    queued: bool = False
    #: Seconds the attempt waited in the launch queue before its task started.
    queued_seconds: float | None = None
    #: The attempt waited for its launch turn or for capacity (not only for the dispatcher).
    waited: bool = False
    #: The job whose ``max_running`` slot the attempt holds (from before RunTask until it
    #: settles); None when its job has no cap.
    slot: str | None = None
    #: The batch whose child execution launched it (a packed run's batched manifest,
    #: docs/decisions/0020): its token is the child's, shared by the batch's items and
    #: answered once, when none of them has an attempt open (fanout.runtime.settle).
    batch: int | None = None
    #: How many of its batch's attempts were queued with it (by one Launch, or back from
    #: one stopped task): the dispatcher launches them as one task once it sees them all.
    turn: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("LAUNCHING", "RUNNING")


@dataclass(frozen=True)
class Settlement:
    """How an attempt ended and what happens to its item."""

    status: str  # the attempt's final status: an item status, or RETRY
    item_status: ItemStatus | None  # None: the item stays RUNNING for another attempt
    stop_class: str
    stopped_at: str
    answer: dict[str, Any]
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: str | None = None
    duration_seconds: float | None = None
    log_stream: str | None = None
    event_version: int | None = None
    on_demand: bool = False
    reason: str | None = None
    log_tail: list[str] | None = None
    image_digest: str | None = None
    #: What the item wrote (a final settlement only; see :attr:`ItemRecord.outputs`).
    outputs: dict[str, Any] | None = None


def settled(attempt: AttemptRecord, s: Settlement) -> AttemptRecord:
    """The attempt as its settlement leaves it: what the records store writes, field by
    field (a field the settlement leaves out keeps its value), so a settlement that won
    need not be read back. ``tests/integration/test_records_store.py`` holds each store's
    record to it."""
    def kept(new: Any, old: Any) -> Any:
        return old if new is None else new

    return replace(
        attempt, status=s.status, stop_class=s.stop_class, stopped_at=s.stopped_at,
        answer=s.answer, answered=False, queued=False, slot=None,
        exit_code=kept(s.exit_code, attempt.exit_code),
        stop_code=kept(s.stop_code, attempt.stop_code),
        stopped_reason=kept(s.stopped_reason, attempt.stopped_reason),
        started_at=kept(s.started_at, attempt.started_at),
        duration_seconds=kept(s.duration_seconds, attempt.duration_seconds),
        log_stream=kept(s.log_stream, attempt.log_stream),
        event_version=kept(s.event_version, attempt.event_version),
        reason=kept(s.reason, attempt.reason),
        image_digest=kept(s.image_digest, attempt.image_digest),
        log_tail=kept(s.log_tail, attempt.log_tail))
