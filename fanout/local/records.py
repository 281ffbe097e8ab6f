"""The records folder of a local run: written in the views a user reads (docs/local-records.md).

Each run is a folder ``<records_dir>/<run_id>/``:

- ``records.jsonl``: JSON Lines, the format :data:`FORMAT`. The first line is the run
  (``"record": "run"``, a RunView plus ``format``, ``pid`` and ``settings``), then one line
  per item (``"record": "item"``, an ItemView), then one per attempt (``"record":
  "attempt"``, an AttemptView plus ``run_id`` and ``index``). While the run is going, the
  file holds only the run line, status RUNNING, with the process id that runs it.
- ``logs/item-<index>-attempt-<n>-<task id>.log``: each attempt's output.
- ``summary.json``: what ``fanout local --json`` printed.

Files are replaced whole (written aside, then renamed), so a reader never sees half of one.
:class:`fanout.runs.local.LocalRuns` reads them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.cost import RegionPrices, TaskSize, prices_for
from fanout.records.local_format import FORMAT
from fanout.records.views import (
    ITEM_STATES,
    ItemDetail,
    RunView,
    all_items,
    item_detail,
    now,
    packed_shares,
    run_view,
    task_size,
    view_of,
)

if TYPE_CHECKING:
    from fanout.config import FanoutConfig
    from fanout.local.summary import RunSummary
    from fanout.records.dynamo import DynamoRecords
    from fanout.records.model import RunRecord

RECORDS = "records.jsonl"


def _replace(path: Path, lines: Iterator[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    with open(aside, "w") as out:
        for line in lines:
            out.write(line + "\n")
    os.replace(aside, path)


def _line(record: str, value: dict[str, Any]) -> str:
    return json.dumps({"record": record, **value}, sort_keys=True, default=str)


def write_started(records_dir: Path, run_id: str, document: dict[str, Any],
                  pid: int | None = None) -> None:
    """The run line of a run that has just started (status RUNNING, the id of the process
    that runs it: this one unless ``pid`` says)."""
    view: RunView = {
        "run_id": run_id, "job": str(document.get("job")), "status": "RUNNING",
        "trigger": "local" if document.get("trigger", "cli") == "cli"
        else document.get("trigger"),
        "started_at": now(), "finished_at": None, "duration_seconds": None, "total": 0,
        "counts": dict.fromkeys(ITEM_STATES, 0), "parent_run_id": document.get("parent_run"),
        "reason": None,
        "cost": None, "console_url": None, "spec": document,
    }
    _replace(records_dir / run_id / RECORDS,
             iter([_line("run", {**view, "format": FORMAT, "pid": pid or os.getpid(),
                                 "settings": None})]))


def write_records(folder: Path, run: RunView, items: list[ItemDetail],
                  settings: dict[str, Any] | None) -> None:
    """The run's records once it has ended: the run, its items, their attempts."""
    def lines() -> Iterator[str]:
        yield _line("run", {**run, "format": FORMAT, "pid": None, "settings": settings})
        for item in items:
            yield _line("item", view_of(item))
        for item in items:
            for attempt in item.get("attempts", []):
                yield _line("attempt", {"run_id": item["run_id"], "index": item["index"],
                                        **attempt})
    _replace(folder / RECORDS, lines())


def rejected_view(summary: RunSummary, document: dict[str, Any]) -> RunView:
    reason = "; ".join(summary.problems) or "the spec was rejected"
    return {
        "run_id": summary.run_id, "job": summary.job, "status": summary.status,
        "trigger": "local", "started_at": now(), "finished_at": now(),
        "duration_seconds": 0.0, "total": 0,
        "counts": dict.fromkeys(ITEM_STATES, 0),
        "parent_run_id": document.get("parent_run"), "reason": " ".join(reason.split()),
        "cost": None, "console_url": None, "spec": document,
    }


def prices_of(region: str, config: FanoutConfig) -> RegionPrices:
    """What a local run would have cost on AWS is priced as the emulated region's."""
    return prices_for(region, config.cost.prices)


def size_of(config: FanoutConfig, job: str) -> TaskSize | None:
    made = config.jobs.get(job)
    return TaskSize(made.cpu, made.memory, made.architecture) if made else None


def write_run_records(folder: Path, store: DynamoRecords, run_id: str, summary: RunSummary,
                      document: dict[str, Any], config: FanoutConfig, region: str) -> None:
    """The run's records, read back from the emulated table as the views show them."""
    run = store.get_run(run_id)
    if run is None:  # rejected before Expand wrote it: the summary says why
        write_records(folder, rejected_view(summary, document), [], settings=None)
        return
    prices = prices_of(region, config)
    size = task_size(run.settings, size_of(config, run.job))
    by_item: dict[int, list[Any]] = {}
    for attempt in store.attempts(run_id):
        by_item.setdefault(attempt.index, []).append(attempt)
    view = run_view(run, spec=store.get_spec(run_id) or document, cost=summary.cost)
    if summary.status != run.status:  # the execution ended as the record did not say
        view["status"] = summary.status
    if view["trigger"] == "cli":
        view["trigger"] = "local"
    # Whether the run's ending was announced (one notification per terminal status).
    view["notified"] = bool(getattr(run, "notified", False))
    shares = packed_shares(a for tried in by_item.values() for a in tried)
    items = [item_detail(i, by_item.get(i.index, []), size=size, prices=prices, shares=shares)
             for i in all_items(run, store.items(run_id))]
    write_records(folder, view, items, settings=run.settings)


def put_items(document: Mapping[str, Any], path: Path, region: str) -> None:
    """Put the local copy of an ``items_from`` object where the spec names it."""
    import boto3

    bucket, _, key = str(document.get("items_from", "")).removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", region_name=region)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def check_items_file(items_from: bool, path: Path | None) -> None:
    """``--items FILE`` is for a spec with ``items_from``, and the file must be there."""
    from fanout.errors import FanoutInputError, Problem

    if path is not None and not items_from:
        raise FanoutInputError([Problem("--items", "the spec has no items_from")])
    if path is not None and not path.is_file():
        raise FanoutInputError([Problem("--items", f"no such file {path}")])


def copy_results(s3: Any, bucket: str, run_id: str, folder: Path) -> None:
    """The map's results as its ResultWriter wrote them (manifest.json, SUCCEEDED_0.json),
    into ``folder``/results."""
    from fanout.schema import RESULTS_PREFIX

    prefix = RESULTS_PREFIX.format(run_id=run_id) + "/"
    for listing in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in listing.get("Contents", []):
            target = folder / "results" / entry["Key"][len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())


def notification_of(store: DynamoRecords, run: RunRecord,
                    cost: dict[str, Any] | None) -> dict[str, Any]:
    """The run's ending as Finalize and Abort announce it (``fanout local --notify``); its
    link is the local command's, as no console shows an emulated execution."""
    from fanout.runtime.closing import failed_items_of
    from fanout.runtime.notify import message_of

    priced = None if run.status == "REJECTED" else cost
    return {**message_of(run, failed_items_of(store, run), priced), "console_url": ""}


def child_executions(sfn: Any, execution: Mapping[str, Any]) -> int:
    """How many child executions the run's map started (its map run's count)."""
    arn = execution.get("executionArn")
    if not arn or sfn is None:
        return 0
    try:
        runs = sfn.list_map_runs(executionArn=arn).get("mapRuns", [])
        if not runs:
            return 0
        counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
        return int(counts.get("executionCounts", {}).get("total", 0))
    except Exception:  # botocore's errors: the count is news, never in the run's way
        return 0
