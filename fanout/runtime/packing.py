"""Settling the items of a packed task (docs/decisions/0020).

A packed task carries a batch of items, written as ``batch.json`` in the run's folder
(``<records>/RUN/tasks/KEY/`` locally, ``runs/RUN/tasks/KEY/`` in the run bucket on AWS). Its
runner writes, per item, a ``started`` mark before the item starts and a result when it
ends (``items/`` beside it), and prefixes the item's output lines with
:func:`line_prefix`. When the task stops, :func:`settle_batch` says what each item of the
batch became: finished items as they ended, the ones the task was running by the
task's stop, and the ones it never started back to the queue without spending an attempt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fanout.aws.clients import client
from fanout.outputs import is_s3, split_s3
from fanout.records.model import RunRecord

#: A packed task's folder in the run bucket (``batch.json``, ``items/``; docs/decisions/0021).
TASK_KEY = "runs/{run_id}/tasks/{key}/"

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


# --- the batched manifest: one map element, one child execution per batch ------------------

def packing_of(run: RunRecord | None) -> tuple[int, int]:
    """The run's ``items_per_task`` ("auto" resolved at Expand) and ``per_task_concurrency``."""
    packing = (run.settings.get("packing") if run is not None else None) or {}
    return (max(1, int(packing.get("items_per_task", 1))),
            max(1, int(packing.get("per_task_concurrency", 1))))


#: The most a batch element of the manifest may weigh: a child execution's input is at most
#: 256 KiB, and the map's ItemSelector and Launch's payload (the run id, the callback
#: timeout, the task token) take a few more KiB of it.
MAX_BATCH_BYTES = 256 * 1024 - 4096


def batch_lines(lines: Iterable[str], items_per_task: int) -> Iterator[str]:
    """The manifest's items (compact JSON lines, index order) as batches of
    ``items_per_task``: element *b* is ``{"batch":b,"items":[...]}``. Raises
    :class:`ValueError` naming the batch that weighs more than :data:`MAX_BATCH_BYTES`."""
    number, members, size = 0, [], 0
    for line in lines:
        members.append(line)
        size += len(line.encode()) + 1
        if len(members) == items_per_task:
            yield _batch_line(number, members, size)
            number, members, size = number + 1, [], 0
    if members:
        yield _batch_line(number, members, size)


def _batch_line(number: int, members: list[str], size: int) -> str:
    if size + 32 > MAX_BATCH_BYTES:
        raise ValueError(f"batch {number} of {len(members)} items weighs {size} bytes, over "
                         f"the {MAX_BATCH_BYTES} a child execution takes; lower "
                         "items_per_task")
    return '{"batch":' + str(number) + ',"items":[' + ",".join(members) + "]}"


def batch_indexes(batch: int, items_per_task: int, total: int) -> range:
    """The indexes of the items of batch ``batch``."""
    first = batch * items_per_task
    return range(first, min(first + items_per_task, total))


# --- a packed task's batch and its folder ----------------------------------------------------

def batch_number(index: int, items_per_task: int) -> int:
    """The batch an item belongs to: items go into batches of K in index order."""
    return index // max(1, items_per_task)


def batch_key(run_id: str, members: Iterable[tuple[int, int]]) -> str:
    """The name of one packed task's batch: its items and their attempts (deterministic, so
    a repeated launch of the same batch writes the same folder and gets the same token)."""
    text = run_id + "|" + ",".join(f"{i}:{a}" for i, a in sorted(members))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def batch_location(root: str, run_id: str, key: str) -> str:
    """Where a packed task's batch object is: ``s3://BUCKET/runs/RUN/tasks/KEY/batch.json``
    under an outputs root in S3 (AWS), ``<records>/RUN/tasks/KEY/batch.json`` under a local
    records folder. Its items' marks and results (``items/``) are beside it."""
    if is_s3(root):
        return f"{root.rstrip('/')}/{TASK_KEY.format(run_id=run_id, key=key)}batch.json"
    return str(Path(root).resolve() / run_id / "tasks" / key / "batch.json")


def write_batch(location: str, batch: Mapping[str, Any]) -> None:
    """Write the batch object whole: one PUT in S3, a rename locally (a reader never sees
    half of it)."""
    body = json.dumps(batch)
    if is_s3(location):
        bucket, key = split_s3(location)
        client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode(),
                                ContentType="application/json")
        return
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(body)
    partial.replace(path)


def read_batch(location: str) -> dict[str, Any] | None:
    """The batch object at ``location``; None when it is not there or not JSON."""
    try:
        if is_s3(location):
            bucket, key = split_s3(location)
            body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        else:
            body = Path(location).read_bytes()
        found = json.loads(body)
    except (OSError, ValueError, BotoCoreError, ClientError):
        return None
    return found if isinstance(found, dict) else None


def read_items(location: str) -> tuple[dict[int, str], dict[int, ItemResult]]:
    """The items a packed task's runner started (index -> when), and the results it wrote
    (``items/`` beside the batch object at ``location``). S3 lists what was written before
    the listing (strongly consistent), so a stopped task's uploads are all seen."""
    started: dict[int, str] = {}
    results: dict[int, ItemResult] = {}
    for name, read in _item_files(location):
        stem, _, kind = name.partition(".")
        if not stem.isdigit() or kind not in ("started", "json"):
            continue
        try:
            text = read()
            if kind == "started":
                started[int(stem)] = text.strip()
            else:
                results[int(stem)] = ItemResult.from_json(json.loads(text))
        except (OSError, ValueError, KeyError, TypeError, BotoCoreError, ClientError):
            continue  # a result is written whole or not at all; skip anything else
    return started, results


def _item_files(location: str) -> Iterator[tuple[str, Callable[[], str]]]:
    """Each file under ``items/`` beside the batch object: its name and how to read it."""
    if is_s3(location):
        bucket, key = split_s3(location)
        prefix = key.rsplit("/", 1)[0] + "/items/"
        s3 = client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for found in page.get("Contents", []):
                yield str(found["Key"])[len(prefix):], partial(_s3_text, s3, bucket,
                                                               str(found["Key"]))
        return
    items = Path(location).parent / "items"
    if not items.is_dir():
        return
    for path in items.iterdir():
        yield path.name, path.read_text


def _s3_text(s3: Any, bucket: str, key: str) -> str:
    return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
