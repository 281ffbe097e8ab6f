"""What a user reads of a run, its items and their attempts: the CLI's ``--json`` shapes.

RunView, ItemView, ItemDetail and AttemptView (docs/cli.md, "What --json prints") are
plain JSON dicts built from the records by the functions here; the CLI prints them, the
local records folder stores them (docs/local-records.md) and the dashboard shows them.
An ItemView counts its attempts (``attempt_count``); an ItemDetail also lists them
(``attempts``). Every key is always there; an absent value is null. Timestamps are ISO-8601
UTC with a ``Z``; durations are seconds.

:class:`RunsSource` is the reading (and stopping, rerunning) API over a place where runs
live: :class:`fanout.runs.local.LocalRuns` (a records folder) and
:class:`fanout.runs.stack.StackRuns` (a deployed stack).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from fanout.cost import (
    AttemptUsage,
    RegionPrices,
    TaskSize,
    attempt_compute_usd,
    round_usd,
    task_shares,
)
from fanout.cost import run_cost as _run_cost
from fanout.outputs import output_fields
from fanout.records.model import COUNTED, AttemptRecord, ItemRecord, RunRecord

RunView = dict[str, Any]
ItemView = dict[str, Any]
ItemDetail = dict[str, Any]
AttemptView = dict[str, Any]

ITEM_STATES = ("PENDING", "WAITING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
RUN_STATES = ("RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT", "REJECTED")
FAILED_STATES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
TERMINAL_ITEM_STATES = frozenset({"SUCCEEDED", *FAILED_STATES})


class RunsError(Exception):
    """What a place where runs live refuses: a run it does not have, one that cannot be
    stopped. Each source's own errors are kinds of it."""


class RunsSource(Protocol):
    """Where runs live: the same questions, and the same answers, locally and on AWS."""

    #: ``local`` or ``aws``.
    kind: str

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[RunView]:
        """Newest first."""
        ...
    def get_run(self, run_id: str) -> RunView | None: ...
    def list_items(self, run_id: str, status: str | None = None) -> list[ItemView]: ...
    def get_item(self, run_id: str, index: int) -> ItemDetail | None: ...
    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]:
        """The item's log lines (one attempt's, or every attempt's in order)."""
        ...
    def stop(self, run_id: str) -> None: ...
    def rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None) -> str:
        """A new run over the chosen items of ``run_id``, linked to it: its run id."""
        ...


# --- time -----------------------------------------------------------------------------------


def timestamp(text: str | None) -> str | None:
    """A record's time as the views write it: ``2026-11-29T19:00:00Z`` (or null)."""
    when = _parse(text)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def instant(text: str | None) -> str | None:
    """An attempt's time, to the millisecond (``2026-11-29T19:00:00.250Z``, or null): an
    attempt can last less than a second, and the timeline draws it from these."""
    when = _parse(text)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z" \
        if when else None


def seconds_between(start: str | None, stop: str | None) -> float | None:
    a, b = _parse(start), _parse(stop)
    return round(max(0.0, (b - a).total_seconds()), 3) if a and b else None


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- cost -----------------------------------------------------------------------------------


def task_size(settings: Mapping[str, Any], fallback: TaskSize | None = None) -> TaskSize:
    """The run's task size, as its settings recorded it (else ``fallback``, the job's now)."""
    base = fallback or TaskSize()
    return TaskSize(cpu=int(settings.get("cpu") or base.cpu),
                    memory=int(settings.get("memory") or base.memory),
                    architecture=str(settings.get("architecture") or base.architecture))


def attempt_cost(attempt: AttemptRecord, size: TaskSize, prices: RegionPrices,
                 billed: float | None = None) -> float:
    return round_usd(attempt_compute_usd(
        cpu=size.cpu, memory=size.memory, architecture=size.architecture,
        capacity=attempt.capacity, seconds=_ran_for(attempt), prices=prices, billed=billed))


#: (item index, attempt) -> its share of its packed task's billed seconds.
Shares = Mapping[tuple[int, int], float]


def packed_shares(attempts: Iterable[AttemptRecord]) -> dict[tuple[int, int], float]:
    """Each attempt's share of the billed seconds of a task it shared with other items
    (docs/decisions/0020; ``fanout.cost.task_shares``). The task is taken to have run from
    its first item's start to its last item's stop."""
    by_task: dict[str, list[AttemptRecord]] = {}
    for attempt in attempts:
        if attempt.task_arn and _ran_for(attempt) is not None:
            by_task.setdefault(attempt.task_arn, []).append(attempt)
    shares: dict[tuple[int, int], float] = {}
    for members in by_task.values():
        if len(members) < 2:
            continue
        starts = [a.started_at for a in members if a.started_at]
        stops = [a.stopped_at for a in members if a.stopped_at]
        span = seconds_between(min(starts), max(stops)) if starts and stops else None
        own = {(a.index, a.attempt): float(_ran_for(a) or 0.0) for a in members}
        shares.update(task_shares(span if span is not None else sum(own.values()), own))
    return shares


def _ran_for(attempt: AttemptRecord) -> float | None:
    """The seconds an attempt's task ran (None: it never started a task)."""
    if attempt.task_arn is None:
        return None
    if attempt.duration_seconds is not None:
        return attempt.duration_seconds
    return seconds_between(attempt.started_at, attempt.stopped_at)


def run_cost(run: RunRecord, attempts: Iterable[AttemptRecord], prices: RegionPrices,
             fallback: TaskSize | None = None) -> dict[str, Any]:
    """The run's ``cost`` from its attempts (an estimate: docs/cost.md)."""
    attempts = list(attempts)
    shares = packed_shares(attempts)
    k = int((run.settings.get("packing") or {}).get("items_per_task", 1))
    # A packed run's control plane works per batch, turn and task (docs/decisions/0020): a
    # turn is one Launch of a batch's child, its attempts sharing the child's token.
    packed = ((math.ceil(run.total / k),
               len({(a.batch, a.task_token) for a in attempts if a.batch is not None}),
               len({a.task_arn for a in attempts if a.task_arn})) if k > 1 else None)
    return _run_cost([usage(a, shares) for a in attempts], items=run.total,
                     size=task_size(run.settings, fallback), prices=prices, packed=packed)


def usage(attempt: AttemptRecord, shares: Shares | None = None) -> AttemptUsage:
    """What an attempt's cost depends on (``shares``: of the packed tasks it ran in)."""
    return AttemptUsage(attempt.capacity, _ran_for(attempt),
                        (shares or {}).get((attempt.index, attempt.attempt)))


# --- views ----------------------------------------------------------------------------------


def counts(run: RunRecord) -> dict[str, int]:
    out = dict.fromkeys(ITEM_STATES, 0)
    out["PENDING"] = run.count("PENDING")
    out.update({state: run.count(state) for state in COUNTED})
    out["WAITING"] = run.waiting  # an item waiting for its launch is counted RUNNING
    out["RUNNING"] = max(0, out["RUNNING"] - run.waiting)
    return out


def one_line(text: str | None, limit: int = 300) -> str | None:
    if not text:
        return None
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def run_reason(run: RunRecord) -> str | None:
    """Why a run failed or was rejected, one line (null for any other run)."""
    if run.status == "REJECTED":
        return one_line("; ".join(run.problems) or run.summary or "the spec was rejected")
    if run.status in ("FAILED", "ABORTED", "TIMED_OUT"):
        return one_line(run.summary or run.status.lower().replace("_", " "))
    return None


def run_view(run: RunRecord, *, spec: Any = None, cost: dict[str, Any] | None = None,
             console_url: str | None = None) -> RunView:
    return {
        "run_id": run.run_id, "job": run.job, "status": run.status, "trigger": run.trigger,
        "started_at": timestamp(run.started_at), "finished_at": timestamp(run.finished_at),
        "duration_seconds": seconds_between(run.started_at, run.finished_at),
        "total": run.total, "counts": counts(run), "parent_run_id": run.parent_run,
        "reason": run_reason(run), "cost": cost, "console_url": console_url or None,
        "spec": spec,
    }


def attempt_view(attempt: AttemptRecord, *, size: TaskSize | None = None,
                 prices: RegionPrices | None = None,
                 shares: Shares | None = None) -> AttemptView:
    return {
        "attempt": attempt.attempt, "task_arn": attempt.task_arn,
        "capacity": attempt.capacity, "exit_code": attempt.exit_code,
        "stop_code": attempt.stop_code,
        "reason": attempt.reason or one_line(attempt.stopped_reason),
        "created_at": instant(attempt.created_at), "started_at": instant(attempt.started_at),
        "stopped_at": instant(attempt.stopped_at),
        "duration_seconds": attempt.duration_seconds
        if attempt.duration_seconds is not None
        else seconds_between(attempt.started_at, attempt.stopped_at),
        "log_stream": attempt.log_stream, "status": attempt.status,
        "image_digest": attempt.image_digest,
        "cost_usd": attempt_cost(attempt, size, prices,
                                 (shares or {}).get((attempt.index, attempt.attempt)))
        if size and prices else None,
    }


def waiting_of(item: ItemRecord) -> dict[str, Any] | None:
    """Why a WAITING item waits (``since``, ``tries``, ``why``), when its record says."""
    if not item.waiting:
        return None
    return {"since": timestamp(item.waiting.get("since")), "tries": item.waiting.get("tries"),
            "why": item.waiting.get("why")}


def item_view(item: ItemRecord, attempts: list[AttemptRecord]) -> ItemView:
    """An item and what its attempts add: when it started and ended, why it ended."""
    ordered = sorted(attempts, key=lambda a: a.attempt)
    last = ordered[-1] if ordered else None
    started = next((a.started_at for a in ordered if a.started_at), None)
    finished = None
    if item.status in TERMINAL_ITEM_STATES:
        finished = last.stopped_at if last is not None and last.stopped_at else None
    durations = [a.duration_seconds for a in ordered if a.duration_seconds is not None]
    reason = item.reason
    if reason is None and item.status in FAILED_STATES and last is not None:
        reason = last.reason or one_line(last.stopped_reason)
    tail = item.log_tail
    if tail is None and item.status in FAILED_STATES and last is not None:
        tail = last.log_tail
    return {
        "run_id": item.run_id, "index": item.index, "params": item.params,
        "command": item.command, "environment": item.environment, "status": item.shown_status,
        "attempt_count": item.attempts, "exit_code": item.exit_code,
        "reason": reason if item.status != "SUCCEEDED" else None,
        "log_tail": list(tail or []), "waiting": waiting_of(item),
        "started_at": timestamp(started), "finished_at": timestamp(finished),
        "duration_seconds": round(sum(durations), 3) if durations else None,
        **output_fields(item.outputs),
    }


def item_detail(item: ItemRecord, attempts: list[AttemptRecord], *,
                size: TaskSize | None = None, prices: RegionPrices | None = None,
                shares: Shares | None = None) -> ItemDetail:
    ordered = sorted(attempts, key=lambda a: a.attempt)
    return {**item_view(item, ordered),
            "attempts": [attempt_view(a, size=size, prices=prices, shares=shares)
                         for a in ordered]}


def view_of(detail: ItemDetail) -> ItemView:
    """The ItemView of an ItemDetail: the item without its list of attempts."""
    return {k: v for k, v in detail.items() if k != "attempts"}


def pending_item(run_id: str, index: int) -> ItemRecord:
    """An item with no record yet (not launched): PENDING, its params unknown."""
    return ItemRecord(run_id, index, "PENDING")


def all_items(run: RunRecord, records: Iterable[ItemRecord]) -> list[ItemRecord]:
    """Every item of the run in index order, a PENDING one for each index not yet written."""
    found = {i.index: i for i in records}
    items = [found.get(i) or pending_item(run.run_id, i) for i in range(run.total)]
    return items + [found[i] for i in sorted(found) if i >= run.total]
