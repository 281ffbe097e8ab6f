"""Settling the items of a packed task (docs/decisions/0020). No AWS.

A packed task carries a batch of items. Its runner writes, per item, a ``started`` mark
before the item starts and a result when it ends, and prefixes the item's output lines
with :func:`line_prefix`. When the task stops, :func:`settle_batch` says what each item of
the batch became: finished items as they ended, the ones the task was running by the
task's stop, and the ones it never started back to the queue without spending an attempt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

#: What starts every line an item of a packed task writes: ``[fanout item=I attempt=A] ``.
PREFIX = re.compile(r"^\[fanout item=(\d+) attempt=(\d+)\] ")


def line_prefix(index: int, attempt: int) -> str:
    return f"[fanout item={index} attempt={attempt}] "


def item_lines(lines: Iterable[str], index: int, attempt: int | None = None) -> Iterator[str]:
    """The lines of one item (of one attempt, or of all) in a packed task's log, unprefixed:
    what ``fanout logs RUN INDEX`` shows of a task it shared with other items."""
    for line in lines:
        found = PREFIX.match(line)
        if found and int(found[1]) == index and (attempt is None or int(found[2]) == attempt):
            yield line[found.end():]


@dataclass(frozen=True)
class ItemResult:
    """What the runner wrote when an item ended (``items/I.json``)."""

    index: int
    attempt: int
    exit_code: int | None
    started: str
    stopped: str
    timed_out: bool = False
    log_tail: tuple[str, ...] = ()
    #: It ended after the task was asked to stop (the runner passed SIGTERM on): the
    #: task's stop ended it, not the item itself.
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "attempt": self.attempt, "exit_code": self.exit_code,
                "started": self.started, "stopped": self.stopped,
                "timed_out": self.timed_out, "log_tail": list(self.log_tail),
                "interrupted": self.interrupted}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemResult:
        return cls(index=int(data["index"]), attempt=int(data["attempt"]),
                   exit_code=data.get("exit_code"), started=str(data["started"]),
                   stopped=str(data["stopped"]), timed_out=bool(data.get("timed_out")),
                   log_tail=tuple(data.get("log_tail") or ()),
                   interrupted=bool(data.get("interrupted")))


class Ending(StrEnum):
    """How an item of a stopped packed task is settled."""

    #: It ended in the task: its own exit code or timeout, judged by its retry policy.
    ENDED = "ended"
    #: The task stopped while it ran: the task's stop (Spot, OOM, abort...) is its ending.
    TASK_STOPPED = "task_stopped"
    #: The task never started it: back to the queue, its attempt not spent.
    REQUEUED = "requeued"


@dataclass(frozen=True)
class ItemSettlement:
    index: int
    ending: Ending
    #: Whether this turn counts against the item's ``max_attempts``.
    spends_attempt: bool
    result: ItemResult | None = None


def settle_batch(
    indexes: Sequence[int], *, started: Iterable[int], results: Mapping[int, ItemResult],
    runner_ran: bool,
) -> list[ItemSettlement]:
    """What each item of a stopped packed task's batch became.

    ``runner_ran`` is false when the task stopped before its runner started (an image
    that cannot be pulled, an init container that failed): then every item takes the
    task's stop and spends its attempt, or such a task would requeue its items forever.
    """
    begun = set(started)
    settled = []
    for index in indexes:
        if index in results and results[index].interrupted:
            # The runner passed the task's stop on: its exit code is the stop's, not its own.
            settled.append(ItemSettlement(index, Ending.TASK_STOPPED, True, results[index]))
        elif index in results:
            settled.append(ItemSettlement(index, Ending.ENDED, True, results[index]))
        elif index in begun or not runner_ran:
            settled.append(ItemSettlement(index, Ending.TASK_STOPPED, True))
        else:
            settled.append(ItemSettlement(index, Ending.REQUEUED, False))
    return settled


# --- a packed task's batch and its folder ----------------------------------------------------

def batch_number(index: int, items_per_task: int) -> int:
    """The batch an item belongs to: items go into batches of K in index order."""
    return index // max(1, items_per_task)


def batch_key(run_id: str, members: Iterable[tuple[int, int]]) -> str:
    """The name of one packed task's batch: its items and their attempts (deterministic, so
    a repeated launch of the same batch writes the same folder and gets the same token)."""
    text = run_id + "|" + ",".join(f"{i}:{a}" for i, a in sorted(members))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def batch_folder(root: str, run_id: str, key: str) -> Path:
    """Where a packed task's batch (``batch.json``) and its items' marks and results
    (``items/``) are, under a local records folder (``root``)."""
    return Path(root).resolve() / run_id / "tasks" / key


def read_items(folder: Path) -> tuple[dict[int, str], dict[int, ItemResult]]:
    """The items a packed task's runner started (index -> when), and the results it wrote
    (``items/``)."""
    started: dict[int, str] = {}
    results: dict[int, ItemResult] = {}
    items = folder / "items"
    if not items.is_dir():
        return started, results
    for path in items.iterdir():
        stem, _, kind = path.name.partition(".")
        if not stem.isdigit():
            continue
        if kind == "started":
            started[int(stem)] = path.read_text().strip()
        elif kind == "json":
            try:
                results[int(stem)] = ItemResult.from_json(json.loads(path.read_text()))
            except (ValueError, KeyError, TypeError):
                continue  # a result is written whole or not at all; skip anything else
    return started, results
