"""Finalize (sweep, status, notification), Reconcile and Abort under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fanout.aws.ecs import EcsLauncher, LaunchRequest
from fanout.records.writes import SHARDS
from fanout.runtime import context
from fanout.runtime.clock import utcnow
from fanout.runtime.reconcile import reconcile
from fanout.testing.callbacks import MemoryCallbacks
from tests.integration.conftest import CLUSTER, EVENTS, World
from tests.integration.helpers import (
    call,
    item_states,
    launch,
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


def years(run_id: str, **spec: object) -> None:
    start_run(run_id, {"job": "analyzer",
                       "params": {"year": {"range": {"start": 1999, "stop": 2003}}}, **spec})


def test_finalize_of_a_clean_run(world: World, answers: MemoryCallbacks) -> None:
    # Given every item succeeded
    years("run-ok")
    for index in range(4):
        arn = launch(world, "run-ok", index, f"token-{index}")["task_arn"]
        stopped("success", arn, "run-ok", index, 1)
    # When Finalize runs
    result = call("finalize", {"run_id": "run-ok", "outcome": {"run_id": "run-ok"}})
    # Then the run SUCCEEDED with exact totals and a console link
    assert result["status"] == "SUCCEEDED"
    assert (result["total"], result["succeeded"], result["failed"]) == (4, 4, 0)
    assert result["console_url"].startswith("https://us-east-1.console.aws.amazon.com/states/")
    assert "4 of 4 items succeeded" in result["summary"]
    run = store().get_run("run-ok")
    assert run is not None and run.status == "SUCCEEDED" and run.finished_at
    # And every record of the run (run, spec, counter shards, items, attempts, tasks)
    # expires (TTL) at the
    # end of the run's maximum life (168 h by default) plus the 90 days records are kept
    records = world.ddb.query(TableName="fanout-records", KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": "RUN#run-ok"}})["Items"]
    tasks = [world.ddb.get_item(TableName="fanout-records", Key={
        "pk": {"S": f"TASK#{a.task_arn}"}, "sk": {"S": "TASK"}})["Item"]
        for a in store().attempts("run-ok")]
    assert len(records) == 1 + 1 + SHARDS + 4 + 4 and len(tasks) == 4
    expected = int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()) + (168 * 3600
                                                                          + 90 * 86400)
    assert {int(r["expires_at"]["N"]) for r in records + tasks} == {expected}
    # And the summary went to the topic
    [message] = world.messages()
    assert message["status"] == "SUCCEEDED" and message["totals"]["succeeded"] == 4


def test_finalize_sweeps_what_the_map_left(world: World, answers: MemoryCallbacks) -> None:
    # Given a map cut short: item 0 failed, 1 runs still, 2 waits for a retry, 3 never launched
    years("run-cut", retry={"max_attempts": 1})
    stopped("exit-1", launch(world, "run-cut", 0, "t0")["task_arn"], "run-cut", 0, 1)
    running = launch(world, "run-cut", 1, "t1")["task_arn"]
    start_run("run-cut-2")  # another run's task must survive
    other = launch(world, "run-cut-2", 0, "u0")["task_arn"]
    # When Finalize runs with the map's error
    result = call("finalize", {"run_id": "run-cut", "outcome": {
        "map_error": {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "..."}}})
    # Then every item is terminal and the totals equal the item states
    assert result["status"] == "FAILED"
    assert item_states("run-cut") == {"failed": 1, "aborted": 3}
    assert totals("run-cut") == {"total": 4, "pending": 0, "running": 0, "succeeded": 0,
                                 "failed": 1, "timed_out": 0, "aborted": 3, "waiting": 0}
    # And the still-running task was stopped, the other run's task was not
    running_now = [t["taskArn"] for t in world.tasks()]
    assert running not in running_now and other in running_now
    assert answers.answers["t1"][0] == "Fanout.ItemAborted"
    # And the never-launched items are recorded with their manifest line (reruns, status)
    never = store().get_item("run-cut", 3)
    assert never is not None and never.status == "ABORTED"
    assert (never.params, never.command) == ({"year": 2002}, ["-y", "2002"])
    # And the failed items are listed in the summary and the message
    assert "0 (FAILED)" in result["summary"]
    [message] = world.messages()
    assert {i["index"] for i in message["failed_items"]} == {0, 1, 2, 3}


def test_finalize_within_tolerated_failures_succeeds(world: World,
                                                     answers: MemoryCallbacks) -> None:
    # Given 1 of 4 items failed and 25 % is tolerated
    years("run-tol", retry={"max_attempts": 1}, tolerated_failure_percent=25)
    for index, kind in enumerate(["exit-1", "success", "success", "success"]):
        stopped(kind, launch(world, "run-tol", index, f"t{index}")["task_arn"], "run-tol",
                index, 1)
    # When Finalize runs, Then the run succeeded
    assert call("finalize", {"run_id": "run-tol", "outcome": {}})["status"] == "SUCCEEDED"


def test_finalize_twice_gives_the_same_answer(world: World, answers: MemoryCallbacks) -> None:
    # Given a finished run
    years("run-2f")
    first = call("finalize", {"run_id": "run-2f", "outcome": {"map_error": {"Error": "x"}}})
    # When Finalize is retried
    second = call("finalize", {"run_id": "run-2f", "outcome": {"map_error": {"Error": "x"}}})
    # Then the result is the same and one message was sent
    assert first == second and len(world.messages()) == 1


def test_reconcile_settles_a_lost_stopped_event(world: World, answers: MemoryCallbacks) -> None:
    # Given a task that stopped, whose event never came
    years("run-lost", retry={"max_attempts": 1})
    arn = launch(world, "run-lost", 0, "token-1")["task_arn"]
    world.ecs.stop_task(cluster=CLUSTER, task=arn, reason="Essential container in task exited")
    # When Reconcile runs
    counts = call("reconcile", {"source": "aws.scheduler"})
    # Then the attempt is settled from DescribeTasks and the token answered
    assert counts["settled"] == 1
    attempt = store().get_attempt("run-lost", 0, 1)
    assert attempt is not None and not attempt.is_open
    assert "token-1" in answers.answers
    assert totals("run-lost")["running"] == 0


def test_reconcile_stops_a_task_past_its_timeout(world: World, answers: MemoryCallbacks) -> None:
    # Given a task running past the run's 600 s timeout
    years("run-late", retry={"max_attempts": 1})
    arn = launch(world, "run-late", 0, "token-1")["task_arn"]
    # When Reconcile runs after the deadline
    counts = reconcile(store=store(), launcher=EcsLauncher(CLUSTER), callbacks=answers,
                       clock=lambda: utcnow() + timedelta(seconds=601))
    # Then the task is stopped and the item ends TIMED_OUT
    assert counts["timed_out"] == 1
    assert arn not in [t["taskArn"] for t in world.tasks()]
    item = store().get_item("run-late", 0)
    assert item is not None and item.status == "TIMED_OUT"
    assert answers.answers["token-1"][0] == "Fanout.ItemTimedOut"
    # And the task's own STOPPED event later changes nothing
    assert stopped("timeout", arn, "run-late", 0, 1)["result"] == "duplicate"
    assert totals("run-late")["timed_out"] == 1


def test_reconcile_leaves_running_tasks_alone(world: World, answers: MemoryCallbacks) -> None:
    # Given a task well within its timeout
    years("run-fine")
    launch(world, "run-fine", 0, "token-1")
    # When Reconcile runs, Then nothing is settled
    counts = call("reconcile", {})
    assert counts == {"open": 1, "settled": 0, "timed_out": 0, "lost": 0,
                      "leftovers": 0, "dispatcher_woken": 0}
    assert answers.calls == [] and len(world.tasks()) == 1


def abort_event(run_id: str, status: str) -> dict[str, object]:
    loaded = json.loads((EVENTS / "execution-aborted.json").read_text())
    loaded["detail"].update({"name": run_id, "status": status})
    return dict(loaded)


@pytest.mark.parametrize(("status", "run_status"), [("ABORTED", "ABORTED"),
                                                    ("TIMED_OUT", "TIMED_OUT")])
def test_abort_stops_the_runs_tasks(world: World, answers: MemoryCallbacks, status: str,
                                    run_status: str) -> None:
    # Given a run with two tasks running and one item succeeded
    years("run-ab")
    running = {launch(world, "run-ab", i, f"t{i}")["task_arn"] for i in (0, 1)}
    done = launch(world, "run-ab", 2, "t2")["task_arn"]
    world.ecs.stop_task(cluster=CLUSTER, task=done, reason="Essential container in task exited")
    stopped("success", done, "run-ab", 2, 1)
    # When its execution is stopped
    result = call("abort", abort_event("run-ab", status))
    # Then no task of the run keeps running, its items are ABORTED, the run is closed
    assert world.tasks() == []
    stopped_reasons = {t["taskArn"]: t["stoppedReason"] for t in world.tasks("STOPPED")}
    assert all(stopped_reasons[arn].startswith("fanout: run aborted") for arn in running)
    assert result["stopped"] == 2
    assert item_states("run-ab") == {"aborted": 3, "succeeded": 1}
    # And the item that never launched is recorded with its manifest line
    never = store().get_item("run-ab", 3)
    assert never is not None and never.status == "ABORTED"
    assert (never.params, never.command) == ({"year": 2002}, ["-y", "2002"])
    run = store().get_run("run-ab")
    assert run is not None and run.status == run_status
    assert run.totals()["aborted"] == 3 and run.totals()["pending"] == 0


def test_abort_of_a_rejected_run_only_announces_it(world: World,
                                                   answers: MemoryCallbacks) -> None:
    # Given a REJECTED run
    with pytest.raises(Exception, match="job"):
        start_run("run-rej", {"job": "nope", "params": {"x": [1]}})
    # When its FAILED execution event comes
    result = call("abort", abort_event("run-rej", "FAILED"))
    # Then nothing changes but the rejection is announced
    assert (result["result"], result["announced"]) == ("nothing to do", True)
    run = store().get_run("run-rej")
    assert run is not None and run.status == "REJECTED"


class AbortingBeforeRunTask:
    """Wraps the real launcher: the run's execution is stopped (and Abort runs) while a
    RunTask is in flight, before its task starts."""

    def __init__(self, inner: EcsLauncher, run_id: str) -> None:
        self.inner, self.run_id = inner, run_id

    def run_task(self, request: LaunchRequest) -> str:
        call("abort", abort_event(self.run_id, "ABORTED"))
        return self.inner.run_task(request)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_task_started_after_its_run_is_stopped_is_stopped_at_launch(
        world: World, answers: MemoryCallbacks) -> None:
    # Given a run whose execution is stopped while an item's RunTask is in flight
    years("run-mid")
    context.use(launcher=AbortingBeforeRunTask(EcsLauncher(CLUSTER), "run-mid"),
                cluster=CLUSTER)
    # When the Launch returns
    result = launch(world, "run-mid", 0, "t0")
    # Then it stopped its own task: nothing runs
    assert result["launched"] is False
    assert world.tasks() == []
    [task] = world.tasks("STOPPED")
    assert task["stoppedReason"] == "fanout: run aborted: started as the run was ABORTED"
    # And the item is ABORTED, once, and its token answered so
    assert item_states("run-mid") == {"aborted": 4}
    assert answers.answers["t0"][0] == "Fanout.ItemAborted"
    assert stopped("exit-1", task["taskArn"], "run-mid", 0, 1)["result"] == "duplicate"
    assert totals("run-mid")["aborted"] == 4


def test_abort_stops_a_task_whose_launch_had_not_recorded_it(
        world: World, answers: MemoryCallbacks) -> None:
    # Given a task started for a run whose Launch never recorded it (RunTask in flight,
    # or the Launch died after it)
    from tests.integration.test_launch_record import FlakyLauncher

    years("run-fly")
    context.use(launcher=FlakyLauncher(EcsLauncher(CLUSTER), die_after_run=1),
                cluster=CLUSTER)
    with pytest.raises(SystemExit):
        launch(world, "run-fly", 0, "t0")
    [running] = world.tasks()
    # When the run's execution is stopped
    result = call("abort", abort_event("run-fly", "ABORTED"))
    # Then Abort finds the task after closing the run and stops it
    assert result["stopped"] == 1
    assert world.tasks() == []
    [task] = world.tasks("STOPPED")
    assert task["taskArn"] == running["taskArn"]
    assert task["stoppedReason"] == "fanout: run aborted: its run is ABORTED"
    assert item_states("run-fly") == {"aborted": 4}


def test_reconcile_stops_a_task_whose_run_is_no_longer_running(
        world: World, answers: MemoryCallbacks) -> None:
    # Given a task still running for a run that was closed without stopping it (an Abort
    # that died after closing the run), and a task of another run, running normally
    years("run-gone")
    left = launch(world, "run-gone", 0, "t0")["task_arn"]
    store().finish_run("run-gone", "ABORTED", "2026-11-20T10:05:00Z", "aborted")
    years("run-on")
    alive = launch(world, "run-on", 0, "u0")["task_arn"]
    # When Reconcile runs
    counts = call("reconcile", {})
    # Then the left task is stopped as aborted, the other runs on
    assert counts["leftovers"] == 1
    assert [t["taskArn"] for t in world.tasks()] == [alive]
    [task] = world.tasks("STOPPED")
    assert task["taskArn"] == left
    assert task["stoppedReason"] == "fanout: run aborted: its run is ABORTED"


def test_reconcile_stops_a_late_task_whose_attempt_was_settled(
        world: World, answers: MemoryCallbacks) -> None:
    # Given a task that came up after its attempt was settled (as lost), run still RUNNING
    years("run-late2")
    arn = launch(world, "run-late2", 0, "t0")["task_arn"]
    attempt = store().get_attempt("run-late2", 0, 1)
    assert attempt is not None
    from fanout.records.model import Settlement

    assert store().settle_attempt(attempt, Settlement(
        status="RETRY", item_status=None, stop_class="lost", stopped_at="2026-11-20T10:01:00Z",
        answer={"outcome": "retry", "error": "Fanout.Retry", "cause": "{}"}))
    # When Reconcile runs, Then the task is stopped; a second pass finds nothing more
    assert call("reconcile", {})["leftovers"] == 1
    assert world.tasks() == []
    [task] = world.tasks("STOPPED")
    assert task["taskArn"] == arn
    assert task["stoppedReason"].startswith("fanout: attempt already settled")
    assert call("reconcile", {})["leftovers"] == 0


def test_reconcile_settles_a_lost_failed_stop_with_the_end_of_its_log(
        world: World, answers: MemoryCallbacks, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a task that wrote 25 lines and stopped without exiting 0, whose event never came
    read_log_groups(world, monkeypatch, answers)
    years("run-lost-tail", retry={"max_attempts": 1})
    arn = launch(world, "run-lost-tail", 0, "token-1")["task_arn"]
    write_task_log(arn, [f"year 1999 step {i}" for i in range(24)]
                   + ["FATAL: the input is corrupt"])
    lines = [f"year 1999 step {i}" for i in range(5, 24)] + ["FATAL: the input is corrupt"]
    world.ecs.stop_task(cluster=CLUSTER, task=arn, reason="Essential container in task exited")
    described = EcsLauncher.describe_tasks

    def exited_1(self: EcsLauncher, arns: list[str]) -> dict[str, dict[str, Any]]:
        tasks = described(self, arns)  # moto reports every stopped container as exit 0
        for container in tasks[arn]["containers"]:
            container["exitCode"] = 1
        return tasks

    monkeypatch.setattr(EcsLauncher, "describe_tasks", exited_1)
    # When Reconcile settles it
    counts = call("reconcile", {"source": "aws.scheduler"})
    # Then the attempt and the item carry its last lines, as when Record settles it
    assert counts["settled"] == 1
    attempt = store().get_attempt("run-lost-tail", 0, 1)
    item = store().get_item("run-lost-tail", 0)
    assert attempt is not None and item is not None
    assert (item.status, item.reason) == ("FAILED", "exit code 1")
    assert attempt.log_tail == item.log_tail == lines  # its last 20 lines
