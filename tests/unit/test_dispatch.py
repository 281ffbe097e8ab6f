"""The launch gate's dispatcher in fake time: Launch queues, the dispatcher paces RunTask.

The records and the gate's records are in memory, Fargate is a launcher in memory with its
own launch bucket and capacity outage, and time is a fake clock that moves only when the
dispatcher waits: a 180 s outage takes milliseconds. Each dispatcher invocation runs with
a Lambda's budget and, as on AWS, the next one starts when the last invoked it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest

from fanout.records.model import AttemptRecord, RunRecord
from fanout.runtime.clock import iso
from fanout.runtime.dispatch import Dispatcher, Ending
from fanout.runtime.gate import Gate
from fanout.runtime.launch import LaunchInput, ManifestItem, launch
from fanout.settings import DispatchEnv
from fanout.testing.callbacks import MemoryCallbacks
from fanout.testing.clock import FakeTimer, InlinePool
from fanout.testing.gate_store import MemoryGateStore
from fanout.testing.launcher import MemoryLauncher
from fanout.testing.records import MemoryRecords

RUN = "run-1"
#: The dispatcher's budget per invocation on AWS: its timeout (300 s) less its margin (20 s).
BUDGET = 280.0


@dataclass
class Deployment:
    """One deployment's control plane around the launch gate, in fake time."""

    timer: FakeTimer
    launcher: MemoryLauncher
    env: DispatchEnv
    records: MemoryRecords = field(default_factory=MemoryRecords)
    callbacks: MemoryCallbacks = field(default_factory=MemoryCallbacks)
    #: Asynchronous invocations of the dispatcher not yet run.
    invoked: list[str] = field(default_factory=list)
    #: What each dispatcher invocation answered.
    answers: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gates = MemoryGateStore(self.records, now=self.timer.time)
        self.gate = Gate(self.gates, self.env.fanout_dispatcher, invoke=self.invoked.append)

    def start_run(self, items: int) -> None:
        """A run of ``items`` items whose Launches all come at once (a Map's children)."""
        self.records.create_run(RunRecord(
            RUN, "prog", "RUNNING", iso(self.timer.utcnow()), total=items,
            settings={"capacity": "FARGATE", "timeout_seconds": 600}))
        for index in range(items):
            launch(LaunchInput(token=f"token-{index}", run_id=RUN,
                               item=ManifestItem(index=index, command=["--exit", "0"])),
                   store=self.records, callbacks=self.callbacks, gate=self.gate,
                   clock=self.timer.utcnow)

    def dispatch(self, budget: float = BUDGET) -> dict[str, Any]:
        """Run the dispatcher invocations that were asked for (and those they ask for)."""
        while self.invoked:
            self.invoked.pop(0)
            self.answers.append(self.dispatcher().run(budget))
        return self.answers[-1]

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(env=self.env, store=self.records, gate=self.gate,
                          launcher=self.launcher, callbacks=self.callbacks, timer=self.timer,
                          pool=InlinePool)

    def attempts(self) -> list[AttemptRecord]:
        return self.records.attempts(RUN)

    def waits(self) -> int:
        """Attempts that waited in the launch queue, as ``fanout local`` counts them."""
        return sum(1 for a in self.attempts() if a.waited or a.queued)


def deployment(*, burst: int = 100, per_second: float = 20.0,
               outage: float | None = None) -> Deployment:
    """The gate told Fargate's bucket (``burst``, ``per_second``), which the launcher also
    enforces; RunTask refused for capacity during the first ``outage`` seconds."""
    timer = FakeTimer()
    bucket = {"burst": burst, "per_second": per_second}
    env = DispatchEnv.model_validate({
        "fanout_table": "records", "fanout_cluster": "cluster", "fanout_dispatcher": "dispatch",
        "fanout_outputs": "s3://manifests",
        "fanout_task_definitions": {"prog": {"task_definition": "arn:td/prog:1",
                                             "container": "main"}},
        "fanout_subnets": "subnet-1", "fanout_security_groups": "sg-1",
        "fanout_launch_gate": {"FARGATE": bucket, "FARGATE_SPOT": bucket}})
    launcher = MemoryLauncher(now=timer.time, burst=burst, per_second=per_second,
                              outage=None if outage is None else (timer.time(),
                                                                  timer.time() + outage))
    return Deployment(timer, launcher, env)


def test_a_capacity_outage_of_three_minutes_loses_nothing_and_launches_resume() -> None:
    # Given 5 items, one attempt each, and Fargate refusing every launch for capacity
    # during the first 180 s (longer than the 2.5 minutes launches used to be retried);
    # the dispatcher runs a minute at a time, so the items can be looked at in between
    world = deployment(outage=180)
    began = iso(world.timer.utcnow())
    world.start_run(5)
    assert world.invoked == ["dispatch"]  # Launch woke the dispatcher, once
    # When the dispatcher has run for its first minute
    first = world.dispatcher()
    world.invoked.clear()
    answer = first.run(60)
    # Then it ran out of budget, asked for the next invocation, and nothing launched
    assert answer["result"] == Ending.AGAIN and world.invoked == ["dispatch"]
    assert answer["launched"] == 0 and answer["capacity"] > 0
    # And every item waits, saying why, since when and how many launches were refused
    items = list(world.records.items(RUN))
    assert [i.shown_status for i in items] == ["WAITING"] * 5
    for item in items:
        assert item.waiting is not None and item.waiting["why"] == "capacity unavailable"
        assert item.waiting["since"] == began and item.waiting["tries"] >= 1
    # When the dispatcher goes on, invocation after invocation, until the queue is empty
    last = world.dispatch(60)
    # Then it drained the queue after the outage ended
    assert last["result"] == Ending.DRAINED and not world.invoked
    # And every item launched exactly once, on its first attempt, after the outage
    tasks = world.launcher.launches(RUN)
    assert sorted(t.request.index for t in tasks) == [0, 1, 2, 3, 4]
    assert all(t.request.attempt == 1 for t in tasks)
    start = world.timer.start
    assert all(t.at >= start + 180 for t in tasks)
    # And launches resumed within one capacity backoff (15 s at most) of the outage's end
    assert max(t.at for t in tasks) - (start + 180) <= 15
    # And no item was lost or failed: all are RUNNING their task, none waits any more
    assert [i.status for i in world.records.items(RUN)] == ["RUNNING"] * 5
    assert all(i.waiting is None for i in world.records.items(RUN))
    assert world.callbacks.answers == {}
    # And every attempt counts as having waited, and says for how long
    assert world.waits() == 5
    assert all((a.queued_seconds or 0) >= 180 for a in world.attempts())
    # And capacity was probed with a backoff, one call at a time, not a storm: the first
    # 5 calls, then one probe per backoff (1, 2, 4, 8, then 15 s) while the outage lasts
    refused = [at - start for at, what in world.launcher.calls if what == "capacity"]
    assert len(refused) <= 5 + 4 + 180 / 15
    probes = refused[5:]
    assert all(later - earlier >= 1 for earlier, later in pairwise(probes))
    assert world.launcher.run_task_calls == len(refused) + 5
    assert world.launcher.throttled == 0


def test_a_launch_storm_is_paced_to_the_bucket() -> None:
    # Given 200 items queued at once against a Fargate bucket of 10, then 5 a second
    world = deployment(burst=10, per_second=5)
    world.start_run(200)
    # When the dispatcher drains the queue
    answer = world.dispatch()
    # Then every item launched exactly once, and RunTask was never throttled
    assert answer["result"] == Ending.DRAINED and answer["launched"] == 200
    tasks = world.launcher.launches(RUN)
    assert [t.request.index for t in tasks] == list(range(200))  # oldest first
    assert world.launcher.throttled == 0 and world.launcher.run_task_calls == 200
    # And the gate keeps a tenth of the burst in reserve: 9 launch at once, every other
    # item waits for its permit, 5 a second, so the last launches (200 - 9) / 5 s later
    start = world.timer.start
    assert sum(1 for t in tasks if t.at == start) == 9
    assert max(t.at for t in tasks) - start == pytest.approx((200 - 9) / 5, abs=0.05)
    # And exactly those items count as having waited for their turn
    assert world.waits() == 200 - 9


def test_a_bucket_configured_above_what_fargate_grants_slows_to_fargates_pace() -> None:
    # Given the gate told 10, then 5 a second, while Fargate grants 10, then 2 a second
    world = deployment(burst=10, per_second=5)
    world.launcher.per_second = 2.0
    world.start_run(100)
    # When the dispatcher drains the queue of 100 items
    answer = world.dispatch()
    # Then some RunTask calls were throttled, and every item launched exactly once
    assert answer["result"] == Ending.DRAINED and answer["throttled"] > 0
    tasks = world.launcher.launches(RUN)
    assert sorted(t.request.index for t in tasks) == list(range(100))
    assert answer["launched"] == 100 and world.callbacks.answers == {}
    # And halving the rate on each throttle brought the gate down to Fargate's pace: the
    # launches took within 10% of the (100 - 10) / 2 s Fargate needs, at least
    span = max(t.at for t in tasks) - world.timer.start
    assert (100 - 10) / 2 <= span <= 1.1 * (100 - 10) / 2


def test_a_launch_refused_for_good_fails_the_item_and_answers_its_token() -> None:
    # Given an item whose every RunTask is refused for good (not a throttle, not capacity)
    world = deployment()
    world.launcher.refusal = "ClientException: TaskDefinition is inactive"
    world.start_run(1)
    # When the dispatcher runs
    answer = world.dispatch()
    # Then it tried once, and the entry is gone from the queue
    assert answer["result"] == Ending.DRAINED and answer["gone"] == 1
    assert world.launcher.run_task_calls == 1 and not world.gates.queue_entries("FARGATE", 10)
    # And the item FAILED with the reason, its child execution told so through its token
    [item] = world.records.items(RUN)
    assert item.status == "FAILED" and item.waiting is None
    error, cause = world.callbacks.answers["token-0"]
    assert error == "Fanout.LaunchFailed" and "TaskDefinition is inactive" in cause
    [attempt] = world.attempts()
    assert not attempt.is_open and attempt.answered


def _packed_run(tmp_path: Any, *, total: int) -> Any:
    """A deployment with a running packed run (4 items to a task, outputs on local disk)."""
    d = deployment()
    d.env = d.env.model_copy(update={"fanout_outputs": str(tmp_path)})
    d.records.create_run(RunRecord(
        RUN, "prog", "RUNNING", iso(d.timer.utcnow()), total=total,
        settings={"capacity": "FARGATE", "timeout_seconds": 600,
                  "packing": {"items_per_task": 4, "per_task_concurrency": 1}}))
    return d


def test_a_batch_childs_turn_is_launched_as_one_task_without_waiting_for_its_batch(
        tmp_path: Any) -> None:
    from fanout.records.model import ItemRecord
    from fanout.runtime.dispatch import GATHER_SECONDS
    from fanout.runtime.launch import ManifestBatch

    # Given a packed run (4 items to a task, outputs on local disk) whose batch 0 has items
    # 0-2 settled, so that its child's next turn carries item 3 alone
    d = _packed_run(tmp_path, total=8)
    for index in range(3):
        assert d.records.settle_item(RUN, index, "ABORTED", "settled before",
                                     first=ItemRecord(RUN, index, "PENDING"))
    batch = ManifestBatch(batch=0, items=[ManifestItem(index=i, command=["--exit", "0"])
                                          for i in range(4)])
    # When the child's Launch queues its turn and the dispatcher runs
    queued = launch(LaunchInput(token="token-b0", run_id=RUN, item=batch),
                    store=d.records, callbacks=d.callbacks, gate=d.gate, clock=d.timer.utcnow)
    begun = d.timer.time()
    d.dispatch()
    # Then item 3 alone went in one task, at once: the turn said it was whole, so the
    # dispatcher did not wait for the batch's other three items
    assert queued["queued"] == 1
    [task] = d.launcher.launches(RUN)
    assert task.at - begun < GATHER_SECONDS
    [attempt] = d.attempts()
    assert (attempt.index, attempt.batch, attempt.task_arn) == (3, 0, task.arn)


def test_a_turn_its_launch_is_still_queuing_is_waited_for_and_launched_whole(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from fanout.runtime.dispatch import GATHER_SECONDS
    from fanout.runtime.launch import ManifestBatch

    # Given a packed run's batch of four items whose Launch has queued them all, but whose
    # last two the dispatcher sees only 2 s later (a Launch still writing, as moto's
    # serialized writes make it)
    d = _packed_run(tmp_path, total=4)
    batch = ManifestBatch(batch=0, items=[ManifestItem(index=i, command=["--exit", "0"])
                                          for i in range(4)])
    launch(LaunchInput(token="token-b0", run_id=RUN, item=batch),
           store=d.records, callbacks=d.callbacks, gate=d.gate, clock=d.timer.utcnow)
    begun = d.timer.time()
    seen = d.gates.queue_entries

    def late(capacity: str, limit: int) -> list[Any]:
        return [e for e in seen(capacity, limit)
                if e.index < 2 or d.timer.time() - begun >= 2.0]

    monkeypatch.setattr(d.gates, "queue_entries", late)
    # When the dispatcher runs
    d.dispatch()
    # Then it waited past its half second for the whole turn: one task of four items
    [task] = d.launcher.launches(RUN)
    assert task.at - begun >= 2.0 > GATHER_SECONDS
    assert {a.task_arn for a in d.attempts()} == {task.arn}
