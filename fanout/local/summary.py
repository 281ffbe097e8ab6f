"""What a local run reports: progress while it runs, the run summary when it is done."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fanout.records.model import AttemptRecord, ItemRecord


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run in flight."""

    total: int
    succeeded: int
    failed: int
    running: int
    elapsed_seconds: float
    #: Items whose attempt waits in the launch queue (for a launch turn or capacity).
    waiting: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def pending(self) -> int:
        return max(self.total - self.done - self.running - self.waiting, 0)


@dataclass(frozen=True)
class ItemSummary:
    index: int
    params: dict[str, Any]
    status: str
    attempts: int
    exit_code: int | None
    #: The task ARNs the emulated ECS launched for this item, in launch order.
    tasks: list[str] = field(default_factory=list)
    #: Seconds its attempts ran, together (from each task's start to its stop).
    duration_seconds: float | None = None
    #: While it waits for its launch: ``{"why", "since", "tries"}``; else None.
    waiting: dict[str, Any] | None = None
    #: Why the item did not succeed, one line, as its record says ("exit code 3", "timed out
    #: after 5 s", "cannot start: ..."); None for a succeeded item.
    reason: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """The run summary object of the CLI contract (``fanout local --json``)."""

    run_id: str
    job: str
    status: str
    total: int
    succeeded: int
    failed: int
    timed_out: int
    aborted: int
    items: list[ItemSummary]
    #: Where the run's records, logs and this summary were written.
    records: str = ""
    elapsed_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    #: How often each injected fault struck (``--faults``).
    faults: dict[str, int] = field(default_factory=dict)
    #: RunTask as the emulated Fargate saw it: ``run_task_calls``, ``throttled``,
    #: ``capacity_refused``, and ``waits`` (attempts that waited in the launch queue for
    #: their turn or for capacity, or still wait).
    launch: dict[str, int] = field(default_factory=dict)
    #: Items still WAITING when the run ended (0 once every item settled).
    waiting: int = 0
    #: The run's estimated cost (docs/cost.md); null when the run was never recorded.
    cost: dict[str, Any] | None = None
    #: Tasks still running when the run ended that the control plane had not stopped (the
    #: local mode stops them on its way out). Anything but 0 is a bug of the control plane.
    orphans: int = 0
    #: What the spec says that is legal but likely not meant (an axis no template uses).
    warnings: list[str] = field(default_factory=list)
    #: Child executions the run's map started: one per item, or one per batch of a packed
    #: run (docs/decisions/0020); 0 when the run never reached its map.
    child_executions: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for item in out["items"]:
            if item["duration_seconds"] is not None:
                item["duration_seconds"] = round(item["duration_seconds"], 3)
        return out



def item_summaries(records: Iterable[ItemRecord], attempts: Iterable[AttemptRecord],
                   tasks: Mapping[int, list[str]]) -> tuple[list[ItemSummary], int]:
    """One summary per item record (``tasks``: the ARNs launched for each index), and how
    many attempts waited in the launch queue for their turn or for capacity."""
    by_item: dict[int, list[AttemptRecord]] = {}
    for attempt in attempts:
        by_item.setdefault(attempt.index, []).append(attempt)
    items = []
    for item in records:
        durations = [a.duration_seconds for a in by_item.get(item.index, [])
                     if a.duration_seconds is not None]
        items.append(ItemSummary(
            index=item.index, params=item.params, status=item.shown_status,
            attempts=item.attempts, exit_code=item.exit_code,
            tasks=_tasks_of(tasks.get(item.index, []), by_item.get(item.index, [])),
            duration_seconds=sum(durations) if durations else None, waiting=item.waiting,
            reason=item.reason if item.status != "SUCCEEDED" else None,
        ))
    waits = sum(1 for found in by_item.values() for a in found if a.waited or a.queued)
    return items, waits


def _tasks_of(tagged: list[str], attempts: list[AttemptRecord]) -> list[str]:
    """The item's tasks: those the emulated Fargate tagged with it, and any its attempts
    recorded that the tags missed (a task adopted after its launch died), once each."""
    found = list(tagged)
    found += [a.task_arn for a in sorted(attempts, key=lambda a: a.attempt)
              if a.task_arn and a.task_arn not in found]
    return found


def status_of_execution(execution: Mapping[str, Any]) -> str:
    """A run's status from its execution's, when no run record says it."""
    return {"SUCCEEDED": "SUCCEEDED", "ABORTED": "ABORTED", "TIMED_OUT": "TIMED_OUT"}.get(
        str(execution["status"]), "FAILED")
