"""A batch child's token answered once its items are settled (fanout.runtime.settle)."""

from __future__ import annotations

from fanout.records.model import AttemptRecord, ItemRecord, RunRecord, Settlement
from fanout.runtime.settle import answer_batch_now
from fanout.testing.callbacks import MemoryCallbacks
from fanout.testing.records import MemoryRecords

K = 50


class CountedReads(MemoryRecords):
    def __init__(self) -> None:
        super().__init__()
        self.item_reads = 0

    def get_item(self, run_id: str, index: int) -> ItemRecord | None:
        self.item_reads += 1
        return super().get_item(run_id, index)


def settle(store: MemoryRecords, index: int) -> None:
    attempt = store.get_attempt("r", index, 1)
    assert attempt is not None
    assert store.settle_attempt(attempt, Settlement(
        "SUCCEEDED", "SUCCEEDED", "success", "2026-12-05T10:01:00Z",
        {"outcome": "success"}, exit_code=0)) is not None


def test_a_batch_is_answered_once_its_last_item_settles_reading_each_item_about_once() -> None:
    # Given a packed run of one batch of 50 items, each begun in the batch's task
    store = CountedReads()
    run = RunRecord("r", "analyzer", "RUNNING", "2026-12-05T10:00:00Z", total=K,
                    settings={"packing": {"items_per_task": K}})
    store.create_run(run)
    for index in range(K):
        assert store.begin_attempt(
            ItemRecord("r", index, "PENDING"),
            AttemptRecord("r", index, 1, f"c{index}", "token-b0", task_arn="arn:task/b0",
                          status="RUNNING", batch=0))
    callbacks = MemoryCallbacks()
    # When its items settle one by one, in the order the task ran them, each settlement
    # asking whether the batch's token can be answered
    store.item_reads = 0
    for index in range(K - 1):
        settle(store, index)
        assert answer_batch_now(store, callbacks, run, 0, "token-b0") is False
    # Then nothing is answered while an item runs, and each asking read one item record
    # (the batch's last, still running), not the whole batch
    assert callbacks.answers == {}
    assert store.item_reads == K - 1
    # When the last settles, Then the token is answered once, with every item succeeded
    settle(store, K - 1)
    assert answer_batch_now(store, callbacks, run, 0, "token-b0") is True
    assert callbacks.answers == {"token-b0": ("success", {
        "run_id": "r", "batch": 0, "items": K, "succeeded": K})}


def test_a_batch_with_any_item_open_is_not_answered_whichever_it_is() -> None:
    # Given a batch of 5 items, all settled but item 2
    store = CountedReads()
    run = RunRecord("r", "analyzer", "RUNNING", "2026-12-05T10:00:00Z", total=5,
                    settings={"packing": {"items_per_task": 5}})
    store.create_run(run)
    for index in range(5):
        store.begin_attempt(ItemRecord("r", index, "PENDING"),
                            AttemptRecord("r", index, 1, f"c{index}", "t", task_arn="arn:t",
                                          status="RUNNING", batch=0))
    for index in (0, 1, 3, 4):
        settle(store, index)
    # Then the batch's token is not answered
    callbacks = MemoryCallbacks()
    assert answer_batch_now(store, callbacks, run, 0, "t") is False
    assert callbacks.answers == {}
