"""Closing a run page by page: Finalize and Abort over several invocations, under moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fanout.records.dynamo import DynamoRecords
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime import context
from fanout.runtime.abort import ExecutionStatusChange, abort
from fanout.runtime.closing import Budget
from fanout.runtime.finalize import FinalizeInput, finalize
from fanout.testing.callbacks import MemoryCallbacks
from fanout.testing.records import MemoryRecords
from tests.integration.conftest import BUCKET, CLUSTER, TABLE, World
from tests.integration.helpers import call, item_states, launch, start_run, stopped, store, totals

#: Items per run here (the world's item cap is 50).
N = 40


@pytest.fixture
def answers(world: World) -> MemoryCallbacks:
    fake = MemoryCallbacks()
    context.use(callbacks=fake)
    return fake


def ticks(step: float = 1.0) -> Iterator[float]:
    now = 0.0
    while True:
        yield now
        now += step


def pages(n: int) -> Budget:
    """A budget of ``n`` pages per invocation (its clock ticks once per question)."""
    clock = ticks()
    return Budget(n - 0.5, clock=lambda: next(clock))


def cut_short_run(world: World, run_id: str) -> tuple[str, str]:
    """A run of N items whose map ended early: 0 and 1 succeeded, 2 failed, 3 still runs
    (its task returned), 4 runs, the rest never launched. Returns the two running tasks."""
    start_run(run_id, {"job": "analyzer", "retry": {"max_attempts": 1},
                       "params": {"year": {"range": {"start": 2000, "stop": 2000 + N}}}})
    for index, kind in enumerate(["success", "success", "exit-1"]):
        stopped(kind, launch(world, run_id, index, f"t{index}")["task_arn"], run_id, index, 1)
    return (launch(world, run_id, 3, "t3")["task_arn"], launch(world, run_id, 4, "t4")["task_arn"])


def finalize_loop(world: World, answers: MemoryCallbacks, run_id: str, per_invocation: int,
                  page_records: int, retry_each: bool = False) -> list[dict[str, Any]]:
    """Call Finalize as the state machine's loop does until it says done; with
    ``retry_each`` every invocation runs twice on its input (a retry after its writes)."""
    outcome: dict[str, Any] = {"run_id": run_id, "map_error": {"Error": "States.Timeout"}}
    results = []
    while True:
        for _ in range(2 if retry_each else 1):
            result = finalize(FinalizeInput(run_id=run_id, outcome=outcome),
                              store=context.records(TABLE), launcher=context.launcher(CLUSTER),
                              callbacks=answers, sns=world.sns, topic_arn=world.topic_arn,
                              s3=world.s3, bucket=BUCKET, budget=pages(per_invocation),
                              page_records=page_records)
            results.append(result)
        json.dumps(result)  # what Step Functions carries: plain JSON
        if result["done"]:
            return results
        outcome = result


@pytest.mark.parametrize("kind", ["dynamodb", "memory"])
def test_items_page_reads_every_item_once_a_page_at_a_time(world: World, kind: str) -> None:
    # Given a run of 12 whose items 0..9 are recorded but 4 and 7 (never launched); those not
    # a multiple of 3 have an attempt (it sorts after its item and counts toward a page)
    records: RecordsStore = DynamoRecords(TABLE) if kind == "dynamodb" else MemoryRecords()
    records.create_run(RunRecord("r", "analyzer", "RUNNING", "2026-11-20T10:00:00Z", total=12))
    for index in sorted(set(range(10)) - {4, 7}):
        item = ItemRecord("r", index, "PENDING", params={"i": index})
        if index % 3:
            assert records.begin_attempt(item, AttemptRecord(
                "r", index, 1, f"r-{index}-1", "token", created_at="2026-11-20T10:00:00Z"))
        else:
            assert records.settle_item("r", index, "ABORTED", "x", first=item)
    # When it is read three records at a time from the start
    seen: list[int] = []
    after, reads = -1, 0
    while after < 11:
        items, last = records.items_page("r", after, 3)
        # Then each page stays within the next three indexes, and moves on
        assert after < last <= after + 3
        assert all(after < i.index <= last for i in items)
        seen += [i.index for i in items]
        after, reads = last, reads + 1
    # And every recorded item came exactly once, in index order, never-launched ones not
    assert seen == [0, 1, 2, 3, 5, 6, 8, 9]
    assert reads >= 12 // 3


def test_finalize_closes_a_run_over_several_invocations(world: World,
                                                        answers: MemoryCallbacks) -> None:
    # Given a run of 40 items cut short: 2 succeeded, 1 failed, 2 running, 35 never launched
    running = cut_short_run(world, "run-big")
    # When Finalize runs as the state machine loops it: two pages of four records a turn
    results = finalize_loop(world, answers, "run-big", per_invocation=2, page_records=4)
    # Then it took several turns, each handing on a small cursor, and the run closed FAILED
    assert len(results) >= N // 8
    assert all(len(json.dumps(r)) < 2048 for r in results[:-1])
    final = results[-1]
    assert final["status"] == "FAILED" and final["done"] is True
    assert totals("run-big") == {"total": N, "pending": 0, "running": 0, "succeeded": 2,
                                 "failed": 1, "timed_out": 0, "aborted": N - 3, "waiting": 0}
    assert item_states("run-big") == {"succeeded": 2, "failed": 1, "aborted": N - 3}
    # And the running tasks were stopped
    assert not {t["taskArn"] for t in world.tasks()} & set(running)
    # And a never-launched item far into the run has its manifest line
    last = store().get_item("run-big", N - 1)
    assert last is not None and last.params == {"year": 2000 + N - 1}
    # And the summary lists the first 20 failed items in index order, then how many more
    listed = ", ".join(f"{i} ({'FAILED' if i == 2 else 'ABORTED'})" for i in range(2, 22))
    assert f"failed items: {listed} and {N - 2 - 20} more" in final["summary"]
    [message] = world.messages()
    assert [i["index"] for i in message["failed_items"]] == list(range(2, 22))
    assert message["failed_items"][0]["status"] == "FAILED"


def test_a_retried_finalize_invocation_settles_nothing_twice(world: World,
                                                             answers: MemoryCallbacks) -> None:
    # Given a run cut short
    cut_short_run(world, "run-retry")
    # When every Finalize invocation runs twice on the same cursor (retried after its writes)
    results = finalize_loop(world, answers, "run-retry", per_invocation=1, page_records=3,
                            retry_each=True)
    # Then each retry hands on a cursor no further than the first try's, listing the same
    # failed items up to it (the first try wrote the never-launched items' records: the
    # retry's page of as many records covers fewer indexes)
    for first, again in zip(results[0::2], results[1::2], strict=True):
        if not first["done"]:
            assert first["cursor"]["after"] - 3 < again["cursor"]["after"] \
                <= first["cursor"]["after"]
            assert again["cursor"]["failed"] == [
                i for i in first["cursor"]["failed"] if i <= again["cursor"]["after"]]
    # And the totals equal the item states, one message went out
    assert totals("run-retry")["aborted"] == N - 3 and totals("run-retry")["pending"] == 0
    assert item_states("run-retry") == {"succeeded": 2, "failed": 1, "aborted": N - 3}
    assert len(world.messages()) == 1


def test_finalize_of_a_run_that_succeeded_reads_no_item(world: World,
                                                        answers: MemoryCallbacks) -> None:
    # Given a run whose every item succeeded
    start_run("run-ok", {"job": "analyzer", "params": {"year": [1, 2]}})
    for index in (0, 1):
        stopped("success", launch(world, "run-ok", index, f"t{index}")["task_arn"], "run-ok",
                index, 1)
    # When Finalize runs with a budget of one page of one record
    results = finalize_loop(world, answers, "run-ok", per_invocation=1, page_records=1)
    # Then one invocation closed it: the counters say there is nothing to look for
    assert [r["status"] for r in results] == ["SUCCEEDED"]


def test_abort_continues_itself_until_the_run_is_closed(world: World,
                                                        answers: MemoryCallbacks) -> None:
    # Given a run of 40 items with two tasks running
    running = cut_short_run(world, "run-stop")
    event: dict[str, Any] = {"detail": {"name": "run-stop", "status": "ABORTED",
                                        "executionArn": "arn:aws:states:::execution:m:run-stop",
                                        "input": json.dumps({"job": "analyzer"}) + " " * 4000}}
    # When Abort runs with two pages of four records per invocation, each next one started
    # with the event the previous one handed on
    results = []
    while True:
        result = abort(ExecutionStatusChange.model_validate(event),
                       store=context.records(TABLE), launcher=context.launcher(CLUSTER),
                       callbacks=answers, sns=world.sns, topic_arn=world.topic_arn, s3=world.s3,
                       bucket=BUCKET, budget=pages(2), page_records=4)
        results.append(result)
        if "next_event" not in result:
            break
        event = result["next_event"]
        # (small: the execution's input is not carried on)
        assert len(json.dumps(event)) < 1024
    # Then it took several invocations and closed the run ABORTED with every item terminal
    assert len(results) >= N // 8 and results[-1]["result"] == "closed"
    run = store().get_run("run-stop")
    assert run is not None and run.status == "ABORTED"
    assert item_states("run-stop") == {"succeeded": 2, "failed": 1, "aborted": N - 3}
    assert not {t["taskArn"] for t in world.tasks()} & set(running)
    [message] = world.messages()
    assert message["status"] == "ABORTED" and len(message["failed_items"]) == 20


class SelfInvokes:
    """The Lambda client as Abort's handler uses it: its asynchronous invocations."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        self.calls.append((FunctionName, InvocationType, json.loads(Payload)))
        return {"StatusCode": 202}


def test_abort_handler_hands_on_to_its_own_function(world: World, answers: MemoryCallbacks,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a run of 40 items, and Abort's budget of one page of four records
    from fanout.aws import clients
    from tests.integration.helpers import Context

    cut_short_run(world, "run-hand")
    invokes = SelfInvokes()
    clients.provide("lambda", invokes)
    monkeypatch.setattr("fanout.runtime.closing.PAGE_RECORDS", 4)
    monkeypatch.setattr(Budget, "of", classmethod(lambda cls, ctx: pages(1)))
    # When its execution is stopped
    result = call("abort", {"detail": {"name": "run-hand", "status": "ABORTED"}})
    # Then the first invocation closed one page and invoked its own function, asynchronously,
    # with the cursor
    assert result["result"] == "continues"
    [(function, kind, event)] = invokes.calls
    assert (function, kind) == (Context.invoked_function_arn, "Event")
    # (items 0 and 1 and their attempts fill the page)
    assert event["cursor"]["after"] == 1 and event["detail"]["name"] == "run-hand"
    # And the next invocation goes on from there
    assert call("abort", event)["result"] == "continues"
    assert invokes.calls[-1][2]["cursor"]["after"] == 3
