"""Launch and Record under moto, answering an in-memory TaskCallbacks."""

from __future__ import annotations

import json
import re

import pytest

from fanout.aws.ecs import LaunchRequest
from fanout.runtime import context
from fanout.testing.callbacks import MemoryCallbacks
from tests.integration.conftest import BUCKET, World
from tests.integration.helpers import (
    call,
    item_states,
    launch,
    manifest,
    read_log_groups,
    start_run,
    stopped,
    store,
    totals,
    write_task_log,
)


@pytest.fixture
def answers(world: World) -> MemoryCallbacks:
    fake = MemoryCallbacks()
    context.use(callbacks=fake)
    return fake


def run_with(world: World, run_id: str, **spec: object) -> None:
    start_run(run_id, {"job": "analyzer", "params": {"year": {"range": {"start": 1999,
                                                                         "stop": 2002}}},
                       **spec})


def test_launch_starts_one_task_marked_as_the_runs(world: World, answers: MemoryCallbacks) -> None:
    # Given an expanded run
    run_with(world, "run-l", capacity="FARGATE_SPOT")
    # When Launch is called for item 1 with a task token
    result = launch(world, "run-l", 1, "token-1")
    # Then one task runs, started by fanout, tagged and with its identity in the environment
    [task] = world.tasks()
    assert result["task_arn"] == task["taskArn"] and result["launched"] is True
    assert task["startedBy"] == "fanout"
    assert task["capacityProviderName"] == "FARGATE_SPOT"
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags == {"fanout:run": "run-l", "fanout:item": "1", "fanout:attempt": "1"}
    override = task["overrides"]["containerOverrides"][0]
    assert override["command"] == ["-y", "2000"]
    env = {e["name"]: e["value"] for e in override["environment"]}
    assert env == {"FANOUT_RUN_ID": "run-l", "FANOUT_ITEM_INDEX": "1", "FANOUT_ATTEMPT": "1",
                   "FANOUT_OUTPUT": f"s3://{BUCKET}/runs/run-l/outputs/1/"}
    # And the attempt keeps the token and a deterministic client token of at most 64 chars
    attempt = store().get_attempt("run-l", 1, 1)
    assert attempt is not None and attempt.task_token == "token-1"
    assert re.fullmatch(r"[0-9a-f]{48}", attempt.client_token)
    assert attempt.task_arn == task["taskArn"] and attempt.status == "RUNNING"
    # And the run counts the item running
    assert totals("run-l")["running"] == 1 and totals("run-l")["pending"] == 2


def test_launch_invoked_twice_for_one_attempt_starts_one_task(
        world: World, answers: MemoryCallbacks) -> None:
    # Given an expanded run
    run_with(world, "run-2x")
    # When Launch is invoked twice for the same attempt (a Lambda retry with a new token)
    first = launch(world, "run-2x", 0, "token-a")
    second = launch(world, "run-2x", 0, "token-b")
    # Then exactly one task runs, and the newest token is the one that will be answered
    assert len(world.tasks()) == 1
    assert first["launched"] is True and second["launched"] is False
    attempt = store().get_attempt("run-2x", 0, 1)
    assert attempt is not None and attempt.task_token == "token-b"
    assert totals("run-2x")["running"] == 1


class FlakyLauncher:
    """Wraps the real launcher: throttles, or dies after RunTask, as asked."""

    def __init__(self, inner: object, *, throttle: int = 0, die_after_run: int = 0) -> None:
        self.inner, self.throttle, self.die_after_run = inner, throttle, die_after_run

    def run_task(self, request: object) -> str:
        from fanout.aws.ecs import LaunchError

        if self.throttle:
            self.throttle -= 1
            raise LaunchError("throttled", "Rate exceeded")
        arn: str = self.inner.run_task(request)  # type: ignore[attr-defined]
        if self.die_after_run:
            self.die_after_run -= 1
            raise SystemExit("launch died after RunTask")
        return arn

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_launch_queues_the_attempt_and_wakes_the_dispatcher_once(
        world: World, answers: MemoryCallbacks) -> None:
    # Given an expanded run
    run_with(world, "run-q")
    # When Launch is called for two items (no dispatcher runs yet)
    first = call("launch", {"token": "t0", "run_id": "run-q", "item": manifest(world, "run-q")[0]})
    call("launch", {"token": "t1", "run_id": "run-q", "item": manifest(world, "run-q")[1]})
    # Then both wait in the launch queue, say so, and no task runs yet
    assert first["queued"] is True and world.tasks() == []
    item = store().get_item("run-q", 0)
    assert item is not None and item.shown_status == "WAITING"
    assert item.waiting is not None and item.waiting["tries"] == 0
    assert totals("run-q")["waiting"] == 2 and totals("run-q")["running"] == 0
    # And the dispatcher was woken once, not once per item
    assert world.wakes.calls == ["fanout-dispatch"]
    # When the dispatcher runs
    result = call("dispatch", {})
    # Then both tasks run, and nothing waits any more
    assert result["launched"] == 2 and len(world.tasks()) == 2
    assert totals("run-q")["waiting"] == 0 and totals("run-q")["running"] == 2
    item = store().get_item("run-q", 0)
    assert item is not None and item.waiting is None and item.shown_status == "RUNNING"


def test_throttled_launch_waits_and_spends_no_attempt(
        world: World, answers: MemoryCallbacks) -> None:
    # Given RunTask throttles once
    from fanout.aws.ecs import EcsLauncher

    run_with(world, "run-t")
    context.use(launcher=FlakyLauncher(EcsLauncher("fanout-cluster"), throttle=1),
                cluster="fanout-cluster")
    # When the item is launched
    result = launch(world, "run-t", 0, "token-1")
    # Then the dispatcher tried again: the task runs as attempt 1, no attempt was spent
    [task] = world.tasks()
    assert result["task_arn"] == task["taskArn"]
    attempt = store().get_attempt("run-t", 0, 1)
    assert attempt is not None and attempt.task_arn == task["taskArn"] and attempt.waited
    assert store().get_attempt("run-t", 0, 2) is None
    assert answers.calls == []


class RefusingLauncher(FlakyLauncher):
    """Refuses for capacity ``refuse`` times, looking at the waiting item each time."""

    def __init__(self, inner: object, refuse: int,
                 answer: str = "Capacity is unavailable at this time") -> None:
        super().__init__(inner)
        self.refuse, self.answer = refuse, answer
        self.seen: list[dict[str, object] | None] = []

    def run_task(self, request: object) -> str:
        from fanout.aws.ecs import LaunchError
        from fanout.aws.launch_errors import classify

        item = store().get_item(request.run_id, request.index)  # type: ignore[attr-defined]
        self.seen.append(item.waiting if item else None)
        if self.refuse:
            self.refuse -= 1
            verdict = classify("", self.answer)  # as EcsLauncher reads a failures[] answer
            raise LaunchError(verdict.kind, self.answer, verdict.reason)
        return super().run_task(request)


def test_an_item_over_the_vcpu_quota_waits_and_says_so(
        world: World, answers: MemoryCallbacks) -> None:
    # Given RunTask answers twice that the account's vCPU quota is reached
    from fanout.aws.ecs import EcsLauncher

    run_with(world, "run-quota")
    refusing = RefusingLauncher(EcsLauncher("fanout-cluster"), refuse=2, answer=(
        "You've reached the limit on the number of vCPUs you can run concurrently"))
    context.use(launcher=refusing, cluster="fanout-cluster")
    # When the item is launched
    result = launch(world, "run-quota", 0, "token-1")
    # Then while it waited its record said it waits for the quota (WAITING: vCPU quota)
    assert refusing.seen[2] is not None and refusing.seen[2]["why"] == "vCPU quota"
    assert refusing.seen[2]["tries"] == 2
    # And it launched on its first attempt, nothing failed
    [task] = world.tasks()
    assert result["task_arn"] == task["taskArn"] and result["attempt"] == 1
    assert answers.calls == []


def test_an_item_waits_for_capacity_and_says_why(world: World, answers: MemoryCallbacks) -> None:
    # Given Fargate refuses for capacity twice
    from fanout.aws.ecs import EcsLauncher

    run_with(world, "run-cap")
    refusing = RefusingLauncher(EcsLauncher("fanout-cluster"), refuse=2)
    context.use(launcher=refusing, cluster="fanout-cluster")
    # When the item is launched
    result = launch(world, "run-cap", 0, "token-1")
    # Then while it waited its record said why, since when and how many tries
    assert refusing.seen[0] is not None and refusing.seen[0]["why"] == "waiting for a launch turn"
    assert refusing.seen[2] is not None and refusing.seen[2]["why"] == "capacity unavailable"
    assert refusing.seen[2]["tries"] == 2
    # And it launched on its first attempt when capacity came back
    [task] = world.tasks()
    assert result["task_arn"] == task["taskArn"] and result["attempt"] == 1
    item = store().get_item("run-cap", 0)
    assert item is not None and item.waiting is None and item.attempts == 1


class TokenKeeping:
    """ECS's promise that moto does not keep: RunTask with a clientToken already answered
    (within 24 h) returns the task it started, starting none."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.started: dict[str, str] = {}
        self.calls = 0

    def run_task(self, request: object) -> str:
        self.calls += 1
        token = request.client_token  # type: ignore[attr-defined]
        if token not in self.started:
            self.started[token] = self.inner.run_task(request)  # type: ignore[attr-defined]
        return self.started[token]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_launch_that_died_after_run_task_is_found_again_not_relaunched(
        world: World, answers: MemoryCallbacks) -> None:
    # Given a dispatcher that dies after RunTask succeeded
    from fanout.aws.ecs import EcsLauncher
    from fanout.runtime import gate as gate_logic

    run_with(world, "run-d")
    ecs = TokenKeeping(EcsLauncher("fanout-cluster"))
    context.use(launcher=FlakyLauncher(ecs, die_after_run=1), cluster="fanout-cluster")
    with pytest.raises(SystemExit):
        launch(world, "run-d", 0, "token-1")
    # When the dispatcher runs again after the attempt's launch lease ran out
    from datetime import datetime, timedelta

    from fanout.runtime.clock import SystemTimer
    from fanout.runtime.dispatch import Dispatcher
    from fanout.settings import DispatchEnv
    from tests.integration.conftest import DISPATCHER

    class LeaseRunOut(SystemTimer):  # the records' clock, past the attempt's launch lease
        def utcnow(self) -> datetime:
            return super().utcnow() + timedelta(seconds=gate_logic.LAUNCH_LEASE_SECONDS + 1)

    result = Dispatcher(
        env=DispatchEnv.from_env(), store=store(), gate=gate_logic.Gate(store(), DISPATCHER),
        launcher=ecs, callbacks=answers, timer=LeaseRunOut()).run(5)
    # Then its RunTask, with the attempt's client token, adopts the task started before:
    # one task for the attempt, found without listing the cluster
    [task] = world.tasks()
    assert result["launched"] == 1 and ecs.calls == 2
    attempt = store().get_attempt("run-d", 0, 1)
    assert attempt is not None and attempt.task_arn == task["taskArn"]


@pytest.mark.parametrize(("kind", "max_attempts", "outcome", "item_status", "error"), [
    ("success", 3, "success", "SUCCEEDED", None),
    ("exit-1", 3, "retry", "RUNNING", "Fanout.Retry"),
    ("exit-1", 1, "fail", "FAILED", "Fanout.ItemFailed"),
    ("oom", 1, "fail", "FAILED", "Fanout.ItemFailed"),
    ("spot", 3, "retry", "RUNNING", "Fanout.Retry"),
    ("image-pull", 1, "fail", "FAILED", "Fanout.ItemFailed"),
    ("resource-init", 3, "retry", "RUNNING", "Fanout.Retry"),
    ("timeout", 1, "fail", "TIMED_OUT", "Fanout.ItemTimedOut"),
])
def test_record_settles_each_kind_of_stop(
        world: World, answers: MemoryCallbacks, kind: str, max_attempts: int, outcome: str,
        item_status: str, error: str | None) -> None:
    # Given a running attempt
    run_with(world, "run-r", retry={"max_attempts": max_attempts})
    arn = launch(world, "run-r", 0, "token-1")["task_arn"]
    # When its STOPPED event arrives
    result = stopped(kind, arn, "run-r", 0, 1)
    # Then the token is answered by the policy, the attempt written, the item moved
    assert result["result"] == outcome
    answer = answers.answers["token-1"]
    assert answer[0] == (error or "success")
    if outcome == "success":  # the child execution's output names the attempt and its task
        assert answer[1] == {"run_id": "run-r", "index": 0, "attempt": 1,
                             "status": "SUCCEEDED", "exit_code": 0, "task_arn": arn,
                             "class": "succeeded"}
    item = store().get_item("run-r", 0)
    assert item is not None and item.status == item_status
    attempt = store().get_attempt("run-r", 0, 1)
    assert attempt is not None and not attempt.is_open and attempt.answered
    assert attempt.task_arn == arn and attempt.stopped_at
    expected_totals = {"RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed",
                       "TIMED_OUT": "timed_out"}[item_status]
    assert totals("run-r")[expected_totals] == 1
    if outcome == "retry":
        assert json.loads(answer[1])["attempt"] == 2
        assert json.loads(answer[1])["delay_seconds"] == 10


def test_retry_then_success_is_visible_per_attempt(world: World, answers: MemoryCallbacks) -> None:
    # Given an attempt that exits 1, retried by the policy
    run_with(world, "run-rs")
    first = launch(world, "run-rs", 2, "token-1")["task_arn"]
    stopped("exit-1", first, "run-rs", 2, 1)
    # When the state machine launches again after the delay and the new task succeeds
    second = launch(world, "run-rs", 2, "token-2")["task_arn"]
    stopped("success", second, "run-rs", 2, 2)
    # Then the item succeeded on attempt 2, both attempts are recorded, totals are exact
    assert first != second
    item = store().get_item("run-rs", 2)
    assert item is not None and (item.status, item.attempts, item.exit_code) == (
        "SUCCEEDED", 2, 0)
    assert [(a.attempt, a.status, a.exit_code) for a in store().attempts("run-rs", 2)] == [
        (1, "RETRY", 1), (2, "SUCCEEDED", 0)]
    assert answers.answers["token-2"][0] == "success"
    assert totals("run-rs") == {"total": 3, "pending": 2, "running": 0, "succeeded": 1,
                                "failed": 0, "timed_out": 0, "aborted": 0, "waiting": 0}


@pytest.mark.parametrize("retry", [{}, {"max_attempts": 1},
                                   {"max_attempts": 1, "on_infrastructure": False}])
def test_spot_interruption_moves_the_next_attempt_to_on_demand(
        world: World, answers: MemoryCallbacks, retry: dict[str, object]) -> None:
    # Given Spot first, then on-demand, whatever the retry policy says
    run_with(world, "run-s", capacity="FARGATE_SPOT_THEN_FARGATE", retry=retry)
    first = launch(world, "run-s", 0, "token-1")
    # When the Spot task is interrupted
    assert stopped("spot", first["task_arn"], "run-s", 0, 1)["result"] == "retry"
    # Then the item is tried again at once, and its next attempt runs on FARGATE
    cause = json.loads(answers.answers["token-1"][1])
    assert (answers.answers["token-1"][0], cause["delay_seconds"]) == ("Fanout.Retry", 0)
    second = launch(world, "run-s", 0, "token-2")
    assert (first["capacity"], second["capacity"]) == ("FARGATE_SPOT", "FARGATE")
    # And when the on-demand attempt succeeds, so does the item
    stopped("success", second["task_arn"], "run-s", 0, 2)
    item = store().get_item("run-s", 0)
    assert item is not None and (item.status, item.attempts) == ("SUCCEEDED", 2)


def test_spot_interruption_under_spot_only_spends_the_attempt(
        world: World, answers: MemoryCallbacks) -> None:
    # Given Spot only and one attempt
    run_with(world, "run-so", capacity="FARGATE_SPOT", retry={"max_attempts": 1})
    first = launch(world, "run-so", 0, "token-1")
    # When the Spot task is interrupted, Then the item failed (an infrastructure failure)
    assert stopped("spot", first["task_arn"], "run-so", 0, 1)["result"] == "fail"
    item = store().get_item("run-so", 0)
    assert item is not None and item.status == "FAILED"


class SpotRefused:
    """Wraps the real launcher: Fargate Spot has no capacity, on-demand has."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.asked: list[str] = []

    def run_task(self, request: LaunchRequest) -> str:
        from fanout.aws.ecs import LaunchError

        capacity = request.capacity
        self.asked.append(capacity)
        if capacity == "FARGATE_SPOT":
            raise LaunchError("capacity", "Capacity is unavailable at this time")
        arn: str = self.inner.run_task(request)  # type: ignore[attr-defined]
        return arn

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_spot_capacity_refusal_launches_on_demand_within_the_attempt(
        world: World, answers: MemoryCallbacks) -> None:
    # Given Spot then on-demand, one attempt, and no Spot capacity
    from fanout.aws.ecs import EcsLauncher

    run_with(world, "run-sc", capacity="FARGATE_SPOT_THEN_FARGATE", retry={"max_attempts": 1})
    refusing = SpotRefused(EcsLauncher("fanout-cluster"))
    context.use(launcher=refusing, cluster="fanout-cluster")
    # When the item is launched
    result = launch(world, "run-sc", 0, "token-1")
    # Then it runs on on-demand Fargate as its first attempt
    [task] = world.tasks()
    assert refusing.asked == ["FARGATE_SPOT", "FARGATE"]
    assert task["capacityProviderName"] == "FARGATE" and result["task_arn"] == task["taskArn"]
    stopped("success", task["taskArn"], "run-sc", 0, 1)
    item = store().get_item("run-sc", 0)
    assert item is not None and (item.status, item.attempts) == ("SUCCEEDED", 1)


def test_same_event_twice_counts_once(world: World, answers: MemoryCallbacks) -> None:
    # Given a settled attempt
    run_with(world, "run-dup")
    arn = launch(world, "run-dup", 0, "token-1")["task_arn"]
    stopped("exit-1", arn, "run-dup", 0, 1, version=5)
    # When the same event comes again
    again = stopped("exit-1", arn, "run-dup", 0, 1, version=5)
    # Then nothing changes and the token was answered once
    assert again["result"] == "duplicate"
    assert [c for c in answers.calls if c[1] == "token-1"] == [
        ("Fanout.Retry", "token-1", answers.answers["token-1"][1])]
    assert totals("run-dup")["running"] == 1 and item_states("run-dup") == {"running": 1}


def test_out_of_order_events_never_double_count(world: World, answers: MemoryCallbacks) -> None:
    # Given the newer STOPPED event (version 6) arrives first
    run_with(world, "run-ooo", retry={"max_attempts": 1})
    arn = launch(world, "run-ooo", 0, "token-1")["task_arn"]
    stopped("exit-1", arn, "run-ooo", 0, 1, version=6)
    # When the older one (version 4) arrives after it
    late = stopped("success", arn, "run-ooo", 0, 1, version=4)
    # Then it is ignored as stale: the item stays FAILED, counted once
    assert late["result"] == "stale"
    item = store().get_item("run-ooo", 0)
    assert item is not None and item.status == "FAILED"
    assert totals("run-ooo")["failed"] == 1 and totals("run-ooo")["succeeded"] == 0


def test_a_stopped_event_for_an_earlier_attempt_is_ignored(
        world: World, answers: MemoryCallbacks) -> None:
    # Given attempt 1 failed and attempt 2 runs
    run_with(world, "run-old")
    first = launch(world, "run-old", 0, "token-1")["task_arn"]
    stopped("exit-1", first, "run-old", 0, 1)
    launch(world, "run-old", 0, "token-2")
    # When attempt 1's event is delivered again
    again = stopped("success", first, "run-old", 0, 1)
    # Then attempt 2 is still running, and nothing was counted
    assert again["result"] == "duplicate"
    attempt = store().get_attempt("run-old", 0, 2)
    assert attempt is not None and attempt.is_open
    assert "token-2" not in answers.answers and totals("run-old")["running"] == 1


class CrashingCallbacks(MemoryCallbacks):
    """Dies on the first answer, as a Lambda killed between the write and the answer."""

    crashes = 1

    def fail(self, token: str, error: str, cause: str) -> bool:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("killed before answering")
        return super().fail(token, error, cause)

    def succeed(self, token: str, output: dict[str, object]) -> bool:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("killed before answering")
        return super().succeed(token, output)


def test_crash_between_write_and_answer_is_healed_by_the_event_again(world: World) -> None:
    # Given Record crashes after writing the attempt, before answering the token
    crashing = CrashingCallbacks()
    context.use(callbacks=crashing)
    run_with(world, "run-crash", retry={"max_attempts": 1})
    arn = launch(world, "run-crash", 0, "token-1")["task_arn"]
    with pytest.raises(RuntimeError):
        stopped("exit-1", arn, "run-crash", 0, 1)
    assert crashing.answers == {}
    # When EventBridge delivers the event again
    healed = stopped("exit-1", arn, "run-crash", 0, 1)
    # Then the token gets its answer once and the item is counted once
    assert healed["result"] == "healed"
    assert crashing.answers["token-1"][0] == "Fanout.ItemFailed"
    assert totals("run-crash")["failed"] == 1 and item_states("run-crash") == {"failed": 1}
    # And a third delivery changes nothing
    assert stopped("exit-1", arn, "run-crash", 0, 1)["result"] == "duplicate"


def test_event_for_a_task_whose_arn_launch_never_wrote(world: World,
                                                       answers: MemoryCallbacks) -> None:
    # Given Launch died after RunTask: the attempt has no task ARN
    from fanout.aws.ecs import EcsLauncher

    run_with(world, "run-noarn")
    context.use(launcher=FlakyLauncher(EcsLauncher("fanout-cluster"), die_after_run=1),
                cluster="fanout-cluster")
    with pytest.raises(SystemExit):
        launch(world, "run-noarn", 0, "token-1")
    [task] = world.tasks()
    # When the task's STOPPED event comes (found by its FANOUT_* environment)
    result = stopped("success", task["taskArn"], "run-noarn", 0, 1)
    # Then the attempt learns its task and the item succeeds
    assert result["result"] == "success"
    attempt = store().get_attempt("run-noarn", 0, 1)
    assert attempt is not None and attempt.task_arn == task["taskArn"]
    assert answers.answers["token-1"][0] == "success"


def test_record_ignores_a_task_it_does_not_know(world: World, answers: MemoryCallbacks) -> None:
    # Given no run at all
    # When an event for a stranger's task comes
    result = call("record", {"detail-type": "ECS Task State Change",
                             "detail": {"taskArn": "arn:aws:ecs:us-east-1:1:task/x/y",
                                        "lastStatus": "STOPPED"}})
    # Then nothing is answered
    assert result["result"] == "unknown task" and answers.calls == []


def test_an_event_without_the_fanout_environment_is_found_by_its_task(
        world: World, answers: MemoryCallbacks) -> None:
    # Given a launched item, and its STOPPED event stripped of the FANOUT_* environment
    from tests.integration.conftest import event

    run_with(world, "run-noenv", retry={"max_attempts": 1})
    arn = launch(world, "run-noenv", 2, "token-1")["task_arn"]
    stripped = event("success", task_arn=arn, run_id="run-noenv", index=2, attempt=1)
    stripped["detail"]["overrides"]["containerOverrides"][0]["environment"] = []
    # When Record gets it
    result = call("record", stripped)
    # Then the attempt is found through the task's record and settled
    assert (result["result"], result["index"], result["attempt"]) == ("success", 2, 1)
    assert answers.answers["token-1"][0] == "success"
    assert totals("run-noenv")["succeeded"] == 1


def test_an_event_naming_another_tasks_attempt_settles_its_own(
        world: World, answers: MemoryCallbacks) -> None:
    # Given two launched items, and item 0's task reporting (wrongly) item 1's identity
    run_with(world, "run-mixed", retry={"max_attempts": 1})
    first = launch(world, "run-mixed", 0, "token-0")["task_arn"]
    launch(world, "run-mixed", 1, "token-1")
    # When item 0's task stops
    result = stopped("exit-1", first, "run-mixed", 1, 1)
    # Then the task's own record decides: item 0 fails, item 1 still runs
    assert (result["index"], result["result"]) == (0, "fail")
    assert "token-1" not in answers.answers and answers.answers["token-0"][0] == "Fanout.ItemFailed"
    item = store().get_item("run-mixed", 1)
    assert item is not None and item.status == "RUNNING"


def test_a_launch_retried_while_its_task_settles_still_answers_its_own_token(
        world: World, answers: MemoryCallbacks, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an item whose task runs, started by a Launch that then died (token-1)
    from fanout.records.dynamo import DynamoRecords

    run_with(world, "run-race")
    arn = launch(world, "run-race", 0, "token-1")["task_arn"]
    # And the task stops (exit 1: retry) just as the retried Launch (token-2) takes over
    keep = DynamoRecords.keep_token

    def settled_first(self: DynamoRecords, *args: object, **kwargs: object) -> bool:
        monkeypatch.setattr(DynamoRecords, "keep_token", keep)
        stopped("exit-1", arn, "run-race", 0, 1)
        return keep(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DynamoRecords, "keep_token", settled_first)
    result = launch(world, "run-race", 0, "token-2")
    # Then the retried Launch starts nothing, and its own token gets the attempt's answer
    assert result["launched"] is False and len(world.tasks()) == 1
    assert answers.answers["token-2"][0] == "Fanout.Retry"
    assert answers.answers["token-1"][0] == "Fanout.Retry"
    assert len([c for c in answers.calls if c[1] == "token-2"]) == 1


def test_a_failed_item_carries_its_reason_and_the_last_lines_of_its_log(
        world: World, answers: MemoryCallbacks, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a running attempt whose container wrote 25 lines, the last on stderr
    read_log_groups(world, monkeypatch, answers)
    run_with(world, "run-tail", retry={"max_attempts": 1})
    arn = launch(world, "run-tail", 0, "token-1")["task_arn"]
    lines = [f"year 1999 step {i}" for i in range(24)] + ["FATAL: giving up with code 1"]
    stream = write_task_log(arn, lines)
    # When it stops with exit code 1
    stopped("exit-1", arn, "run-tail", 0, 1)
    # Then the attempt and the failed item say why in a user's words, with the log's end
    attempt = store().get_attempt("run-tail", 0, 1)
    item = store().get_item("run-tail", 0)
    assert attempt is not None and item is not None
    assert attempt.reason == item.reason == "exit code 1"
    assert attempt.log_tail == item.log_tail == lines[-20:]
    assert attempt.log_stream == stream


def test_a_succeeded_attempt_has_a_reason_and_no_log_tail(
        world: World, answers: MemoryCallbacks, monkeypatch: pytest.MonkeyPatch) -> None:
    read_log_groups(world, monkeypatch, answers)
    run_with(world, "run-ok")
    arn = launch(world, "run-ok", 0, "token-1")["task_arn"]
    stopped("success", arn, "run-ok", 0, 1)
    attempt = store().get_attempt("run-ok", 0, 1)
    assert attempt is not None and attempt.reason == "exit code 0"
    assert attempt.log_tail is None


def test_what_an_item_wrote_is_recorded_when_it_ends(
        world: World, answers: MemoryCallbacks) -> None:
    # Given item 0's task wrote two objects under its FANOUT_OUTPUT, and item 1's one
    run_with(world, "run-out", retry={"max_attempts": 2})
    arn = launch(world, "run-out", 0, "token-1")["task_arn"]
    [task] = world.tasks()
    env = {e["name"]: e["value"]
           for e in task["overrides"]["containerOverrides"][0]["environment"]}
    bucket, _, prefix = env["FANOUT_OUTPUT"].removeprefix("s3://").partition("/")
    world.s3.put_object(Bucket=bucket, Key=prefix + "result.csv", Body=b"year,n\n1999,3\n")
    world.s3.put_object(Bucket=bucket, Key=prefix + "plots/1999.png", Body=b"\x89PNG")
    world.s3.put_object(Bucket=bucket, Key="runs/run-out/outputs/1/other.csv", Body=b"x")
    # When its first attempt fails (retried), then its second succeeds
    stopped("exit-1", arn, "run-out", 0, 1)
    assert store().get_item("run-out", 0).outputs is None  # type: ignore[union-attr]
    second = launch(world, "run-out", 0, "token-2")["task_arn"]
    stopped("success", second, "run-out", 0, 2)
    # Then the item's record lists its own outputs, keys relative to its location
    item = store().get_item("run-out", 0)
    assert item is not None and item.outputs == {
        "location": env["FANOUT_OUTPUT"], "count": 2, "bytes": 18,
        "entries": [{"key": "plots/1999.png", "size": 4}, {"key": "result.csv", "size": 14}]}
