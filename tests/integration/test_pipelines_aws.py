"""Pipelines on AWS under moto: Decide, AwaitStep and StepEnded driven as the pipeline
state machine and the execution-status rule drive them, each step an ordinary run made
by the real Expand, Launch, Record and Finalize handlers.

moto's interpreter is not run here: each step's execution is started on moto (not run),
and the test plays it (Expand, launches, task stops, Finalize), then delivers its
execution-status event to StepEnded, as EventBridge would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from fanout.records.pipelines import PipelineRecords
from fanout.runtime import context
from fanout.runtime.clock import iso, utcnow
from fanout.testing.callbacks import MemoryCallbacks
from tests.integration.conftest import BUCKET, REGION, TABLE, World
from tests.integration.helpers import call, launch, manifest, start_run, stopped

PIPELINE_MACHINE = "fanout-pipeline"


@pytest.fixture
def answers(world: World) -> MemoryCallbacks:
    fake = MemoryCallbacks()
    context.use(callbacks=fake)
    return fake


@pytest.fixture
def machine(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The run state machine on moto (its executions are started, not run)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name="fanout-run", roleArn="arn:aws:iam::123456789012:role/states",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                "End": True}}}))["stateMachineArn"]
    monkeypatch.setenv("FANOUT_RUN_MACHINE", arn)
    monkeypatch.setenv("FANOUT_PIPELINE_MACHINE", PIPELINE_MACHINE)
    yield arn


SEED = {
    "pipeline": "portfolio",
    "steps": {
        "prepare": {"job": "analyzer", "items": [{"year": 0}]},
        "years": {"job": "analyzer", "needs": ["prepare"],
                  "params": {"year": {"range": {"start": 1999, "stop": 2002}}}},
        "report": {"job": "analyzer", "items": [{"year": 9999}], "needs": ["years"]},
    },
}


def decide(pid: str, given: Any, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = call("decide", {
        "pipeline_run_id": pid, "start_time": iso(utcnow()), "input": given,
        "execution_arn": f"arn:aws:states:{REGION}:123456789012:execution:"
                         f"{PIPELINE_MACHINE}:{pid}", **extra})
    return result


def await_step(out: dict[str, Any], token: str) -> dict[str, Any]:
    result: dict[str, Any] = call("await_step", {"token": token,
                                                 "pipeline_run_id": out["pipeline_run_id"],
                                                 "changes": out["changes"]})
    return result


def ended(machine: str, run_id: str, status: str) -> dict[str, Any]:
    """StepEnded, given the execution-status event of ``run_id``."""
    result: dict[str, Any] = call("step_ended", {"detail": {
        "name": run_id, "status": status, "stateMachineArn": machine,
        "executionArn": f"{machine.replace(':stateMachine:', ':execution:')}:{run_id}"}})
    return result


def execution_input(machine: str, run_id: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{run_id}"
    found: dict[str, Any] = json.loads(sfn.describe_execution(executionArn=arn)["input"])
    return found


def play(world: World, machine: str, run_id: str, failing: frozenset[int] = frozenset()
         ) -> str:
    """Run a step's execution as the run state machine would: Expand on its input, every
    item launched and stopped (each succeeded one writes an output), Finalize. Returns
    the execution's ending status."""
    start_run(run_id, execution_input(machine, run_id))
    for item in manifest(world, run_id):
        index = item["index"]
        task = launch(world, run_id, index, f"{run_id}-token-{index}")["task_arn"]
        if index not in failing:
            world.s3.put_object(Bucket=BUCKET, Key=f"runs/{run_id}/outputs/{index}/result.csv",
                                Body=b"year,value\n")
        stopped("exit-1" if index in failing else "success", task, run_id, index, 1)
    while not (result := call("finalize", {"run_id": run_id,
                                           "outcome": {"run_id": run_id}}))["done"]:
        pass
    return "SUCCEEDED" if result["status"] == "SUCCEEDED" else "FAILED"


def steps_of(pid: str) -> dict[str, dict[str, Any]]:
    found = PipelineRecords(TABLE).get_pipeline_run(pid)
    assert found is not None
    return dict(found["steps"])


def test_seed_pipeline_runs_to_succeeded(world: World, answers: MemoryCallbacks,
                                         machine: str) -> None:
    # Given the seed's pipeline started: prepare -> years (a fan-out) -> report (a fan-in)
    pid = "portfolio-1"
    out = decide(pid, SEED)
    # Then only prepare started, as execution <pipeline run>.prepare linked to its pipeline
    assert not out["ended"] and out["status"] == "RUNNING"
    assert {n: s["status"] for n, s in steps_of(pid).items()} == {
        "prepare": "RUNNING", "years": "PENDING", "report": "PENDING"}
    assert execution_input(machine, f"{pid}.prepare")["pipeline_run"] == {
        "run_id": pid, "step": "prepare"}
    # When the loop waits, and each step's run ends in turn
    for number, step in enumerate(["prepare", "years", "report"]):
        assert await_step(out, f"wait-{number}") == {"waiting": True}
        status = play(world, machine, f"{pid}.{step}")
        assert ended(machine, f"{pid}.{step}", status)["recorded"] is True
        # Then the waiting token is answered, and Decide goes on
        assert answers.answers[f"wait-{number}"][0] == "success"
        out = decide(pid, out)
    # Then the pipeline SUCCEEDED, every step SUCCEEDED with its run
    assert out["ended"] and out["status"] == "SUCCEEDED"
    steps = steps_of(pid)
    assert {n: (s["status"], s["run_id"]) for n, s in steps.items()} == {
        n: ("SUCCEEDED", f"{pid}.{n}") for n in ("prepare", "years", "report")}
    assert steps["years"]["total"] == 3 and steps["years"]["succeeded"] == 3
    # And report was given FANOUT_INPUTS: an S3 manifest of every output of years
    spec = execution_input(machine, f"{pid}.report")
    uri = spec["environment"]["FANOUT_INPUTS"]
    assert uri == f"s3://{BUCKET}/pipelines/{pid}/report/inputs.jsonl"
    body = world.s3.get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert sorted(line["params"]["year"] for line in lines) == [1999, 2000, 2001]
    assert {(line["step"], line["key"], line["size"]) for line in lines} == {
        ("years", "result.csv", 11)}


def test_failed_step_skips_its_dependants_but_not_always(world: World, answers: MemoryCallbacks,
                                                         machine: str) -> None:
    # Given prepare fails one item of two; a notify step runs "when": "always"
    doc = {"pipeline": "portfolio", "steps": {
        "prepare": {"job": "analyzer", "items": [{"year": 1}, {"year": 2}],
                    "retry": {"max_attempts": 1}},
        "years": {"job": "analyzer", "items": [{"year": 3}], "needs": ["prepare"]},
        "report": {"job": "analyzer", "items": [{"year": 4}], "needs": ["years"]},
        "notify": {"job": "analyzer", "items": [{"year": 5}], "needs": ["prepare"],
                   "when": "always"}}}
    pid = "portfolio-2"
    out = decide(pid, doc)
    # When prepare's run ends FAILED
    assert play(world, machine, f"{pid}.prepare", failing=frozenset({1})) == "FAILED"
    ended(machine, f"{pid}.prepare", "FAILED")
    out = decide(pid, out)
    # Then years and report are SKIPPED with the reason, notify runs anyway
    steps = steps_of(pid)
    assert steps["prepare"]["status"] == "FAILED"
    assert steps["prepare"]["reason"] == "1 failed, 0 timed out, 0 aborted of 2"
    assert (steps["years"]["status"], steps["years"]["reason"]) == (
        "SKIPPED", "needs prepare (FAILED), which did not succeed")
    assert (steps["report"]["status"], steps["report"]["reason"]) == (
        "SKIPPED", "needs years (SKIPPED), which did not succeed")
    assert steps["notify"]["status"] == "RUNNING" and not out["ended"]
    # When notify ends, the pipeline ends FAILED
    ended(machine, f"{pid}.notify", play(world, machine, f"{pid}.notify"))
    out = decide(pid, out)
    assert out["ended"] and out["status"] == "FAILED"
    assert "prepare FAILED" in out["summary"] and "notify SUCCEEDED" in out["summary"]


def test_a_step_ending_before_awaitstep_stores_its_token(world: World,
                                                          answers: MemoryCallbacks,
                                                          machine: str) -> None:
    # Given Decide started prepare and returned the changes it read
    pid = "portfolio-3"
    out = decide(pid, SEED)
    # When prepare ends before AwaitStep ran (the race of the ADR)
    ended(machine, f"{pid}.prepare", play(world, machine, f"{pid}.prepare"))
    # Then AwaitStep does not wait: it answers its own token at once
    assert await_step(out, "late-token") == {"waiting": False}
    assert answers.answers["late-token"][0] == "success"
    # And Decide, run again, starts years
    decide(pid, out)
    assert steps_of(pid)["years"]["status"] == "RUNNING"


def test_duplicate_and_lost_events(world: World, answers: MemoryCallbacks, machine: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Given prepare ended and its event was delivered twice
    pid = "portfolio-4"
    out = decide(pid, SEED)
    assert await_step(out, "t1") == {"waiting": True}
    status = play(world, machine, f"{pid}.prepare")
    assert ended(machine, f"{pid}.prepare", status)["recorded"] is True
    assert ended(machine, f"{pid}.prepare", status)["recorded"] is False
    # Then it counted once: one change, one answer
    record = PipelineRecords(TABLE).get_pipeline_run(pid)
    assert record is not None and record["changes"] == 1
    assert [c[1] for c in answers.calls].count("t1") == 1
    # When years ends and its event is lost, and AwaitStep times out
    out = decide(pid, out)
    assert await_step(out, "t2") == {"waiting": True}
    play(world, machine, f"{pid}.years")
    from fanout.aws.stepfunctions import Executions

    monkeypatch.setattr(Executions, "status", lambda self, name: "SUCCEEDED")
    out = decide(pid, {**out, "timed_out": {"Error": "States.Timeout"}})
    # Then Decide read years' execution, recorded it SUCCEEDED, and started report
    steps = steps_of(pid)
    assert steps["years"]["status"] == "SUCCEEDED"
    assert steps["report"]["status"] == "RUNNING"


def test_pipeline_times_out(world: World, answers: MemoryCallbacks, machine: str) -> None:
    # Given a pipeline with a 60 s timeout, whose first step runs
    pid = "portfolio-5"
    doc = {**SEED, "timeout_seconds": 60}
    decide(pid, doc)
    # When its deadline has passed and Decide runs (AwaitStep timed out)
    PipelineRecords(TABLE).update_pipeline(pid, {"deadline": "2020-01-01T00:01:00.000Z"})
    out = decide(pid, {"timed_out": {}})
    # Then the running step was stopped (ABORTED), the others SKIPPED, the pipeline TIMED_OUT
    assert out["ended"] and out["status"] == "TIMED_OUT"
    steps = steps_of(pid)
    assert steps["prepare"]["status"] == "ABORTED"
    assert steps["years"]["reason"] == "the pipeline timed out after 60 s"
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{pid}.prepare"
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_items_from_a_step_written_over_several_decides(world: World, answers: MemoryCallbacks,
                                                        machine: str) -> None:
    # Given years ran 3 items, 2 of which succeeded, and charts takes its items from years
    from fanout.aws.stepfunctions import Executions
    from fanout.config import FanoutConfig
    from fanout.records.dynamo import DynamoRecords
    from fanout.runtime.closing import Budget
    from fanout.runtime.pipeline import DecideInput, Decider
    from tests.integration.conftest import JOBS

    doc = {"pipeline": "charts", "steps": {
        "years": {"job": "analyzer", "params": {"year": {"range": {"start": 1999, "stop": 2002}}},
                  "retry": {"max_attempts": 1}},
        "charts": {"job": "analyzer", "items_from": {"step": "years"}, "needs": ["years"],
                   "command": ["--chart", "{year}", "--from", "{input}"],
                   "when": "always"}}}
    pid = "charts-1"
    decider = Decider(pipelines=PipelineRecords(TABLE), runs=DynamoRecords(TABLE),
                      executions=Executions(machine), callbacks=answers, s3=world.s3,
                      bucket=BUCKET, config=FanoutConfig.model_validate({"jobs": JOBS}),
                      budget=Budget(0), page_records=1)
    decider(DecideInput(pipeline_run_id=pid, start_time=iso(utcnow()), input=doc))
    ended(machine, f"{pid}.years", play(world, machine, f"{pid}.years",
                                        failing=frozenset({1})))
    # When Decide may read one page of item records per invocation
    outs = [decider(DecideInput(pipeline_run_id=pid, input={}))]
    while outs[-1]["again"]:
        outs.append(decider(DecideInput(pipeline_run_id=pid, input={})))
    # Then it took several invocations (each asking to be called again at once), then
    # started charts on one S3 object holding the succeeded items with their output
    assert len(outs) >= 3
    spec = execution_input(machine, f"{pid}.charts")
    assert spec["items_from"] == f"s3://{BUCKET}/pipelines/{pid}/charts/items.jsonl"
    assert spec["items_format"] == "jsonl"
    body = world.s3.get_object(Bucket=BUCKET, Key=f"pipelines/{pid}/charts/items.jsonl")
    lines = [json.loads(line) for line in body["Body"].read().decode().splitlines()]
    assert lines == [
        {"year": 1999, "input": f"s3://{BUCKET}/runs/{pid}.years/outputs/0/"},
        {"year": 2001, "input": f"s3://{BUCKET}/runs/{pid}.years/outputs/2/"}]
    # And the step's run expands those items
    assert [i["params"] for i in manifest_of(world, f"{pid}.charts", machine)] == [
        {"year": 1999, "input": f"s3://{BUCKET}/runs/{pid}.years/outputs/0/"},
        {"year": 2001, "input": f"s3://{BUCKET}/runs/{pid}.years/outputs/2/"}]


def manifest_of(world: World, run_id: str, machine: str) -> list[dict[str, Any]]:
    start_run(run_id, execution_input(machine, run_id))
    return manifest(world, run_id)


def test_a_pipeline_named_in_the_config_starts_by_its_name(
        world: World, answers: MemoryCallbacks, machine: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the config names the seed's pipeline (Decide's FANOUT_PIPELINES)
    named = {k: v for k, v in SEED.items() if k != "pipeline"}
    monkeypatch.setenv("FANOUT_PIPELINES", json.dumps({"nightly": named}))
    context.reset()
    context.use(callbacks=answers)
    # When the console starts {"pipeline": "nightly"}
    out = decide("nightly-1", {"pipeline": "nightly", "trigger": "console"})
    # Then it runs the configured document: its first step started
    assert out["status"] == "RUNNING"
    record = PipelineRecords(TABLE).get_pipeline_run("nightly-1")
    assert record is not None and record["pipeline"] == "nightly"
    assert record["steps"]["prepare"]["status"] == "RUNNING"
    # And an unknown name fails the execution, naming the known ones, nothing recorded
    from fanout.runtime.errors import InvalidPipelineSpec

    with pytest.raises(InvalidPipelineSpec, match=r"no pipeline 'nope' in the config "
                                                  r"\(pipelines: nightly\)"):
        decide("nope-1", {"pipeline": "nope"})
    assert PipelineRecords(TABLE).get_pipeline_run("nope-1") is None


def test_pipeline_runs_are_listed_by_name_and_time(world: World, answers: MemoryCallbacks,
                                                   machine: str) -> None:
    from fanout.records.pipelines import pipeline_view

    # Given two runs of the seed pipeline and one of another, started one after the other
    decide("portfolio-a", SEED, start_time="2026-12-05T01:00:00Z")
    waiting = decide("portfolio-b", SEED, start_time="2026-12-05T02:00:00Z")
    assert await_step(waiting, "secret-token") == {"waiting": True}
    decide("other-a", {**SEED, "pipeline": "other"}, start_time="2026-12-05T03:00:00Z")
    store = PipelineRecords(TABLE)
    # When they are listed, by name and all together (what the dashboard reads)
    by_name = [r["pipeline_run_id"] for r in store.list_pipeline_runs("portfolio")]
    every = [r["pipeline_run_id"] for r in store.list_pipeline_runs(year=2026)]
    # Then each listing is newest first, one index entry per pipeline run
    assert by_name == ["portfolio-b", "portfolio-a"]
    assert every == ["other-a", "portfolio-b", "portfolio-a"]
    assert store.list_pipeline_runs("portfolio", limit=1)[0]["pipeline_run_id"] == "portfolio-b"
    # And a run reads as users read it, without the loop's task token
    view = pipeline_view(store.get_pipeline_run("portfolio-b") or {})
    assert view["steps"]["prepare"]["status"] == "RUNNING"
    assert view["steps"]["years"]["needs"] == ["prepare"]
    assert "secret-token" not in json.dumps(store.get_pipeline_run("portfolio-b"))


def test_rerun_failed_reruns_the_failed_items_then_what_was_skipped(
        world: World, answers: MemoryCallbacks, machine: str) -> None:
    # Given a pipeline run whose prepare failed one item of two (years, report SKIPPED)
    doc = {"pipeline": "portfolio", "steps": {
        "prepare": {"job": "analyzer", "items": [{"year": 1}, {"year": 2}],
                    "retry": {"max_attempts": 1}},
        "years": {"job": "analyzer", "items": [{"year": 3}], "needs": ["prepare"]},
        "other": {"job": "analyzer", "items": [{"year": 4}]}}}
    out = decide("portfolio-6", {**doc, "trigger": "cli"})
    for step, failing in (("prepare", frozenset({1})), ("other", frozenset())):
        ended(machine, f"portfolio-6.{step}", play(world, machine, f"portfolio-6.{step}",
                                                   failing=failing))
    assert decide("portfolio-6", out)["status"] == "FAILED"
    # When it is rerun for what failed (as `fanout rerun PIPELINE_RUN --failed` starts it)
    out = decide("portfolio-7", {"rerun_of": "portfolio-6", "select": "failed",
                                 "trigger": "cli"})
    # Then other, which succeeded, is carried over; prepare reruns its failed item only,
    # as a rerun of its run linked to the new pipeline run
    record = PipelineRecords(TABLE).get_pipeline_run("portfolio-7")
    assert record is not None and record["parent_pipeline_run"] == "portfolio-6"
    steps = record["steps"]
    assert (steps["other"]["status"], steps["other"]["reason"]) == (
        "SUCCEEDED", "carried over from portfolio-6")
    assert steps["prepare"]["runs"] == ["portfolio-6.prepare", "portfolio-7.prepare"]
    assert execution_input(machine, "portfolio-7.prepare") == {
        "rerun_of": "portfolio-6.prepare", "select": "failed", "trigger": "cli",
        "pipeline_run": {"run_id": "portfolio-7", "step": "prepare"}}
    rerun = play(world, machine, "portfolio-7.prepare")
    assert [i["params"] for i in manifest(world, "portfolio-7.prepare")] == [{"year": 2}]
    # And once it succeeds, years (skipped before) runs from its spec
    ended(machine, "portfolio-7.prepare", rerun)
    decide("portfolio-7", out)
    assert steps_of("portfolio-7")["years"]["status"] == "RUNNING"


def test_a_stopped_pipeline_execution_stops_its_steps(world: World, answers: MemoryCallbacks,
                                                      machine: str) -> None:
    # Given a pipeline run whose first step runs
    decide("portfolio-8", SEED)
    # When its execution is stopped (console, fanout stop) and StepEnded gets the event
    pipeline_machine = f"arn:aws:states:{REGION}:123456789012:stateMachine:{PIPELINE_MACHINE}"
    result = ended(pipeline_machine, "portfolio-8", "ABORTED")
    # Then the running step's run is stopped and recorded ABORTED, the others SKIPPED, and
    # the pipeline run ABORTED, each with the reason
    assert result == {"pipeline_run_id": "portfolio-8", "stopped": True}
    record = PipelineRecords(TABLE).get_pipeline_run("portfolio-8")
    assert record is not None and record["status"] == "ABORTED"
    reason = "the pipeline's execution ended ABORTED"
    assert {n: (s["status"], s["reason"]) for n, s in record["steps"].items()} == {
        "prepare": ("ABORTED", reason), "years": ("SKIPPED", reason),
        "report": ("SKIPPED", reason)}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:portfolio-8.prepare"
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    # And the event delivered again changes nothing
    assert ended(pipeline_machine, "portfolio-8", "ABORTED") == {
        "ignored": "the pipeline run has ended"}
