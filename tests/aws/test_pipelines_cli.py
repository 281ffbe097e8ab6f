"""``fanout start PIPELINE.json``, ``fanout status PIPELINE_RUN`` and ``fanout rerun
PIPELINE_RUN`` against a deployed stack (moto's server): what a user runs and reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fanout.records.pipelines import PipelineRecords
from tests.aws.conftest import STACK, TABLE, Stack

PIPELINE = {
    "pipeline": "portfolio",
    "steps": {
        "prepare": {"job": "analyzer", "items": [{"year": 1999}]},
        "years": {"job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 2003}}},
                  "needs": ["prepare"]},
        "report": {"job": "analyzer", "items": [{"year": 0}], "needs": ["years"]},
    },
}


def as_json(done: Any) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def seed_pipeline_run(stack: Stack, pid: str, statuses: dict[str, str]) -> None:
    """A pipeline run's records as Decide and StepEnded leave them."""
    store = PipelineRecords(TABLE, stack.client("dynamodb"))
    ended = all(s not in ("RUNNING", "PENDING") for s in statuses.values())
    status = "RUNNING" if not ended else (
        "SUCCEEDED" if set(statuses.values()) == {"SUCCEEDED"} else "FAILED")
    store.create({"pipeline_run_id": pid, "pipeline": "portfolio", "spec": PIPELINE,
                  "status": status, "trigger": "cli", "started_at": "2026-12-01T09:00:00.000Z",
                  "deadline": "2026-12-15T09:00:00.000Z"},
                 {name: {"status": s, "runs": [f"{pid}.{name}"] if s not in ("PENDING",
                                                                              "SKIPPED") else [],
                         "run_id": f"{pid}.{name}" if s not in ("PENDING", "SKIPPED") else None,
                         "reason": "needs years (FAILED), which did not succeed"
                         if s == "SKIPPED" else None}
                  for name, s in statuses.items()}, expires_at=2_000_000_000)


def test_start_a_pipeline_starts_one_execution_named_by_its_run(stack: Stack,
                                                                 tmp_path: Path) -> None:
    # Given a pipeline document
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(PIPELINE))
    # When it is started
    done = as_json(stack.fanout("start", str(path), "--run-id", "portfolio-cli-1",
                                "--stack", STACK, "--json"))
    # Then it prints the pipeline run id and its steps, each with the run id it will have
    assert done["pipeline_run_id"] == "portfolio-cli-1"
    assert done["steps"] == {s: {"status": "PENDING", "run_id": f"portfolio-cli-1.{s}"}
                             for s in ("prepare", "years", "report")}
    # And one execution of the pipeline state machine runs, its input the document
    sfn = stack.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=done["execution_arn"])
    assert execution["stateMachineArn"] == stack.outputs["PipelineStateMachineArn"]
    assert execution["name"] == "portfolio-cli-1"
    assert json.loads(execution["input"]) == {**PIPELINE, "trigger": "cli"}


def test_start_refuses_a_bad_pipeline_with_one_line_and_starts_nothing(stack: Stack,
                                                                       tmp_path: Path) -> None:
    # Given a pipeline whose step needs an unknown step
    bad = json.loads(json.dumps(PIPELINE))
    bad["steps"]["report"]["needs"] = ["nope"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    sfn = stack.client("stepfunctions")
    before = sfn.list_executions(stateMachineArn=stack.outputs["PipelineStateMachineArn"])
    # When it is started, Then exit 2, one line naming the step and field, nothing started
    done = stack.fanout("start", str(path), "--stack", STACK)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fanout: invalid pipeline spec: steps.report.needs[0]: unknown step 'nope' "
        "(steps: prepare, years, report)"]
    after = sfn.list_executions(stateMachineArn=stack.outputs["PipelineStateMachineArn"])
    assert len(after["executions"]) == len(before["executions"])


def test_status_reads_a_pipeline_run_and_its_steps(stack: Stack) -> None:
    # Given a pipeline run whose years step failed
    seed_pipeline_run(stack, "portfolio-cli-2", {"prepare": "SUCCEEDED", "years": "FAILED",
                                                 "report": "SKIPPED"})
    # When its status is read
    done = as_json(stack.fanout("status", "portfolio-cli-2", "--stack", STACK, "--json"))
    # Then it says the pipeline's status and each step's status and run id
    assert done["status"] == "FAILED"
    assert {n: (s["status"], s["run_id"]) for n, s in done["steps"].items()} == {
        "prepare": ("SUCCEEDED", "portfolio-cli-2.prepare"),
        "years": ("FAILED", "portfolio-cli-2.years"),
        "report": ("SKIPPED", None)}
    assert done["steps"]["report"]["reason"] == "needs years (FAILED), which did not succeed"
    assert done["steps"]["report"]["needs"] == ["years"]
    # And the table form names them too
    text = stack.fanout("status", "portfolio-cli-2", "--stack", STACK)
    assert text.returncode == 0 and "years" in text.stdout and "SKIPPED" in text.stdout


def test_rerun_failed_starts_a_pipeline_run_linked_to_it(stack: Stack) -> None:
    # Given a pipeline run that failed
    seed_pipeline_run(stack, "portfolio-cli-3", {"prepare": "SUCCEEDED", "years": "FAILED",
                                                 "report": "SKIPPED"})
    # When it is rerun for its failed steps
    done = as_json(stack.fanout("rerun", "portfolio-cli-3", "--failed", "--run-id",
                                "portfolio-cli-4", "--stack", STACK, "--json"))
    # Then a new pipeline execution starts, told to rerun the failed steps of the old one
    sfn = stack.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=done["execution_arn"])
    assert execution["name"] == "portfolio-cli-4"
    assert json.loads(execution["input"]) == {"rerun_of": "portfolio-cli-3",
                                              "select": "failed", "trigger": "cli"}
    # And a pipeline run still running cannot be rerun
    seed_pipeline_run(stack, "portfolio-cli-5", {"prepare": "RUNNING", "years": "PENDING",
                                                 "report": "PENDING"})
    refused = stack.fanout("rerun", "portfolio-cli-5", "--all", "--stack", STACK)
    assert refused.returncode == 2
    assert "pipeline run portfolio-cli-5 is still running" in refused.stderr


def test_start_wait_follows_the_pipeline_run_to_its_end(stack: Stack, tmp_path: Path) -> None:
    # Given a pipeline whose run's records say it ended (as Decide leaves them)
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(PIPELINE))
    seed_pipeline_run(stack, "portfolio-cli-6", {"prepare": "SUCCEEDED", "years": "SUCCEEDED",
                                                 "report": "SUCCEEDED"})
    # When it is started with --wait
    done = stack.fanout("start", str(path), "--run-id", "portfolio-cli-6", "--stack", STACK,
                        "--wait", "--json")
    # Then it follows it to its end: each step's status on stderr, the summary on stdout
    assert done.returncode == 0, done.stderr
    assert "fanout: step report: SUCCEEDED" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "SUCCEEDED" and set(summary["steps"]) == {
        "prepare", "years", "report"}


def test_stop_a_pipeline_run_stops_its_execution(stack: Stack, tmp_path: Path) -> None:
    # Given a pipeline run started on the stack, its records saying it runs
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(PIPELINE))
    started = as_json(stack.fanout("start", str(path), "--run-id", "portfolio-cli-7",
                                   "--stack", STACK, "--json"))
    seed_pipeline_run(stack, "portfolio-cli-7", {"prepare": "RUNNING", "years": "PENDING",
                                                 "report": "PENDING"})
    PipelineRecords(TABLE, stack.client("dynamodb")).update_pipeline(
        "portfolio-cli-7", {"execution_arn": started["execution_arn"]})
    # When it is stopped
    done = stack.fanout("stop", "portfolio-cli-7", "--stack", STACK)
    # Then its execution is stopped (StepEnded then stops its steps, tested apart)
    assert done.returncode == 0, done.stderr
    assert "stopping pipeline run portfolio-cli-7" in done.stdout
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=started["execution_arn"])["status"] == "ABORTED"
    # And a pipeline run that has ended is said to have ended
    seed_pipeline_run(stack, "portfolio-cli-8", {"prepare": "SUCCEEDED", "years": "SUCCEEDED",
                                                 "report": "SUCCEEDED"})
    ended = stack.fanout("stop", "portfolio-cli-8", "--stack", STACK)
    assert ended.returncode == 0 and "has already ended: SUCCEEDED" in ended.stdout
