"""The in-memory records store behaves as the DynamoDB one: same calls, same answers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from fanout.records.dynamo import DynamoRecords
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord, Settlement
from fanout.records.store import RecordsStore
from fanout.testing.records import MemoryRecords
from tests.integration.conftest import TABLE, World


@pytest.fixture(params=["memory", "dynamodb", "dynamodb-direct"])
def records(request: pytest.FixtureRequest) -> Iterator[RecordsStore]:
    if request.param == "memory":
        yield MemoryRecords()
    elif request.param == "dynamodb":
        request.getfixturevalue("world")
        yield DynamoRecords(TABLE)
    else:  # the local mode's client: moto's handler called without the HTTP round trip
        from fanout.local.aws import ACCOUNT
        from fanout.local.direct import HOT_OPERATIONS, DirectClient

        world: World = request.getfixturevalue("world")
        direct = DirectClient(world.ddb, HOT_OPERATIONS["dynamodb"], account=ACCOUNT,
                              region=world.ddb.meta.region_name)
        yield DynamoRecords(TABLE, client=direct)


def run(records: RecordsStore, total: int = 3) -> RunRecord:
    record = RunRecord("r1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z", total=total,
                       settings={"retry": {"max_attempts": 2}})
    assert records.create_run(record) is True
    return record


def attempt(n: int, index: int = 0) -> AttemptRecord:
    return AttemptRecord("r1", index, n, client_token=f"ct{n}", task_token=f"tt{n}",
                         created_at="2026-11-20T10:00:00Z", started_at="2026-11-20T10:00:00Z")


def ended(status: str, item_status: str | None) -> Settlement:
    return Settlement(status=status, item_status=item_status,  # type: ignore[arg-type]
                      stop_class="exit_nonzero", stopped_at="2026-11-20T10:01:00Z",
                      answer={"outcome": "fail"}, exit_code=1)


def test_a_run_is_created_once(records: RecordsStore) -> None:
    # Given a run, When it is created again, Then the second create loses
    first = run(records)
    assert records.create_run(first) is False
    got = records.get_run("r1")
    assert got is not None and got.totals()["pending"] == 3


def test_an_attempt_begins_once_and_moves_the_counters(records: RecordsStore) -> None:
    # Given a run
    run(records)
    item = ItemRecord("r1", 0, "PENDING", params={"year": 1999})
    # When attempt 1 begins twice
    won, lost = records.begin_attempt(item, attempt(1)), records.begin_attempt(item, attempt(1))
    # Then once only; the item runs and the run counts it
    assert (won, lost) == (True, False)
    got = records.get_item("r1", 0)
    assert got is not None and (got.status, got.attempts, got.open_attempt) == ("RUNNING", 1, 1)
    assert records.get_run("r1").totals()["running"] == 1  # type: ignore[union-attr]
    assert [a.attempt for a in records.open_attempts("r1")] == [1]


def test_launch_lease_lets_one_caller_run_the_task(records: RecordsStore) -> None:
    # Given an attempt queued for its launch
    run(records)
    records.begin_attempt(ItemRecord("r1", 0, "PENDING"), replace(attempt(1), queued=True))
    now, until = "2026-11-20T10:00:00Z", "2026-11-20T10:02:00Z"
    # When two callers claim it, Then one wins, and each is told the attempt as it is
    won, mine = records.claim_launch("r1", 0, 1, now, until)
    lost, theirs = records.claim_launch("r1", 0, 1, now, until)
    assert (won, lost) == (True, False)
    assert mine is not None and mine.launch_lease_until == until and mine.queued
    assert theirs is not None and theirs.launch_lease_until == until
    assert theirs.task_token == "tt1"  # the token Launch stored is left as it is
    # And after the lease runs out another caller may claim it
    assert records.claim_launch("r1", 0, 1, "2026-11-20T10:03:00Z", "x")[0] is True
    # And an attempt that is not there is told as None, never claimed
    assert records.claim_launch("r1", 0, 9, now, until) == (False, None)


def test_settling_twice_counts_once(records: RecordsStore) -> None:
    # Given a running attempt
    run(records)
    records.begin_attempt(ItemRecord("r1", 0, "PENDING"), attempt(1))
    records.attach_task("r1", 0, 1, "arn:task/1", "2026-11-20T10:00:05Z")
    # When it is settled twice
    first = records.settle_attempt(attempt(1), ended("FAILED", "FAILED"))
    second = records.settle_attempt(attempt(1), ended("FAILED", "FAILED"))
    # Then once, answered with the attempt exactly as stored (its task included, though
    # the caller read it before the task was attached); the item and the run agree; the
    # task finds its attempt
    assert first is not None and second is None
    assert first == records.get_attempt("r1", 0, 1)
    assert (first.task_arn, first.status, first.is_open) == ("arn:task/1", "FAILED", False)
    assert records.get_item("r1", 0).status == "FAILED"  # type: ignore[union-attr]
    assert records.get_run("r1").totals()["failed"] == 1  # type: ignore[union-attr]
    assert records.get_run("r1").totals()["running"] == 0  # type: ignore[union-attr]
    assert records.find_task("arn:task/1") == ("r1", 0, 1)
    assert records.open_attempts() == []


def test_a_settlement_answers_the_attempt_as_stored_with_its_newest_token(
        records: RecordsStore) -> None:
    # Given a running attempt, read by a caller before a retried Launch stored a newer token
    run(records)
    records.begin_attempt(ItemRecord("r1", 0, "PENDING"), attempt(1))
    records.attach_task("r1", 0, 1, "arn:task/1", "2026-11-20T10:00:05Z")
    read = records.get_attempt("r1", 0, 1)
    assert read is not None
    assert records.keep_token("r1", 0, 1, "newer") is True
    # When that caller settles it with every field of a settlement given
    done = records.settle_attempt(read, Settlement(
        status="RETRY", item_status=None, stop_class="exit_nonzero",
        stopped_at="2026-11-20T10:01:00Z", answer={"outcome": "retry", "error": "E"},
        exit_code=3, stop_code="EssentialContainerExited", stopped_reason="exited",
        started_at="2026-11-20T10:00:06Z", duration_seconds=54.25, log_stream="job/t/1",
        event_version=4, reason="exit code 3", log_tail=["a", "b"],
        image_digest="sha256:00"))
    # Then what it is told is the record as stored, field for field: the newest token is
    # the one its answer goes to
    assert done is not None and done == records.get_attempt("r1", 0, 1)
    assert (done.task_token, done.duration_seconds, done.is_open) == ("newer", 54.25, False)


def test_retry_keeps_the_item_running_for_the_next_attempt(records: RecordsStore) -> None:
    # Given attempt 1 ended in a retry
    run(records)
    records.begin_attempt(ItemRecord("r1", 0, "PENDING"), attempt(1))
    records.settle_attempt(attempt(1), ended("RETRY", None))
    # When attempt 2 begins (twice), Then once, and attempt 3 cannot skip ahead
    item = records.get_item("r1", 0)
    assert item is not None and item.open_attempt is None and item.status == "RUNNING"
    assert records.begin_attempt(item, attempt(2)) is True
    assert records.begin_attempt(item, attempt(2)) is False
    assert records.begin_attempt(item, attempt(3)) is False
    assert records.get_run("r1").totals()["running"] == 1  # type: ignore[union-attr]


def test_settle_item_and_finish(records: RecordsStore) -> None:
    # Given an item never launched
    run(records, total=2)
    # When it is settled ABORTED (twice) and the run finishes
    assert records.settle_item("r1", 1, "ABORTED", "never launched") is True
    assert records.settle_item("r1", 1, "ABORTED", "never launched") is False
    assert records.finish_run("r1", "FAILED", "2026-11-20T11:00:00Z", "s") is True
    # Then the run is closed once and its counters no longer move
    assert records.finish_run("r1", "FAILED", "2026-11-20T11:00:00Z", "s") is False
    assert records.settle_item("r1", 0, "ABORTED", "late") is False
    totals = records.get_run("r1").totals()  # type: ignore[union-attr]
    assert (totals["aborted"], totals["pending"]) == (1, 1)
    assert [i.index for i in records.items("r1")] == [1]


def test_the_spec_is_its_own_record_and_the_run_record_stays_small(
        records: RecordsStore) -> None:
    # Given a run created with a large inline spec
    spec = {"job": "analyzer", "items": [{"n": i, "pad": "x" * 50} for i in range(300)]}
    record = RunRecord("r1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z", total=300,
                       settings={"expires_at": 1_900_000_000}, expires_at=1_900_000_000)
    assert records.create_run(record, spec=spec) is True
    # When it is read back
    got, got_spec = records.get_run("r1"), records.get_spec("r1")
    # Then the spec is there as given, and the run record does not carry it
    assert got_spec == spec
    assert got is not None and got.expires_at == 1_900_000_000
    assert "spec" not in got.__dict__
    # And a run created without a spec has none
    assert records.get_spec("r2") is None


def test_records_carry_their_expiry_from_the_first_write(records: RecordsStore) -> None:
    # Given a run whose records expire at a fixed time
    exp = 1_900_000_000
    records.create_run(RunRecord("r1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z",
                                 total=2, expires_at=exp), spec={"job": "analyzer"})
    # When item 0 launches and item 1 is settled without ever launching
    item = ItemRecord("r1", 0, "PENDING", params={"year": 1999}, expires_at=exp)
    records.begin_attempt(item, replace(attempt(1), expires_at=exp))
    records.attach_task("r1", 0, 1, "arn:task/1", "2026-11-20T10:00:05Z", expires_at=exp)
    never = ItemRecord("r1", 1, "PENDING", params={"year": 2000}, command=["-y", "2000"],
                       environment={"YEAR": "2000"}, expires_at=exp)
    assert records.settle_item("r1", 1, "ABORTED", "never launched", first=never) is True
    # Then every record carries the expiry, and the never-launched item its manifest line
    assert records.get_item("r1", 0).expires_at == exp  # type: ignore[union-attr]
    assert records.get_attempt("r1", 0, 1).expires_at == exp  # type: ignore[union-attr]
    aborted = records.get_item("r1", 1)
    assert aborted is not None and aborted.expires_at == exp
    assert (aborted.status, aborted.params, aborted.command, aborted.environment,
            aborted.attempts) == ("ABORTED", {"year": 2000}, ["-y", "2000"], {"YEAR": "2000"}, 0)
    # And finishing the run keeps the expiry it was created with
    assert records.finish_run("r1", "FAILED", "2026-11-20T11:00:00Z", "s") is True
    assert records.get_run("r1").expires_at == exp  # type: ignore[union-attr]


def test_world_fixture_is_real(world: World) -> None:
    # Given the emulated table, Then it has the indexes the store queries
    described = world.ddb.describe_table(TableName=TABLE)["Table"]
    assert {i["IndexName"] for i in described["GlobalSecondaryIndexes"]} == {
        "by_job", "by_time", "open_attempts"}


def test_a_schedule_slot_is_claimed_once(records: RecordsStore) -> None:
    # Given a slot claimed by one run
    assert records.claim_slot("nightly", "2026-11-20T03:00:00Z", "r1", 2_000_000_000) == "r1"
    # When another run claims it, Then the first keeps it; a retry of the first goes on
    assert records.claim_slot("nightly", "2026-11-20T03:00:00Z", "r2", 2_000_000_000) == "r1"
    assert records.claim_slot("nightly", "2026-11-20T03:00:00Z", "r1", 2_000_000_000) == "r1"
    # And another scheduled time is another slot
    assert records.claim_slot("nightly", "2026-11-21T03:00:00Z", "r2", 2_000_000_000) == "r2"


def test_recent_runs_are_newest_first_and_by_job(records: RecordsStore) -> None:
    # Given three runs of two jobs
    for run_id, job, at in (("a", "analyzer", "2026-11-20T10:00:00Z"),
                            ("b", "other", "2026-11-20T11:00:00Z"),
                            ("c", "analyzer", "2026-11-20T12:00:00Z")):
        assert records.create_run(RunRecord(run_id, job, "RUNNING", at, total=1))
    # When listed / Then newest first, at most the limit, of the job when given
    assert [r.run_id for r in records.recent_runs(None, 2)] == ["c", "b"]
    assert [r.run_id for r in records.recent_runs("analyzer", 20)] == ["c", "a"]


def test_a_run_s_partition_holds_its_run_spec_items_and_attempts(records: RecordsStore) -> None:
    # Given a run with its spec, one item and its attempt
    record = RunRecord("r1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z", total=1)
    assert records.create_run(record, spec={"job": "analyzer"})
    assert records.begin_attempt(ItemRecord("r1", 0, "PENDING"), attempt(1))
    # When the partition is read / Then every record of the run is there (and, on DynamoDB,
    # the counter shard its item moved)
    stored = list(records.partition("r1"))
    shards = [r for r in stored if str(r.get("sk", "")).startswith("RUN#COUNT#")]
    assert len(stored) - len(shards) == 4 and len(shards) <= 1
    assert list(records.partition("other")) == []


def test_what_an_item_wrote_is_kept_on_it_when_it_ends(records: RecordsStore) -> None:
    # Given an item whose first attempt is retried, then whose second succeeds
    run(records)
    records.begin_attempt(ItemRecord("r1", 0, "PENDING"), attempt(1))
    first = {"location": "s3://b/runs/r1/outputs/0/", "entries": [{"key": "x", "size": 1}],
             "count": 1, "bytes": 1}
    records.settle_attempt(attempt(1), replace(ended("RETRY", None), outputs=first))
    item = records.get_item("r1", 0)
    assert item is not None and item.outputs is None  # only an ending is recorded
    records.begin_attempt(item, attempt(2))
    wrote = {**first, "entries": [{"key": "result.csv", "size": 12}], "bytes": 12}
    # When it ends
    records.settle_attempt(attempt(2), replace(ended("SUCCEEDED", "SUCCEEDED"), outputs=wrote))
    # Then its record keeps what it wrote, as written
    got = records.get_item("r1", 0)
    assert got is not None and got.outputs == wrote
