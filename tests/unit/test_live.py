"""A running local run's records file, as the snapshots of the emulated table write it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fanout.config import load_config_file
from fanout.local.live import Raw, Snapshots, _replace
from fanout.local.records import RECORDS
from fanout.records.layout import attempt_sk, item_sk, to_attrs
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
from fanout.runs.local import LocalRuns

CONFIG = load_config_file(Path(__file__).resolve().parents[1] / "e2e" / "cdk.json")
RUN = RunRecord("prog-live", "prog", "RUNNING", "2026-12-04T12:00:00.000000Z", total=4,
                trigger="cli", counts={"RUNNING": 2, "SUCCEEDED": 1}, waiting=1,
                settings={"cpu": 256, "memory": 512, "architecture": "ARM64"})


def raw(sk: str, record: Any) -> Raw:
    attrs = {"sk": sk, **to_attrs(record)}
    return sk, tuple(sorted(attrs.items())), attrs


def table(tries_of_2: int = 0) -> list[Raw]:
    """Item 0 succeeded, 1 runs, 2 waits for its launch turn, 3 was never launched."""
    done = AttemptRecord("prog-live", 0, 1, "c", "t", status="SUCCEEDED", task_arn="arn:t/0",
                         created_at="2026-12-04T12:00:00.100000Z",
                         started_at="2026-12-04T12:00:00.200000Z",
                         stopped_at="2026-12-04T12:00:00.900000Z", duration_seconds=0.7,
                         exit_code=0)
    running = AttemptRecord("prog-live", 1, 1, "c", "t", status="RUNNING", task_arn="arn:t/1",
                            created_at="2026-12-04T12:00:00.100000Z",
                            started_at="2026-12-04T12:00:00.300000Z")
    queued = AttemptRecord("prog-live", 2, 1, "c", "t", created_at="2026-12-04T12:00:01Z",
                           queued=True)
    waiting = {"why": "waiting for a launch turn", "since": "2026-12-04T12:00:01Z",
               "tries": tries_of_2}
    return [
        raw(item_sk(0), ItemRecord("prog-live", 0, "SUCCEEDED", params={"n": 0}, attempts=1,
                                   exit_code=0)),
        raw(attempt_sk(0, 1), done),
        raw(item_sk(1), ItemRecord("prog-live", 1, "RUNNING", params={"n": 1}, attempts=1,
                                   open_attempt=1)),
        raw(attempt_sk(1, 1), running),
        raw(item_sk(2), ItemRecord("prog-live", 2, "RUNNING", params={"n": 2}, attempts=1,
                                   open_attempt=1, waiting=waiting)),
        raw(attempt_sk(2, 1), queued),
    ]


def test_a_running_run_reads_as_it_is_with_the_rest_pending(tmp_path: Path) -> None:
    # Given the emulated table of a run in flight, and its manifest
    snapshots = Snapshots("prog-live", CONFIG, "us-east-1",
                          manifest={3: {"index": 3, "params": {"n": 3}, "command": ["3"],
                                        "environment": {}}})
    # When a snapshot is written where the run's records go
    lines = snapshots.lines(RUN, {"job": "prog"}, table(), os.getpid())
    assert lines is not None
    _replace(tmp_path / "prog-live" / RECORDS, lines)
    # Then the readers of `fanout status|items --local` see it running, item by item
    runs = LocalRuns(tmp_path)
    run = runs.get_run("prog-live")
    assert run is not None and run["status"] == "RUNNING" and run["total"] == 4
    assert run["counts"] == {"PENDING": 1, "WAITING": 1, "RUNNING": 1, "SUCCEEDED": 1,
                             "FAILED": 0, "TIMED_OUT": 0, "ABORTED": 0}
    items = runs.list_items("prog-live")
    assert [(i["index"], i["status"]) for i in items] == [
        (0, "SUCCEEDED"), (1, "RUNNING"), (2, "WAITING"), (3, "PENDING")]
    assert items[2]["waiting"]["why"] == "waiting for a launch turn"
    assert items[3]["params"] == {"n": 3} and items[3]["command"] == ["3"]
    done = runs.get_item("prog-live", 0)
    assert done is not None and done["attempts"][0]["stopped_at"] == \
        "2026-12-04T12:00:00.900Z"


def test_a_snapshot_converts_only_what_changed_and_skips_no_change() -> None:
    snapshots = Snapshots("prog-live", CONFIG, "us-east-1")
    assert snapshots.lines(RUN, None, table(), 1) is not None
    assert snapshots.converted == 6
    # Nothing changed: nothing to write
    assert snapshots.lines(RUN, None, table(), 1) is None
    # One waiting item tried again: only it (and its attempt) are converted again
    changed = snapshots.lines(RUN, None, table(tries_of_2=1), 1)
    assert changed is not None and snapshots.converted == 2
    assert '"tries": 1' in changed[3]


def test_a_records_fingerprint_changes_with_any_value_of_it() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    from fanout.local.live import _fingerprint, plain_attrs

    attrs = {"sk": DynamoType({"S": item_sk(1)}), "status": DynamoType({"S": "RUNNING"}),
             "attempts": DynamoType({"N": "1"})}
    before = _fingerprint(attrs)
    assert before == _fingerprint(dict(attrs))
    attrs["status"] = DynamoType({"S": "SUCCEEDED"})  # as moto's SET does
    assert _fingerprint(attrs) != before
    attrs["exit_code"] = DynamoType({"N": "0"})
    assert plain_attrs(attrs)["exit_code"] == 0 and plain_attrs(attrs)["status"] == "SUCCEEDED"
    # A map could change inside itself: no fingerprint, always converted
    attrs["m"] = DynamoType({"M": {"a": {"S": "b"}}})
    assert _fingerprint(attrs) is None


def test_after_a_failed_snapshot_the_next_one_starts_over() -> None:
    snapshots = Snapshots("prog-live", CONFIG, "us-east-1")
    assert snapshots.lines(RUN, None, table(), 1) is not None
    snapshots.forget()
    again = snapshots.lines(RUN, None, table(), 1)
    assert again is not None and snapshots.converted == 6


def test_the_live_records_read_a_packed_runs_items_out_of_their_batches() -> None:
    from fanout.local.live import rendered_items

    # Given a manifest of items, and a packed run's manifest of the same items in batches
    items = [{"index": i, "params": {"n": i}} for i in range(5)]
    batches = [{"batch": 0, "items": items[:3]}, {"batch": 1, "items": items[3:]}]
    # When read, Then both give the same items by index (a pending item shows its params)
    assert rendered_items(batches) == rendered_items(items) == {i["index"]: i for i in items}
