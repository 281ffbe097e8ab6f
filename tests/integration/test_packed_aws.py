"""A packed run on (emulated) AWS: the dispatcher starts the job's ``-packed`` task definition
with the agent's batch in the run bucket, and Record settles each item from the results the
agent uploaded (docs/decisions/0020, 0021)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fanout.runtime import context
from fanout.runtime.packed_agent import Location, Uploader, lay_out
from fanout.runtime.packing import ItemResult
from fanout.testing.callbacks import MemoryCallbacks
from tests.integration.conftest import BUCKET, CLUSTER, CONTAINER, EVENTS, JOBS, World
from tests.integration.helpers import call, manifest, start_run, store, totals

ENTRYPOINT = ["python", "/app/analyze.py"]
AGENT = "fanout-agent"


@pytest.fixture
def packed(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """The analyzer job as the stack deploys a job that packs: its entrypoint in the
    config, and a ``-packed`` task definition with the runner and the agent beside it."""
    arn = world.ecs.register_task_definition(
        family="fanout-analyzer-packed", networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[
            {"name": CONTAINER, "image": "analyzer:latest", "memory": 256, "essential": True},
            {"name": "fanout-runner", "image": "runner:latest", "memory": 64,
             "essential": False},
            {"name": AGENT, "image": "agent:latest", "memory": 128, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    jobs = copy.deepcopy(JOBS)
    jobs["analyzer"]["entrypoint"] = ENTRYPOINT
    monkeypatch.setenv("FANOUT_JOBS", json.dumps(jobs))
    monkeypatch.setenv("FANOUT_TASK_DEFINITIONS", json.dumps({"analyzer": {
        "task_definition": world.task_definition, "container": CONTAINER,
        "packed_task_definition": arn, "agent_container": AGENT}}))
    context.reset()
    from fanout.aws import clients

    clients.provide("lambda", world.wakes)
    return str(arn)


@pytest.fixture
def answers(packed: str) -> MemoryCallbacks:
    fake = MemoryCallbacks()
    context.use(callbacks=fake)
    return fake


def start_packed(world: World, run_id: str, **spec: Any) -> dict[str, Any]:
    """Six items, three per task: the manifest's two batches, each launched by its child
    execution's first Launch (token ``token-b0``, ``token-b1``), then dispatched."""
    expanded = start_run(run_id, {"job": "analyzer", "items_per_task": 3,
                                  "params": {"year": {"range": {"start": 2000, "stop": 2006}}},
                                  **spec})
    for element in manifest(world, run_id):
        result = call("launch", {"token": f"token-b{element['batch']}", "run_id": run_id,
                                 "item": element})
        assert result.get("queued") == 3, result
    call("dispatch", {})
    return expanded


def batch_of(task: dict[str, Any]) -> str:
    [override] = task["overrides"]["containerOverrides"]
    return str({e["name"]: e["value"] for e in override["environment"]}["FANOUT_BATCH"])


def stopped_event(task: dict[str, Any], kind: str, job_exit: int | None,
                  agent_exit: int = 0) -> dict[str, Any]:
    """The task's STOPPED event as EventBridge sends it, from a recorded one of ``kind``."""
    e: dict[str, Any] = json.loads((EVENTS / f"task-stopped-{kind}.json").read_text())
    detail = e["detail"]
    template = detail["containers"][0]
    detail.update(taskArn=task["taskArn"], overrides=task["overrides"],
                  taskDefinitionArn=task["taskDefinitionArn"])
    detail["containers"] = [
        {**template, "name": CONTAINER, "taskArn": task["taskArn"], "exitCode": job_exit},
        {**template, "name": AGENT, "taskArn": task["taskArn"], "exitCode": agent_exit}]
    e["resources"] = [task["taskArn"]]
    return e


def upload(world: World, task: dict[str, Any], out: Path, *results: ItemResult) -> None:
    """What the agent uploads of the runner's files: each item's mark and result."""
    out.mkdir(parents=True, exist_ok=True)
    for result in results:
        (out / f"{result.index}.started").write_text(result.started + "\n")
        (out / f"{result.index}.json").write_text(json.dumps(result.to_json()))
    assert Uploader(world.s3, Location.parse(batch_of(task)), out).sweep() == 0


def test_a_packed_run_starts_one_packed_task_per_batch_with_its_batch_in_the_bucket(
        world: World, packed: str, answers: MemoryCallbacks, tmp_path: Path) -> None:
    # Given a run of six items, three per task, of a job that packs
    # When its items are launched and dispatched
    start_packed(world, "run-p")
    # Then two tasks of the packed task definition run, each carrying three items
    tasks = world.tasks()
    assert len(tasks) == 2
    assert {t["taskDefinitionArn"] for t in tasks} == {packed}
    attempts = [store().get_attempt("run-p", i, 1) for i in range(6)]
    assert all(a is not None and a.task_arn for a in attempts)
    by_task = sorted(sorted(a.index for a in attempts if a and a.task_arn == t["taskArn"])
                     for t in tasks)
    assert by_task == [[0, 1, 2], [3, 4, 5]]
    # And only the agent is overridden, with its batch in the run bucket
    first = next(t for t in tasks if t["taskArn"] == attempts[0].task_arn)  # type: ignore
    [override] = first["overrides"]["containerOverrides"]
    assert override["name"] == AGENT and "command" not in override
    location = Location.parse(batch_of(first))
    assert location.bucket == BUCKET and location.key.startswith("runs/run-p/tasks/")
    # And the agent reads it: each item's command after the image's entrypoint, its
    # environment, attempt and timeout, in index order
    batch = json.loads(world.s3.get_object(Bucket=BUCKET, Key=location.key)["Body"].read())
    assert lay_out(batch, tmp_path / "batch", ENTRYPOINT) == [0, 1, 2]
    assert (tmp_path / "batch/1/argv").read_bytes() == b"python\0/app/analyze.py\0-y\0002001\0"
    env = dict(p.split("=", 1) for p in
               (tmp_path / "batch/1/env").read_bytes().decode().split("\0") if p)
    assert env["FANOUT_ITEM_INDEX"] == "1" and env["FANOUT_ATTEMPT"] == "1"
    assert env["FANOUT_OUTPUT"] == f"s3://{BUCKET}/runs/run-p/outputs/1/"
    assert (tmp_path / "batch/1/timeout").read_text() == "600.0\n"
    # And the run counts its six items running
    assert totals("run-p")["running"] == 6


def test_a_stopped_packed_task_settles_each_item_from_the_agents_uploads(
        world: World, packed: str, answers: MemoryCallbacks, tmp_path: Path) -> None:
    # Given a packed run whose first task ran item 0 (exit 0) and item 1 (exit 1), then
    # was interrupted by Spot before it started item 2
    start_packed(world, "run-s")
    first = next(t for t in world.tasks()
                 if t["taskArn"] == store().get_attempt("run-s", 0, 1).task_arn)  # type: ignore
    upload(world, first, tmp_path / "out",
           ItemResult(0, 1, 0, "2026-11-20T10:00:12Z", "2026-11-20T10:00:15Z"),
           ItemResult(1, 1, 1, "2026-11-20T10:00:15Z", "2026-11-20T10:00:18Z",
                      log_tail=("bad year",)))
    # When its STOPPED event reaches Record
    result = call("record", stopped_event(first, "spot", 143))
    # Then item 0 succeeded, item 1 is to be retried, item 2 waits in the queue again
    assert result["items"] == {"0": "success", "1": "retry", "2": "requeued"}
    failed = store().get_attempt("run-s", 1, 1)
    assert failed is not None and failed.exit_code == 1
    # And the batch's child is not answered yet: item 2 still has its attempt open
    assert "token-b0" not in answers.answers
    # And item 2's attempt is not spent: the same attempt, queued, without a task
    again = store().get_attempt("run-s", 2, 1)
    assert again is not None and again.is_open and again.queued and not again.task_arn
    item = store().get_item("run-s", 2)
    assert item is not None and item.attempts == 1
    # And the other task's items still run
    assert all(store().get_attempt("run-s", i, 1).status == "RUNNING"  # type: ignore
               for i in (3, 4, 5))


def test_a_batch_the_agent_refused_spends_its_items_attempts_rather_than_requeue_forever(
        world: World, packed: str, answers: MemoryCallbacks) -> None:
    # Given a packed task whose agent refused its batch (exit 2) before the runner ran
    start_packed(world, "run-b")
    first = next(t for t in world.tasks()
                 if t["taskArn"] == store().get_attempt("run-b", 0, 1).task_arn)  # type: ignore
    # When its STOPPED event reaches Record, with nothing under items/
    result = call("record", stopped_event(first, "exit-1", 143, agent_exit=2))
    # Then no item goes back to the queue: each takes the task's stop and its attempt
    assert set(result["items"].values()) != {"requeued"} and result["requeued"] == 0
    for index in (0, 1, 2):
        attempt = store().get_attempt("run-b", index, 1)
        assert attempt is not None and not attempt.is_open


def test_a_job_without_a_packed_task_definition_keeps_one_item_per_task(
        world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a packed run of a job the deployment has no -packed task definition for
    jobs = copy.deepcopy(JOBS)
    jobs["analyzer"]["entrypoint"] = ENTRYPOINT
    monkeypatch.setenv("FANOUT_JOBS", json.dumps(jobs))
    context.reset()
    from fanout.aws import clients

    clients.provide("lambda", world.wakes)
    context.use(callbacks=MemoryCallbacks())
    # When its items are launched and dispatched
    start_packed(world, "run-u")
    # Then each item has its own task of the job's task definition
    tasks = world.tasks()
    assert len(tasks) == 6
    assert {t["taskDefinitionArn"] for t in tasks} == {world.task_definition}


# --- the batch child: one child execution, one token, per batch (docs/decisions/0020) -------

def task_of(world: World, run_id: str, index: int, attempt: int = 1) -> dict[str, Any]:
    """The task the item's attempt runs in."""
    found = store().get_attempt(run_id, index, attempt)
    assert found is not None and found.task_arn, (index, attempt, found)
    return next(t for t in world.tasks() if t["taskArn"] == found.task_arn)


def items_of(world: World, task: dict[str, Any]) -> list[tuple[int, int]]:
    """The (index, attempt) pairs the task's batch object carries."""
    location = Location.parse(batch_of(task))
    batch = json.loads(world.s3.get_object(Bucket=BUCKET, Key=location.key)["Body"].read())
    return [(i["index"], i["attempt"]) for i in batch["items"]]


def ok(index: int, attempt: int = 1, code: int = 0) -> ItemResult:
    return ItemResult(index, attempt, code, "2026-11-20T10:00:12Z", "2026-11-20T10:00:15Z")


def test_expand_writes_a_packed_run_as_batches_and_sizes_the_map_in_tasks(
        world: World, packed: str) -> None:
    # Given a run of six items, three per task, 4 items at once, 2 per task at once
    # When it is expanded
    out = start_packed(world, "run-x", max_concurrency=4, per_task_concurrency=2)
    # Then its manifest holds two batches of three items, in index order
    elements = manifest(world, "run-x")
    assert [e["batch"] for e in elements] == [0, 1]
    assert [[i["index"] for i in e["items"]] for e in elements] == [[0, 1, 2], [3, 4, 5]]
    # And the map runs 4 // 2 = 2 batch children at once, tolerates their failures (the
    # run is judged by its items' counts), and waits for a batch's two rounds of items
    assert out["max_concurrency"] == 2 and out["tolerated_failure_percent"] == 100.0
    assert out["callback_timeout_seconds"] >= 2 * out["timeout_seconds"]
    run = store().get_run("run-x")
    assert run is not None and run.settings["max_concurrency"] == 4


def test_a_batch_over_a_child_executions_input_limit_is_rejected(world: World,
                                                                 packed: str) -> None:
    # Given 40 items of 10 KB of parameters each, all in one task (400 KB > 256 KiB)
    spec = {"job": "analyzer", "items_per_task": 40,
            "items": [{"year": 2000 + i, "note": "x" * 10_000} for i in range(40)]}
    # When it is expanded, Then Expand refuses it, naming items_per_task, and the run is
    # REJECTED with nothing launched
    with pytest.raises(Exception, match="items_per_task"):
        start_run("run-big", spec)
    run = store().get_run("run-big")
    assert run is not None and run.status == "REJECTED"
    assert "items_per_task" in (run.summary or "")
    assert world.tasks() == []


def test_a_batch_child_answers_once_and_its_next_turn_carries_only_the_failed_item(
        world: World, packed: str, answers: MemoryCallbacks, tmp_path: Path) -> None:
    # Given a packed run whose first task ran item 0 (exit 0) and item 1 (exit 1), then
    # was interrupted by Spot before it started item 2
    start_packed(world, "run-t")
    first = task_of(world, "run-t", 0)
    upload(world, first, tmp_path / "a", ok(0), ok(1, code=1))
    assert call("record", stopped_event(first, "spot", 143))["requeued"] == 1
    # When the dispatcher runs again
    call("dispatch", {})
    # Then item 2 goes alone in a task of its own, its attempt not spent, and the child
    # still waits: its token is the whole batch's
    second = task_of(world, "run-t", 2)
    assert items_of(world, second) == [(2, 1)]
    assert "token-b0" not in answers.answers
    # When that task ends
    upload(world, second, tmp_path / "b", ok(2))
    call("record", stopped_event(second, "success", 0))
    # Then the child's token is answered once: another turn for item 1 alone, after its
    # own backoff
    error, cause = answers.answers["token-b0"]
    assert error == "Fanout.Retry"
    assert json.loads(cause) == {"pending": [1], "delay_seconds": 10}
    assert [c for c in answers.calls if c[1] == "token-b0"] == [(error, "token-b0", cause)]
    # When the child launches its next turn (after its Wait)
    [element, _] = manifest(world, "run-t")
    turn = call("launch", {"token": "token-b0-2", "run_id": "run-t", "item": element})
    call("dispatch", {})
    # Then only item 1 is queued, with its second attempt, in a task of its own
    assert turn["queued"] == 1
    third = task_of(world, "run-t", 1, attempt=2)
    assert items_of(world, third) == [(1, 2)]
    # When it succeeds, Then the child succeeds: its batch's three items SUCCEEDED
    upload(world, third, tmp_path / "c", ok(1, attempt=2))
    call("record", stopped_event(third, "success", 0))
    assert answers.answers["token-b0-2"] == (
        "success", {"run_id": "run-t", "batch": 0, "items": 3, "succeeded": 3})
    assert [store().get_item("run-t", i).status for i in range(3)] == ["SUCCEEDED"] * 3  # type: ignore


def test_a_batch_child_whose_item_failed_for_good_fails(
        world: World, packed: str, answers: MemoryCallbacks, tmp_path: Path) -> None:
    # Given a packed run without retries whose first task's item 1 exits 1
    start_packed(world, "run-f", retry={"max_attempts": 1})
    first = task_of(world, "run-f", 0)
    upload(world, first, tmp_path / "a", ok(0), ok(1, code=1), ok(2))
    # When its STOPPED event reaches Record
    call("record", stopped_event(first, "success", 0))
    # Then the batch's child fails with the item's error, saying how many did not succeed
    error, cause = answers.answers["token-b0"]
    assert error == "Fanout.ItemFailed"
    assert cause.startswith("1 of 3 items of batch 0 did not succeed")
    # And a Launch of the settled batch (a retried Lambda) answers again at once, queuing
    # nothing
    [element, _] = manifest(world, "run-f")
    again = call("launch", {"token": "token-b0-again", "run_id": "run-f", "item": element})
    assert again["reason"] == "batch already settled"
    assert answers.answers["token-b0-again"][0] == "Fanout.ItemFailed"


def test_reconcile_settles_a_lost_packed_task_and_answers_its_child_once(
        world: World, packed: str, answers: MemoryCallbacks, tmp_path: Path) -> None:
    # Given a packed task whose three items ended, and whose STOPPED event never came
    start_packed(world, "run-r")
    first = task_of(world, "run-r", 0)
    upload(world, first, tmp_path / "a", ok(0), ok(1), ok(2))
    world.ecs.stop_task(cluster=CLUSTER, task=first["taskArn"], reason="Essential container "
                        "in task exited")
    # When Reconcile runs
    call("reconcile", {"source": "aws.scheduler"})
    # Then each item settled by its own result, and the batch's child was answered once
    assert [store().get_item("run-r", i).status for i in range(3)] == ["SUCCEEDED"] * 3  # type: ignore
    assert [c[0] for c in answers.calls if c[1] == "token-b0"] == ["success"]
    # And the other batch's task still runs, its child waiting
    assert "token-b1" not in answers.answers


def test_abort_of_a_packed_run_stops_its_tasks_and_aborts_their_items(
        world: World, packed: str, answers: MemoryCallbacks) -> None:
    # Given a packed run whose two tasks run its six items
    start_packed(world, "run-a")
    assert len(world.tasks()) == 2
    # When its execution is stopped
    loaded = json.loads((EVENTS / "execution-aborted.json").read_text())
    loaded["detail"].update({"name": "run-a", "status": "ABORTED"})
    call("abort", loaded)
    # Then both tasks are stopped, every item is ABORTED, the run is closed
    assert world.tasks() == []
    assert [store().get_item("run-a", i).status for i in range(6)] == ["ABORTED"] * 6  # type: ignore
    run = store().get_run("run-a")
    assert run is not None and run.status == "ABORTED" and run.totals()["aborted"] == 6


def test_finalize_sweeps_a_packed_run_s_never_launched_items_from_its_batches(
        world: World, packed: str, answers: MemoryCallbacks) -> None:
    # Given a packed run whose map failed before any batch launched
    start_run("run-n", {"job": "analyzer", "items_per_task": 4,
                        "params": {"year": {"range": {"start": 2000, "stop": 2006}}}})
    # When Finalize closes it
    call("finalize", {"run_id": "run-n", "outcome": {"map_error": {"Error": "States.Runtime"}}})
    # Then each item is ABORTED with its own manifest line, read out of its batch
    items = [store().get_item("run-n", i) for i in range(6)]
    assert [(i.status, i.params) for i in items if i] == [
        ("ABORTED", {"year": 2000 + n}) for n in range(6)]
