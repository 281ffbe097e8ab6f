"""The records under DynamoDB's contention: no per-item write touches the run record,
totals are summed from the counter shards and final once the run ends, and a transaction
cancelled for a conflict (emulated: ``ddb_conflict``) is retried, never a lost race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fanout.local.moto.dynamodb import Contention, contention
from fanout.records import writes
from fanout.records.dynamo import DynamoRecords
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord, Settlement
from fanout.records.writes import SHARDS, ContentionError
from tests.integration.conftest import TABLE, World


@pytest.fixture
def store(world: World) -> DynamoRecords:
    return DynamoRecords(TABLE)


def begin(store: DynamoRecords, run_id: str, index: int) -> AttemptRecord:
    attempt = AttemptRecord(run_id, index, 1, client_token=f"c{index}", task_token=f"t{index}",
                            created_at="2026-11-20T10:00:00.000000Z",
                            started_at="2026-11-20T10:00:00.000000Z",
                            deadline="2026-11-20T10:10:00.000000Z", expires_at=1_900_000_000)
    assert store.begin_attempt(ItemRecord(run_id, index, "PENDING"), attempt)
    return attempt


def done(status: str = "SUCCEEDED") -> Settlement:
    return Settlement(status=status, item_status=status,  # type: ignore[arg-type]
                      stop_class="succeeded", stopped_at="2026-11-20T10:01:00Z",
                      answer={"outcome": "success"}, exit_code=0)


def raw_run(world: World, run_id: str) -> dict[str, Any]:
    return world.ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{run_id}"},
                                                    "sk": {"S": "RUN"}})["Item"]


def test_item_transitions_move_shards_and_never_the_run_record(world, store):
    # Given a run of 70 items (more than the shards)
    run = RunRecord("r1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z", total=70,
                    expires_at=1_900_000_000)
    assert store.create_run(run)
    before = raw_run(world, "r1")
    # When every item begins, and 40 succeed
    attempts = [begin(store, "r1", i) for i in range(70)]
    for a in attempts[:40]:
        assert store.settle_attempt(a, done())
    # Then the run record was never written, and its totals are the count of item states
    assert raw_run(world, "r1") == before
    got = store.get_run("r1")
    assert got is not None and (got.count("SUCCEEDED"), got.count("RUNNING"),
                                got.count("PENDING")) == (40, 30, 0)
    states = [i.status for i in store.items("r1")]
    assert states.count("SUCCEEDED") == 40 and states.count("RUNNING") == 30
    # and each counter shard carries the run's TTL
    shards = [r for r in store.partition("r1") if r["sk"].startswith("RUN#COUNT#")]
    assert len(shards) == SHARDS and {int(s["expires_at"]) for s in shards} == {1_900_000_000}


def test_a_finished_run_s_totals_are_final(store):
    # Given a run with one item running, then finished
    assert store.create_run(RunRecord("r2", "analyzer", "RUNNING", "2026-11-20T10:00:00Z",
                                      total=2, expires_at=1_900_000_000))
    attempt = begin(store, "r2", 0)
    assert store.finish_run("r2", "ABORTED", "2026-11-20T10:02:00Z", "stopped")
    # When the straggler's stop is recorded, or a never-launched item settled
    assert store.settle_attempt(attempt, done()) is None
    assert store.settle_item("r2", 1, "ABORTED", "never launched") is False
    # Then the totals are those the run finished with
    got = store.get_run("r2")
    assert got is not None and got.status == "ABORTED"
    assert (got.count("RUNNING"), got.count("SUCCEEDED"), got.count("ABORTED")) == (1, 0, 0)


def test_open_attempts_are_found_per_run_and_over_every_running_run(store):
    # Given two running runs with open attempts and a finished one
    for run_id in ("a", "b", "c"):
        assert store.create_run(RunRecord(run_id, "analyzer", "RUNNING",
                                          "2026-11-20T10:00:00Z", total=2))
        begin(store, run_id, 0)
    store.finish_run("c", "ABORTED", "2026-11-20T10:02:00Z", "stopped")
    # When listed / Then per run, and over every RUNNING run (as Reconcile reads them)
    assert [(a.run_id, a.index) for a in store.open_attempts("a")] == [("a", 0)]
    assert sorted(a.run_id for a in store.open_attempts()) == ["a", "b"]


def test_recent_runs_walk_back_over_the_years(store):
    # Given runs started in three years
    for run_id, at in (("old", "2024-05-01T00:00:00Z"), ("mid", "2025-12-31T23:00:00Z"),
                       ("new", "2026-01-02T00:00:00Z")):
        assert store.create_run(RunRecord(run_id, "analyzer", "RUNNING", at, total=1))
    # When listed / Then newest first, across the year partitions, at most the limit
    assert [r.run_id for r in store.recent_runs(None, 2)] == ["new", "mid"]
    assert [r.run_id for r in store.recent_runs(None, 10)] == ["new", "mid", "old"]
    # and since a moment, only the runs started at or after it, of every job or of one
    since = "2025-06-01T00:00:00Z"
    assert list(writes.run_ids(store.client, TABLE, None, 2026, since=since)) == ["new", "mid"]
    assert list(writes.run_ids(store.client, TABLE, "analyzer", 2026, since=since)) == [
        "new", "mid"]


def test_the_timeout_counts_from_the_task_start_when_a_stop_event_attaches_it(store):
    # Given a queued attempt created at 10:00 with a 600 s timeout, whose task the
    # dispatcher started at 10:30 but died before attaching it
    assert store.create_run(RunRecord("r3", "analyzer", "RUNNING", "2026-11-20T10:00:00Z",
                                      total=1))
    attempt = AttemptRecord("r3", 0, 1, client_token="c", task_token="t", queued=True,
                            created_at="2026-11-20T10:00:00.000000Z",
                            deadline="2026-11-20T10:10:00.000000Z")
    assert store.begin_attempt(ItemRecord("r3", 0, "PENDING"), attempt)
    # When its task is attached without a deadline (as Record and Reconcile do)
    assert store.attach_task("r3", 0, 1, "arn:task/1", "2026-11-20T10:30:00.000000Z")
    # Then its deadline is 600 s after the start, not the queueing
    got = store.get_attempt("r3", 0, 1)
    assert got is not None and got.deadline == "2026-11-20T10:40:00.000000Z"


# --- under emulated contention ------------------------------------------------------------

@pytest.fixture
def conflicts() -> Iterator[Contention]:
    """Every transaction that meets another caller's write on an item within the window
    is cancelled (``ddb_conflict=1``)."""
    rolled: list[str] = []

    def roll(name: str) -> bool:
        rolled.append(name)
        return True

    ticks = iter(range(1_000_000))
    # The emulation's clock moves 10 ms at each write: a write 6 writes later is past the
    # window, whatever the machine's speed.
    made = Contention(1.0, 0.0, roll=roll, note=lambda name: None,
                      clock=lambda: next(ticks) * 0.01)
    made.rolled = rolled  # type: ignore[attr-defined]
    restore = contention(made)
    try:
        yield made
    finally:
        restore()


def from_another_caller(fn: Any) -> None:
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join()


class OldStore(DynamoRecords):
    """The design before: any cancelled transaction read as a lost race."""

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except self.client.exceptions.TransactionCanceledException:
            return False
        return True


def test_old_design_reads_a_conflict_as_a_lost_race_and_drops_the_stop(world, conflicts,
                                                                       monkeypatch):
    # Given an attempt running, and another caller writing its item at the same moment
    store = OldStore(TABLE)
    assert store.create_run(RunRecord("o1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z",
                                      total=1))
    attempt = begin(store, "o1", 0)
    from_another_caller(lambda: store.mark_answered("o1", 0, 1))
    # When its STOPPED event is recorded: the transaction is cancelled (TransactionConflict)
    assert not conflicts.rolled  # type: ignore[attr-defined]
    # Then the old store answers "another writer won": the event would be acknowledged as
    # ignored while the attempt is still open and its item still RUNNING
    assert store.settle_attempt(attempt, done()) is None
    assert conflicts.rolled == ["ddb_conflict"]  # type: ignore[attr-defined]
    still = store.get_attempt("o1", 0, 1)
    assert still is not None and still.is_open


def test_a_conflict_is_retried_until_it_goes_through(world, conflicts, monkeypatch):
    # Given the same meeting of two callers on the item
    store = DynamoRecords(TABLE)
    assert store.create_run(RunRecord("n1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z",
                                      total=1))
    attempt = begin(store, "n1", 0)
    from_another_caller(lambda: store.mark_answered("n1", 0, 1))
    # When the STOPPED event is recorded / Then the transaction was cancelled for the
    # conflict, retried past the other caller's write, and the attempt settled
    assert store.settle_attempt(attempt, done()) is not None
    assert conflicts.rolled.count("ddb_conflict") >= 3  # type: ignore[attr-defined]
    got = store.get_run("n1")
    assert got is not None and got.count("SUCCEEDED") == 1


def test_a_conflict_that_lasts_is_raised_for_the_event_to_be_retried(world, conflicts,
                                                                     monkeypatch):
    # Given another caller writing the item all the time
    store = DynamoRecords(TABLE)
    assert store.create_run(RunRecord("n2", "analyzer", "RUNNING", "2026-11-20T10:00:00Z",
                                      total=1))
    attempt = begin(store, "n2", 0)
    monkeypatch.setattr(conflicts, "clock", lambda: 0.0)  # every write "at once"
    from_another_caller(lambda: store.mark_answered("n2", 0, 1))
    monkeypatch.setattr(writes, "sleep_for", lambda tried: 0.0)
    # When the STOPPED event is recorded / Then it raises (Lambda retries the event)
    with pytest.raises(ContentionError):
        store.settle_attempt(attempt, done())
    assert store.get_attempt("n2", 0, 1).is_open  # type: ignore[union-attr]


def test_a_hot_key_is_throttled_and_the_store_waits_its_turn(world, monkeypatch):
    # Given one item allowed 3 write units a second (a transactional write costs 2), and
    # an emulated clock that moves 0.3 s at each write
    ticks = iter(range(1_000_000))
    noted: list[str] = []
    restore = contention(Contention(0.0, 3.0, roll=lambda name: False, note=noted.append,
                                    clock=lambda: next(ticks) * 0.3))
    monkeypatch.setattr(writes, "sleep_for", lambda tried: 0.0)
    try:
        store = DynamoRecords(TABLE)
        assert store.create_run(RunRecord("h1", "analyzer", "RUNNING",
                                          "2026-11-20T10:00:00Z", total=2))
        # When two items of one shard begin at once (their shard is the hot key)
        begin(store, "h1", 0)
        begin(store, "h1", SHARDS)
        # Then the second was throttled, retried, and both are counted
        assert noted and set(noted) == {"ddb_hot_key"}
        got = store.get_run("h1")
        assert got is not None and got.count("RUNNING") == 2
        # and a plain write over the budget is refused as DynamoDB refuses it
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError

        once = boto3.client("dynamodb", region_name=world.ddb.meta.region_name,
                            config=Config(retries={"total_max_attempts": 1}))
        key = {"pk": {"S": "HOT"}, "sk": {"S": "x"}}
        for _ in range(3):
            once.put_item(TableName=TABLE, Item=key)
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            once.put_item(TableName=TABLE, Item=key)
    finally:
        restore()
