"""The views a user reads (RunView, ItemView, ItemDetail, AttemptView) and the local records."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fanout.cost import TaskSize, prices_for
from fanout.local.records import FORMAT, RECORDS, write_records, write_started
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
from fanout.records.views import (
    ITEM_STATES,
    all_items,
    item_detail,
    item_view,
    run_view,
    view_of,
)
from fanout.runs.local import LocalRuns

RUN_KEYS = {"run_id", "job", "status", "trigger", "started_at", "finished_at",
            "duration_seconds", "total", "counts", "parent_run_id", "reason", "cost",
            "console_url", "spec"}
ITEM_KEYS = {"run_id", "index", "params", "command", "environment", "status", "attempt_count",
             "exit_code", "reason", "log_tail", "waiting", "started_at", "finished_at",
             "duration_seconds", "output", "outputs", "outputs_count", "outputs_bytes",
             "outputs_partial"}
ATTEMPT_KEYS = {"attempt", "task_arn", "capacity", "exit_code", "stop_code", "reason",
                "started_at", "stopped_at", "duration_seconds", "log_stream", "cost_usd"}


def failed_run() -> tuple[RunRecord, list[ItemRecord], list[AttemptRecord]]:
    run = RunRecord("r1", "prog", "FAILED", "2026-11-29T19:00:00.000000Z", total=3,
                    trigger="cli", finished_at="2026-11-29T19:01:00.500000Z",
                    summary="run r1 of job prog FAILED: 1 of 3 items succeeded",
                    counts={"SUCCEEDED": 1, "FAILED": 1, "ABORTED": 1},
                    settings={"cpu": 1024, "memory": 2048, "architecture": "X86_64"})
    items = [ItemRecord("r1", 0, "SUCCEEDED", params={"y": 0}, attempts=1, exit_code=0),
             ItemRecord("r1", 1, "FAILED", params={"y": 1}, attempts=2, exit_code=3,
                        reason="exit code 3", log_tail=["FATAL: giving up"])]
    attempts = [
        AttemptRecord("r1", 0, 1, "c", "t", status="SUCCEEDED", task_arn="arn:task/a",
                      started_at="2026-11-29T19:00:01Z", stopped_at="2026-11-29T19:00:31Z",
                      duration_seconds=30.0, exit_code=0, reason="exit code 0"),
        AttemptRecord("r1", 1, 2, "c", "t", status="FAILED", task_arn="arn:task/c",
                      capacity="FARGATE_SPOT", started_at="2026-11-29T19:00:40Z",
                      stopped_at="2026-11-29T19:02:40Z", duration_seconds=120.0, exit_code=3,
                      reason="exit code 3", log_tail=["FATAL: giving up"]),
        AttemptRecord("r1", 1, 1, "c", "t", status="RETRY", task_arn="arn:task/b",
                      started_at="2026-11-29T19:00:01Z", stopped_at="2026-11-29T19:00:31Z",
                      duration_seconds=30.0, exit_code=3, reason="exit code 3"),
    ]
    return run, items, attempts


def test_a_run_view_has_every_key_counts_reason_and_time() -> None:
    run, _, _ = failed_run()
    view = run_view(run, spec={"job": "prog"}, cost=None)
    assert set(view) == RUN_KEYS
    assert view["counts"] == {"PENDING": 0, "WAITING": 0, "RUNNING": 0, "SUCCEEDED": 1,
                              "FAILED": 1, "TIMED_OUT": 0, "ABORTED": 1}
    assert set(view["counts"]) == set(ITEM_STATES)
    assert view["reason"] == run.summary
    assert (view["started_at"], view["finished_at"], view["duration_seconds"]) == (
        "2026-11-29T19:00:00Z", "2026-11-29T19:01:00Z", 60.5)


def test_an_item_detail_lists_its_attempts_in_order_with_their_cost() -> None:
    _, items, attempts = failed_run()
    prices = prices_for("us-east-1")
    detail = item_detail(items[1], [a for a in attempts if a.index == 1],
                         size=TaskSize(1024, 2048, "X86_64"), prices=prices)
    assert set(detail) == ITEM_KEYS | {"attempts"}
    assert (detail["reason"], detail["log_tail"]) == ("exit code 3", ["FATAL: giving up"])
    assert detail["attempt_count"] == 2
    assert [a["attempt"] for a in detail["attempts"]] == [1, 2]
    first, second = detail["attempts"]
    assert set(first) >= ATTEMPT_KEYS
    # 30 s billed as 60 on-demand; 120 s on Spot at 70% off: 1 vCPU + 2 GB = $0.04937/h
    assert first["cost_usd"] == round(60 * 0.04937 / 3600, 6)
    assert second["cost_usd"] == round(120 * 0.04937 * 0.3 / 3600, 6)
    assert (detail["started_at"], detail["finished_at"], detail["duration_seconds"]) == (
        "2026-11-29T19:00:01Z", "2026-11-29T19:02:40Z", 150.0)


def test_items_not_yet_written_are_pending_and_a_success_has_no_reason() -> None:
    run, items, attempts = failed_run()
    every = all_items(run, items)
    assert [i.status for i in every] == ["SUCCEEDED", "FAILED", "PENDING"]
    ok = item_view(every[0], [attempts[0]])
    assert (ok["reason"], ok["log_tail"], ok["waiting"]) == (None, [], None)


def test_local_records_read_back_as_the_views_they_were_written_from(tmp_path: Path) -> None:
    # Given a run folder written as the local mode writes it
    run, items, attempts = failed_run()
    prices, size = prices_for("us-east-1"), TaskSize(1024, 2048, "X86_64")
    details = [item_detail(i, [a for a in attempts if a.index == i.index], size=size,
                           prices=prices) for i in all_items(run, items)]
    view = run_view(run, spec={"job": "prog"}, cost=None)
    write_records(tmp_path / "r1", view, details, settings=run.settings)
    write_started(tmp_path, "r2", {"job": "prog", "items": [{}]})  # still going, here
    # When it is read back
    runs = LocalRuns(tmp_path)
    # Then the run, its items and each item's attempts are what was written
    assert runs.get_run("r1") == view
    assert runs.list_items("r1") == [view_of(d) for d in details]
    assert [i["attempt_count"] for i in runs.list_items("r1")] == [1, 2, 0]
    assert runs.list_items("r1", status="FAILED")[0]["index"] == 1
    assert runs.get_item("r1", 1) == details[1]
    assert runs.get_item("r1", 9) is None and runs.get_run("nope") is None
    # And the run in progress is RUNNING (its process, this one, is alive), newest first
    assert [r["run_id"] for r in runs.list_runs()] == ["r2", "r1"]
    assert runs.get_run("r2")["status"] == "RUNNING"  # type: ignore[index]
    assert runs.pid("r2") == os.getpid()
    # And every line says what it is, the run first, in the documented format
    lines = [json.loads(x) for x in (tmp_path / "r1" / RECORDS).read_text().splitlines()]
    assert [x["record"] for x in lines] == ["run", "item", "item", "item", "attempt",
                                             "attempt", "attempt"]
    assert lines[0]["format"] == FORMAT


def test_a_records_folder_of_format_1_reads_as_format_2(tmp_path: Path) -> None:
    # Given a run folder written before format 2, when an item's ``attempts`` was a count
    run, items, attempts = failed_run()
    details = [item_detail(i, [a for a in attempts if a.index == i.index])
               for i in all_items(run, items)]
    write_records(tmp_path / "r1", run_view(run), details, settings=run.settings)
    path = tmp_path / "r1" / RECORDS
    old = [json.loads(x) for x in path.read_text().splitlines()]
    for line in old:
        if line["record"] == "item":
            line["attempts"] = line.pop("attempt_count")
    old[0]["format"] = "fanout.local-records/1"
    path.write_text("".join(json.dumps(x) + "\n" for x in old))
    # When it is read / Then its items count their attempts as format 2 does, and an
    # item's detail lists them
    runs = LocalRuns(tmp_path)
    assert runs.list_items("r1") == [view_of(d) for d in details]
    assert runs.get_item("r1", 1) == details[1]


def test_a_local_run_whose_process_is_gone_reads_as_aborted(tmp_path: Path) -> None:
    write_started(tmp_path, "r3", {"job": "prog"}, pid=2 ** 22 + 12345)  # no such process
    run = LocalRuns(tmp_path).get_run("r3")
    assert run is not None and run["status"] == "ABORTED"
    assert "ended before the run did" in run["reason"]
