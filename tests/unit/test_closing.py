"""Closing a run page by page (fanout.runtime.closing) on the in-memory store."""

from __future__ import annotations

from typing import Any

from fanout.records.model import AttemptRecord, ItemRecord, ItemStatus, RunRecord
from fanout.runtime.closing import Budget, Cursor, close_pages
from fanout.testing.callbacks import MemoryCallbacks
from fanout.testing.records import MemoryRecords


class Launcher:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop_task(self, task_arn: str, reason: str) -> None:
        self.stopped.append(task_arn)


class LaunchedMeanwhile(MemoryRecords):
    """Item 0's launch begins its attempt just as the sweep writes it as never launched."""

    def settle_item(self, run_id: str, index: int, status: ItemStatus, reason: str,
                    first: ItemRecord | None = None) -> bool:
        if index == 0 and self.get_item(run_id, 0) is None:
            self.begin_attempt(ItemRecord(run_id, 0, "PENDING"),
                               AttemptRecord(run_id, 0, 1, "c", "token", task_arn="arn:task/0",
                                             status="RUNNING"))
        return super().settle_item(run_id, index, status, reason, first)


def one_page_each() -> Budget:
    return Budget(0.0, clock=lambda: 0.0)


def close_all(store: MemoryRecords, run_id: str, page_records: int
              ) -> tuple[Cursor, int, Launcher]:
    cursor, invocations, launcher = Cursor(), 0, Launcher()
    while True:
        run = store.get_run(run_id)
        assert run is not None
        invocations += 1
        if close_pages(run, cursor, store=store, launcher=launcher,  # type: ignore[arg-type]
                       callbacks=MemoryCallbacks(), reason="the run's map ended early",
                       budget=one_page_each(), page_records=page_records):
            return cursor, invocations, launcher
        cursor = Cursor.model_validate(cursor.model_dump())  # as handed on: plain JSON


def test_an_item_launched_while_its_page_was_swept_is_closed_on_a_second_pass() -> None:
    # Given a run of 6 items never launched, the first of which begins as it is swept
    store = LaunchedMeanwhile()
    store.create_run(RunRecord("r", "analyzer", "RUNNING", "2026-12-04T10:00:00Z", total=6))
    # When it is closed a page of two at a time
    cursor, invocations, launcher = close_all(store, "r", 2)
    # Then the counters' check sent the sweep round again: item 0's task was stopped and
    # every item is ABORTED, counted once (the second pass's first page is item 0 and its
    # attempt: two records)
    assert cursor.passes == 2 and invocations == 3 + 4
    assert launcher.stopped == ["arn:task/0"]
    assert [i.status for i in store.items("r")] == ["ABORTED"] * 6
    run = store.get_run("r")
    assert run is not None and run.totals()["aborted"] == 6 and run.totals()["running"] == 0
    # And the failed items are listed once each, in index order
    assert cursor.failed == list(range(6))


def test_a_run_already_terminal_lists_its_failed_items_without_reading_further() -> None:
    # Given a closed-out run of 100 items, all terminal, of which items 3 and 5 failed
    store = MemoryRecords()
    store.create_run(RunRecord("r", "analyzer", "RUNNING", "2026-12-04T10:00:00Z",
                               total=100))
    for index in range(100):
        status: ItemStatus = "FAILED" if index in (3, 5) else "SUCCEEDED"
        store.settle_item("r", index, status, "x", first=ItemRecord("r", index, "PENDING"))
    # When it is closed a page of two at a time
    cursor, invocations, _ = close_all(store, "r", 2)
    # Then paging stopped once both failed items were listed (page 3, indexes 4 and 5)
    assert cursor.failed == [3, 5]
    assert cursor.after == 5 and invocations == 3


def test_an_invocation_budget_is_half_what_lambda_has_left_at_most_a_minute() -> None:
    class Context:
        def __init__(self, millis: int) -> None:
            self.millis = millis

        def get_remaining_time_in_millis(self) -> int:
            return self.millis

    def seconds(context: Any) -> float:
        budget = Budget.of(context)
        return budget.ends - budget.clock()

    assert 59 < seconds(Context(240_000)) <= 60
    assert 29 < seconds(Context(60_000)) <= 30
