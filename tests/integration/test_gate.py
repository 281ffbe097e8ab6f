"""The launch gate under moto: a job's max_running across runs, the dispatcher's lease."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from fanout.runtime.clock import SystemTimer
from fanout.testing.callbacks import MemoryCallbacks
from tests.integration.conftest import CLUSTER, DISPATCHER, World, event
from tests.integration.helpers import call, manifest, start_run, store


@pytest.fixture
def answers(world: World) -> MemoryCallbacks:
    from fanout.runtime import context

    fake = MemoryCallbacks()
    context.use(callbacks=fake)
    return fake


class WaitBudget(SystemTimer):
    """The machine's time, but the dispatcher's budget counts only its waits: what it does
    in between takes what moto takes on a loaded machine, and is always done."""

    def __init__(self) -> None:
        self.waited = 0.0

    def monotonic(self) -> float:
        return self.waited

    def sleep(self, seconds: float) -> None:
        self.waited += seconds
        time.sleep(seconds)


def dispatch_once(answers: MemoryCallbacks) -> dict[str, Any]:
    """One dispatcher invocation with a short budget (it loops while capped items wait)."""
    from fanout.runtime import context
    from fanout.runtime.dispatch import Dispatcher
    from fanout.runtime.gate import Gate
    from fanout.settings import DispatchEnv

    return Dispatcher(env=DispatchEnv.from_env(), store=store(), gate=Gate(store(), DISPATCHER),
                      launcher=context.launcher(CLUSTER), callbacks=answers,
                      timer=WaitBudget()).run(0.5)


def stop(world: World, task: dict[str, Any]) -> None:
    """The task ends (exit 0) and its STOPPED event reaches Record, with real times."""
    from fanout.runtime.clock import iso, utcnow

    tags = {t["key"]: t["value"] for t in task["tags"]}
    run_id, index, attempt = tags["fanout:run"], int(tags["fanout:item"]), int(
        tags["fanout:attempt"])
    world.ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason="done")
    record = store().get_attempt(run_id, index, attempt)
    assert record is not None
    e = event("success", task_arn=task["taskArn"], run_id=run_id, index=index,
              attempt=attempt)
    e["detail"]["startedAt"] = record.started_at
    e["detail"]["stoppedAt"] = iso(utcnow())
    assert call("record", e)["result"] == "success"


def most_at_once(intervals: list[tuple[str, str]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, change in edges:
        running += change
        most = max(most, running)
    return most


def test_two_runs_of_a_job_with_max_running_never_run_more_than_it(
        world: World, answers: MemoryCallbacks, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the job analyzer may run 4 tasks at once, and two runs of it, 6 items each
    monkeypatch.setenv("FANOUT_MAX_RUNNING", json.dumps({"analyzer": 4}))
    spec = {"job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 2006}}},
            "max_concurrency": 6}
    runs = ("run-a", "run-b")
    for run_id in runs:
        start_run(run_id, spec)
        for item in manifest(world, run_id):
            call("launch", {"token": f"{run_id}-{item['index']}", "run_id": run_id,
                            "item": item})
    # When the dispatcher runs, and tasks end two at a time, until every item is done
    rounds = 0
    whys: set[str] = set()
    while store().running_of("analyzer") or any(
            (store().get_run(r) or pytest.fail("no run")).count("SUCCEEDED") < 6 for r in runs):
        rounds += 1
        assert rounds < 30, "the items never all ran"
        dispatch_once(answers)
        running = world.tasks()
        whys |= {str((i.waiting or {}).get("why")) for r in runs for i in store().items(r)
                 if i.waiting}
        # Then never more than 4 of the job's tasks run, whichever run they belong to
        assert len(running) <= 4
        for task in running[:2]:
            stop(world, task)
    # And the attempts' own intervals say the same, with the cap reached
    attempts = [a for r in runs for a in store().attempts(r)]
    assert len(attempts) == 12 and all(a.status == "SUCCEEDED" for a in attempts)
    intervals = [(str(a.started_at), str(a.stopped_at)) for a in attempts]
    assert most_at_once(intervals) == 4
    # And items held back by the cap said so while they waited
    assert "job analyzer has 4 tasks running (max_running)" in whys
    # And every slot was given back
    assert store().running_of("analyzer") == 0


def test_only_one_dispatcher_drains_the_queue(world: World, answers: MemoryCallbacks) -> None:
    # Given a dispatcher that holds the lease
    from fanout.runtime.gate import Gate

    gate = Gate(store(), DISPATCHER)
    assert gate.acquire("someone", 60) is True
    # When another is invoked, Then it leaves at once, launching nothing
    assert dispatch_once(answers) == {"result": "another dispatcher holds the lease"}
    # And a Launch meanwhile does not wake a second one
    assert gate.wake() is False
    # When the first gives its lease up, Then a wake-up goes through
    gate.release("someone")
    assert gate.wake() is True and world.wakes.calls == [DISPATCHER]
