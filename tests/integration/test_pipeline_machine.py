"""The pipeline state machine run by moto's interpreter, end to end.

The definition is :func:`infra.pipelines.definition` (what the stack synthesizes, ARNs
given), run by moto's Step Functions interpreter; its ``lambda:invoke`` tasks run the real
Decide and AwaitStep handlers in process (as the local mode routes moto's Lambda backend).
Each step's run is an execution of a stand-in run state machine that moto runs at once (a
Choice: the step named ``years`` fails, the others succeed), and a thread plays
EventBridge's execution-status rule: every run execution that ends is given to the real
StepEnded handler. What this shows: the loop's states (Choice, ``.waitForTaskToken`` with
``TimeoutSecondsPath``, the catch of ``States.Timeout``) carry a pipeline to its end.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fanout.records.pipelines import PipelineRecords
from tests.integration.conftest import BUCKET, JOBS, REGION, TABLE, create_table
from tests.integration.helpers import Context

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/states"
HANDLERS = {"decide": "lambdas.decide", "await_step": "lambdas.await_step"}


def invoke(function_name: str, qualifier: Any, body: Any, headers: Any,
           response_headers: dict[str, str]) -> bytes:
    """moto's Lambda backend's ``invoke``: the real handler, in process."""
    import importlib

    name = function_name.rsplit(":", 1)[-1]
    module = importlib.import_module(HANDLERS[name])
    payload = json.loads(body) if body else {}
    return json.dumps(module.handler(payload, Context())).encode()


class ExecutionEvents(threading.Thread):
    """EventBridge's rule, played: each ended execution of the run machine, to StepEnded."""

    def __init__(self, sfn: Any, machine: str) -> None:
        super().__init__(daemon=True)
        self.sfn, self.machine = sfn, machine
        self.delivered: set[str] = set()
        self.errors: list[BaseException] = []
        self.done = threading.Event()

    def run(self) -> None:
        from lambdas import step_ended

        while not self.done.wait(0.05):
            try:
                for execution in self.sfn.list_executions(
                        stateMachineArn=self.machine)["executions"]:
                    if execution["status"] == "RUNNING" or execution["name"] in self.delivered:
                        continue
                    self.delivered.add(execution["name"])
                    step_ended.handler({"detail": {
                        "name": execution["name"], "status": execution["status"],
                        "stateMachineArn": self.machine,
                        "executionArn": execution["executionArn"]}}, Context())
            except BaseException as exc:  # the test says what went wrong
                self.errors.append(exc)


@pytest.fixture
def machines(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    from fanout.local.moto.correctness import route_lambda, serialized_dynamodb
    from fanout.runtime.context import reset
    from infra.pipelines import definition

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "1",
                        "FANOUT_TABLE": TABLE, "FANOUT_BUCKET": BUCKET,
                        "FANOUT_JOBS": json.dumps(JOBS), "FANOUT_LIMITS": "{}",
                        "FANOUT_PIPELINE_MACHINE": "fanout-pipeline"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    config = {"stepfunctions": {"execute_state_machine": True},
              "lambda": {"use_docker": False}}
    with mock_aws(config=config):  # type: ignore[call-overload]
        reset()
        sfn = boto3.client("stepfunctions", region_name=REGION)
        create_table(boto3.client("dynamodb", region_name=REGION))
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        run_machine = sfn.create_state_machine(name="fanout-run", roleArn=ROLE, definition=(
            json.dumps({"StartAt": "Step", "States": {
                "Step": {"Type": "Choice", "Choices": [
                    {"Variable": "$.pipeline_run.step", "StringEquals": "years",
                     "Next": "RunFailed"}], "Default": "Done"},
                "Done": {"Type": "Succeed"},
                "RunFailed": {"Type": "Fail", "Error": "Fanout.RunFailed"}}})))["stateMachineArn"]
        monkeypatch.setenv("FANOUT_RUN_MACHINE", run_machine)
        lam = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
        pipeline_machine = sfn.create_state_machine(
            name="fanout-pipeline", roleArn=ROLE,
            definition=json.dumps(definition(decide_arn=lam + "decide",
                                             await_arn=lam + "await_step")))["stateMachineArn"]
        # moto's DynamoDB is not safe for concurrent calls (the loop and the events thread
        # write one pipeline record at once): one request at a time, as DynamoDB applies
        # each write to an item atomically, and as the local mode serializes it.
        restores = [route_lambda(invoke, ACCOUNT, REGION), serialized_dynamodb()]
        events = ExecutionEvents(sfn, run_machine)
        events.start()
        try:
            yield {"sfn": sfn, "pipeline": pipeline_machine, "run": run_machine,
                   "events": events}
        finally:
            events.done.set()
            events.join(5)
            for restore in reversed(restores):
                restore()
            reset()


def finished(sfn: Any, arn: str, events: ExecutionEvents, seconds: float = 30
             ) -> dict[str, Any]:
    """The execution once it has ended (awaited: moto runs it on its own thread)."""
    done = threading.Event()
    found: dict[str, Any] = {}
    for _ in range(int(seconds / 0.05)):
        found = sfn.describe_execution(executionArn=arn)
        if found["status"] != "RUNNING":
            return found
        done.wait(0.05)
    history = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
    raise AssertionError(f"{arn} still {found.get('status')} after {seconds} s: {history}; "
                         f"events delivered {sorted(events.delivered)}, errors {events.errors}")


def test_the_pipeline_machine_runs_the_seed_pipeline_to_succeeded(
        machines: dict[str, Any]) -> None:
    # Given the seed's pipeline: prepare -> years (a fan-out) -> report (a fan-in)
    document = {"pipeline": "portfolio", "steps": {
        "prepare": {"job": "analyzer", "items": [{"year": 0}]},
        "yearly": {"job": "analyzer", "needs": ["prepare"],
                   "params": {"year": {"range": {"start": 1999, "stop": 2002}}}},
        "report": {"job": "analyzer", "items": [{"year": 0}], "needs": ["yearly"]}}}
    sfn = machines["sfn"]
    # When it is started as the console or the CLI starts it
    arn = sfn.start_execution(stateMachineArn=machines["pipeline"], name="portfolio-e2e",
                              input=json.dumps(document))["executionArn"]
    execution = finished(sfn, arn, machines["events"])
    # Then the pipeline's execution SUCCEEDED, each step's run ran once, in order
    assert not machines["events"].errors
    assert execution["status"] == "SUCCEEDED", execution
    record = PipelineRecords(TABLE).get_pipeline_run("portfolio-e2e")
    assert record is not None and record["status"] == "SUCCEEDED"
    steps = record["steps"]
    assert {n: s["status"] for n, s in steps.items()} == dict.fromkeys(
        ["prepare", "yearly", "report"], "SUCCEEDED")
    assert steps["prepare"]["finished_at"] <= steps["yearly"]["started_at"]
    assert steps["yearly"]["finished_at"] <= steps["report"]["started_at"]
    runs = sfn.list_executions(stateMachineArn=machines["run"])["executions"]
    assert sorted(r["name"] for r in runs) == [
        "portfolio-e2e.prepare", "portfolio-e2e.report", "portfolio-e2e.yearly"]
    # And the pipeline's own execution cost what ADR 0018 says (at most 3S + 4 billed
    # transitions, states entered, for S steps): Decide, the Choice and AwaitStep once per
    # step ending, then Decide, the Choice and Succeeded: 3 * 3 + 3
    history = sfn.get_execution_history(executionArn=arn)["events"]
    transitions = [e["type"] for e in history if e["type"].endswith("StateEntered")]
    assert len(transitions) == 12, transitions


def test_the_pipeline_machine_fails_a_pipeline_whose_step_failed(
        machines: dict[str, Any]) -> None:
    # Given a pipeline whose years step fails, report needing it, notify running always
    document = {"pipeline": "portfolio", "steps": {
        "years": {"job": "analyzer", "items": [{"year": 1999}]},
        "report": {"job": "analyzer", "items": [{"year": 0}], "needs": ["years"]},
        "notify": {"job": "analyzer", "items": [{"year": 0}], "needs": ["years"],
                   "when": "always"}}}
    sfn = machines["sfn"]
    # When it runs
    arn = sfn.start_execution(stateMachineArn=machines["pipeline"], name="portfolio-fail",
                              input=json.dumps(document))["executionArn"]
    execution = finished(sfn, arn, machines["events"])
    # Then its execution FAILED with Fanout.PipelineFailed and the summary as its cause
    assert not machines["events"].errors
    assert execution["status"] == "FAILED"
    history = sfn.get_execution_history(executionArn=arn)["events"]
    failed = [e["executionFailedEventDetails"] for e in history
              if e["type"] == "ExecutionFailed"]
    assert failed and failed[0]["error"] == "Fanout.PipelineFailed"
    assert "report SKIPPED" in failed[0]["cause"] and "notify SUCCEEDED" in failed[0]["cause"]
    # And report was SKIPPED with the reason, never started
    record = PipelineRecords(TABLE).get_pipeline_run("portfolio-fail")
    assert record is not None
    assert record["steps"]["report"]["reason"] == \
        "needs years (FAILED), which did not succeed"
    runs = sfn.list_executions(stateMachineArn=machines["run"])["executions"]
    assert sorted(r["name"] for r in runs) == ["portfolio-fail.notify", "portfolio-fail.years"]
