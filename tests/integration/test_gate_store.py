"""The in-memory launch gate store behaves as the DynamoDB one: same calls, same answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fanout.records.dynamo import DynamoRecords
from fanout.records.gate_store import GateStore
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord, Settlement
from fanout.records.store import RecordsStore
from fanout.testing.gate_store import MemoryGateStore
from fanout.testing.records import MemoryRecords
from tests.integration.conftest import TABLE

Stores = tuple[RecordsStore, GateStore]


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    """The records store and the gate store over the same records."""
    if request.param == "memory":
        records = MemoryRecords()
        yield records, MemoryGateStore(records)
    else:
        request.getfixturevalue("world")
        dynamo = DynamoRecords(TABLE)
        yield dynamo, dynamo


def queued(records: RecordsStore, index: int, capacity: str = "FARGATE",
           created_at: str = "2026-11-20T10:00:00.000000Z") -> AttemptRecord:
    """Attempt 1 of item ``index`` of run r1, begun and queued as Launch does it."""
    if records.get_run("r1") is None:
        records.create_run(RunRecord("r1", "analyzer", "RUNNING", "2026-11-20T10:00:00Z",
                                     total=10))
    attempt = AttemptRecord("r1", index, 1, client_token=f"ct{index}", task_token=f"tt{index}",
                            capacity=capacity, created_at=created_at, started_at=created_at,
                            queued=True)
    assert records.begin_attempt(ItemRecord("r1", index, "PENDING"), attempt) is True
    return attempt


def test_the_queue_is_oldest_first_per_capacity_type_and_left_when_the_task_starts(
        stores: Stores) -> None:
    records, gate = stores
    # Given three attempts queued, two on FARGATE (the later one first) and one on Spot
    queued(records, 0, created_at="2026-11-20T10:00:02.000000Z")
    queued(records, 1, created_at="2026-11-20T10:00:01.000000Z")
    queued(records, 2, capacity="FARGATE_SPOT")
    # When the queues are read, Then each holds its own, oldest first, as many as asked
    assert [e.index for e in gate.queue_entries("FARGATE", 10)] == [1, 0]
    assert [e.index for e in gate.queue_entries("FARGATE", 1)] == [1]
    [spot] = gate.queue_entries("FARGATE_SPOT", 10)
    assert (spot.run_id, spot.index, spot.attempt, spot.capacity) == ("r1", 2, 1, "FARGATE_SPOT")
    # When item 1's task starts, Then its entry leaves the queue
    assert records.attach_task("r1", 1, 1, "arn:task/1", "2026-11-20T10:00:03.000000Z") is True
    assert [e.index for e in gate.queue_entries("FARGATE", 10)] == [0]
    # And an entry dropped is gone
    gate.drop_entry(spot.sk)
    assert gate.queue_entries("FARGATE_SPOT", 10) == []


def test_one_dispatcher_holds_the_lease_and_wake_ups_are_rare(stores: Stores) -> None:
    _, gate = stores
    # Given a dispatcher holding the lease
    assert gate.acquire_lease("a", 60) is True
    # Then another cannot take it, the holder can renew it, and nobody is woken
    assert gate.acquire_lease("b", 60) is False
    assert gate.acquire_lease("a", 60) is True
    assert gate.claim_wake(again=True) is False
    # When another owner releases, nothing changes; when the holder does, b takes it
    gate.release_lease("b")
    assert gate.acquire_lease("b", 60) is False
    gate.release_lease("a")
    assert gate.acquire_lease("b", 60) is True
    gate.release_lease("b")
    # And with no lease held, one wake-up goes through, the next only when asked again
    assert gate.claim_wake(again=False) is True
    assert gate.claim_wake(again=False) is False
    assert gate.claim_wake(again=True) is True


def test_a_launch_reads_the_lease_consistently_and_writes_only_to_wake(world: None) -> None:
    # Given the DynamoDB gate store, its calls to DynamoDB seen as they are made
    gate = DynamoRecords(TABLE)
    calls: list[tuple[str, dict[str, object]]] = []

    def seen(params: dict[str, object], model: object, **_: object) -> None:
        calls.append((getattr(model, "name", ""), params))

    gate.client.meta.events.register("provide-client-params.dynamodb.*", seen)
    # When a Launch asks to wake the dispatcher while one holds the lease
    assert gate.acquire_lease("a", 60) is True
    calls.clear()
    assert gate.claim_wake(again=False) is False
    # Then it only read the lease, strongly consistent (ADR 0022: an eventually consistent
    # read could show a lease given up after the dispatcher's last look at the queue)
    assert [(op, p.get("ConsistentRead")) for op, p in calls] == [("GetItem", True)]
    # And when no dispatcher holds it, the read is followed by the conditional write
    gate.release_lease("a")
    calls.clear()
    assert gate.claim_wake(again=False) is True
    assert [op for op, _ in calls] == ["GetItem", "UpdateItem"]


def test_a_jobs_slots_are_taken_up_to_its_limit_and_given_back(stores: Stores) -> None:
    records, gate = stores
    # Given three queued attempts of a job that may run 2 tasks at once
    first, second, third = (queued(records, i) for i in range(3))
    # When each takes a slot, Then the third is refused, and one attempt holds one slot
    assert gate.take_slot(first, "analyzer", 2) is True
    assert gate.take_slot(first, "analyzer", 2) is False
    assert gate.take_slot(second, "analyzer", 2) is True
    assert gate.take_slot(third, "analyzer", 2) is False
    assert gate.running_of("analyzer") == 2
    # When a refused launch gives its slot back, Then the third gets one
    assert gate.give_slot(second, "analyzer") is True
    assert gate.give_slot(second, "analyzer") is False
    assert gate.take_slot(third, "analyzer", 2) is True
    # When an attempt holding a slot settles, Then its slot goes back
    held = records.get_attempt("r1", 0, 1)
    assert held is not None and held.slot == "analyzer"
    assert records.settle_attempt(held, Settlement(
        status="FAILED", item_status="FAILED", stop_class="exit_nonzero",
        stopped_at="2026-11-20T10:01:00Z", answer={"outcome": "fail"})) is not None
    assert gate.running_of("analyzer") == 1


def test_a_buckets_state_is_kept_between_dispatchers(stores: Stores) -> None:
    _, gate = stores
    # Given no bucket saved, Then none is read
    assert gate.bucket_state("FARGATE") == {}
    # When one is saved, Then it is read back as saved, per capacity type
    state = {"tokens": 3.5, "current": 20.0, "at": 1800000000.25, "blocked_until": 0.0,
             "backoff": 2.0}
    gate.save_bucket("FARGATE", state)
    assert gate.bucket_state("FARGATE") == pytest.approx(state)
    assert gate.bucket_state("FARGATE_SPOT") == {}
