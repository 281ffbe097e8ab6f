"""The pipeline state machine in the template, the rule that wakes StepEnded, and a
pipeline named in the config and scheduled (docs/decisions/0018-pipelines-on-aws.md)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fanout.local.template import logical_id, resources, state_machine_definition
from tests.infra.conftest import repo_context, synthesize

PIPELINE = {"timeout_seconds": 7200, "steps": {
    "A": {"job": "analyzer", "items": [{"year": 1999}]},
    "B": {"job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 2020}}},
          "needs": ["A"]}}}


def pipeline_machine(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [(lid, m) for lid, m in resources(template, "AWS::StepFunctions::StateMachine")
                .items() if lid.startswith("Pipelines")]
    return found


def test_the_pipeline_state_machine_loops_decide_and_awaitstep(template: dict[str, Any]) -> None:
    # Given the synthesized pipeline state machine
    lid, machine = pipeline_machine(template)
    definition = state_machine_definition(template, None, lid)
    # Then it is a Standard machine named after the stack, logged and traced
    assert machine["Properties"]["StateMachineName"] == "Fanout-pipeline"
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    # And it loops Decide -> Ended? -> AwaitStep -> Decide, ending as the pipeline did
    states = definition["States"]
    assert definition["StartAt"] == "Decide"
    assert states["Decide"]["Next"] == "Ended?"
    assert {c["Next"] for c in states["Ended?"]["Choices"]} == {
        "Decide", "AwaitStep", "Succeeded", "PipelineTimedOut"}
    assert states["Ended?"]["Default"] == "PipelineFailed"
    await_step = states["AwaitStep"]
    assert await_step["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert await_step["TimeoutSecondsPath"] == "$.wait_seconds"
    assert await_step["Catch"] == [{"ErrorEquals": ["States.Timeout"],
                                    "ResultPath": "$.timed_out", "Next": "Decide"}]
    assert await_step["ResultPath"] is None and await_step["Next"] == "Decide"
    # And nothing but the run id, a counter and a summary crosses its state
    assert set(await_step["Parameters"]["Payload"]) == {
        "token.$", "pipeline_run_id.$", "changes.$"}


def test_step_ended_is_woken_by_every_ending_of_either_machine(
        template: dict[str, Any]) -> None:
    # Given the rule that wakes StepEnded
    rule = template["Resources"][logical_id(template, "Events/ExecutionEnded/Resource")]
    pattern = rule["Properties"]["EventPattern"]
    # Then it takes the ends of the run and the pipeline state machines, SUCCEEDED too
    assert pattern["source"] == ["aws.states"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "SUCCEEDED",
                                                   "TIMED_OUT"]
    run = logical_id(template, "Workflow/StateMachine/Resource")
    pipelines = logical_id(template, "Pipelines/StateMachine/Resource")
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": run}, {"Ref": pipelines}]
    # And its one target is StepEnded, with the dead-letter queue of the other events
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [logical_id(template,
                                                       "Functions/StepEnded/Resource"), "Arn"]}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    # And the stack says where to start pipelines
    assert "PipelineStateMachineArn" in template["Outputs"]


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    context = copy.deepcopy(repo_context())
    context["pipelines"] = {"portfolio": PIPELINE}
    context["schedules"] = [{"name": "mornings", "expression": "cron(0 9 * * ? *)",
                             "timezone": "Europe/Paris", "start_date": "2027-01-04",
                             "pipeline": "portfolio"}]
    return synthesize(context, tmp_path_factory.mktemp("cdk-out-pipelines"))[1]


def test_a_scheduled_pipeline_starts_the_pipeline_machine_from_its_start_date(
        scheduled: dict[str, Any]) -> None:
    # Given the config's pipeline scheduled every morning at 9:00, not before 2027-01-04
    (schedule,) = resources(scheduled, "AWS::Scheduler::Schedule").values()
    properties = schedule["Properties"]
    # Then the schedule's window opens on that day in Paris (in UTC)
    assert properties["StartDate"] == "2027-01-03T23:00:00Z"
    assert properties["ScheduleExpressionTimezone"] == "Europe/Paris"
    # And it starts the pipeline state machine with the pipeline's document
    lid, _ = pipeline_machine(scheduled)
    assert properties["Target"]["Arn"] == {"Ref": lid}
    started = json.loads(properties["Target"]["Input"])
    assert started["pipeline"] == "portfolio" and started["steps"] == PIPELINE["steps"]
    assert (started["trigger"], started["schedule"]) == ("schedule", "mornings")
    assert started["logical_time"] == "<aws.scheduler.scheduled-time>"
    # And the schedules' role may start the pipeline state machine only
    policies = [p for p in resources(scheduled, "AWS::IAM::Policy").values()
                if "Schedules" in p["Metadata"]["aws:cdk:path"]]
    (statement,) = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "states:StartExecution"
    assert statement["Resource"] == {"Ref": lid}
    # And Decide is told the named pipelines (started by name from the console)
    decide = scheduled["Resources"][logical_id(scheduled, "Functions/Decide/Resource")]
    named = json.loads(decide["Properties"]["Environment"]["Variables"]["FANOUT_PIPELINES"])
    assert named == {"portfolio": PIPELINE}
