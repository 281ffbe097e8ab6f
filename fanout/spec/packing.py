"""How a run's items are packed into Fargate tasks (docs/decisions/0020). Pure.

A run with ``items_per_task`` K carries its items in tasks of up to K, each running up to
``per_task_concurrency`` of them at once. ``"auto"`` picks K from the item count, the
run's concurrency and the launch bucket: the smallest K of :data:`LADDER` whose tasks
launch within :data:`LAUNCH_SPAN_TARGET_SECONDS` at the bucket's steady rate, never more
items per task than each of the run's task slots gets (packing must not leave slots idle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fanout.policy import MAX_ITEMS_PER_TASK

#: The values ``"auto"`` chooses among, smallest first (round numbers a person can read).
LADDER = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: ``"auto"`` keeps the launch of every task of a run within this many seconds.
LAUNCH_SPAN_TARGET_SECONDS = 600.0


def launch_span_seconds(tasks: int, burst: int, per_second: float) -> float:
    """How long launching ``tasks`` takes from a full bucket: the burst at once, then the
    rest at the steady rate."""
    return max(0, tasks - burst) / per_second


def task_slots(max_concurrency: int, per_task_concurrency: int) -> int:
    """Tasks running at once: ``max_concurrency`` counts items, a task runs up to
    ``per_task_concurrency`` of them."""
    return max(1, max_concurrency // per_task_concurrency)


@dataclass(frozen=True)
class Packing:
    """A run's packing: what was asked, what it became, and why."""

    items_per_task: int
    per_task_concurrency: int
    chosen_by: Literal["spec", "auto"]
    tasks: int
    task_slots: int
    launch_span_seconds: float
    #: The launch span at one item per task, for comparison.
    unpacked_launch_span_seconds: float
    why: str

    @property
    def packed(self) -> bool:
        return self.items_per_task > 1

    def summary(self) -> str:
        """One line for ``fanout expand --plan`` and a run's start."""
        head = (f"items_per_task {self.items_per_task}"
                + (" (auto)" if self.chosen_by == "auto" else "")
                + f", per_task_concurrency {self.per_task_concurrency}: "
                f"{self.tasks:,} tasks, {self.task_slots:,} at once, launched in "
                f"{_duration(self.launch_span_seconds)}")
        return f"{head}; {self.why}" if self.why else head


def plan_packing(
    *, count: int, items_per_task: int | Literal["auto"], per_task_concurrency: int,
    max_concurrency: int, burst: int, per_second: float,
) -> Packing:
    """The packing of a run of ``count`` items (``items_per_task`` as asked)."""
    c = per_task_concurrency
    slots = task_slots(max_concurrency, c)
    unpacked = launch_span_seconds(count, burst, per_second)
    if items_per_task != "auto":
        k = items_per_task
        return Packing(k, c, "spec", math.ceil(count / k), slots,
                       launch_span_seconds(math.ceil(count / k), burst, per_second),
                       unpacked, "")
    share = max(c, math.ceil(count / slots))  # the items each task slot gets
    candidates = sorted({c, *(k for k in LADDER if k >= c)})
    candidates = [k for k in candidates if k <= min(share, MAX_ITEMS_PER_TASK)] or [c]
    chosen = candidates[-1]
    for k in candidates:
        if launch_span_seconds(math.ceil(count / k), burst, per_second) \
                <= LAUNCH_SPAN_TARGET_SECONDS:
            chosen = k
            break
    tasks = math.ceil(count / chosen)
    span = launch_span_seconds(tasks, burst, per_second)
    bucket = f"a burst of {burst} then {per_second:g}/s"
    if chosen == 1:
        why = f"{count:,} tasks launch within {_duration(LAUNCH_SPAN_TARGET_SECONDS)} at " \
              f"{bucket}, so none are packed"
    elif span <= LAUNCH_SPAN_TARGET_SECONDS:
        why = (f"the smallest that launches within {_duration(LAUNCH_SPAN_TARGET_SECONDS)} "
               f"at {bucket} (one item per task: {_duration(unpacked)})")
    else:
        why = (f"capped at the {share:,} items each of the {slots:,} task slots gets "
               f"(one item per task: {_duration(unpacked)} to launch at {bucket})")
    return Packing(chosen, c, "auto", tasks, slots, span, unpacked, why)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
