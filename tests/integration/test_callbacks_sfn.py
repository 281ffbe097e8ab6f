"""StepFunctionsCallbacks answers a real waiting execution (moto's ASL interpreter)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fanout.aws.stepfunctions import StepFunctionsCallbacks

REGION = "us-east-1"


@pytest.fixture
def waiting(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    import boto3
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
        definition = {"StartAt": "Wait", "States": {"Wait": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": 30, "End": True}}}
        sfn.create_state_machine(name="waits", definition=json.dumps(definition),
                                 roleArn="arn:aws:iam::123456789012:role/sfn")
        yield sfn, sqs, queue


def poll(fn: Any, deadline_seconds: float = 10.0) -> Any:
    """Call ``fn`` until it returns something truthy, or fail at the deadline."""
    end = time.monotonic() + deadline_seconds
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def start_and_get_token(sfn: Any, sqs: Any, queue: str) -> tuple[str, str]:
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]

    def token() -> str | None:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)
        messages = got.get("Messages", [])
        return json.loads(messages[0]["Body"])["token"] if messages else None

    return execution, poll(token)


def status_of(sfn: Any, execution: str) -> str | None:
    status = sfn.describe_execution(executionArn=execution)["status"]
    return None if status == "RUNNING" else str(status)


def test_succeed_answers_the_waiting_execution(waiting: tuple[Any, Any, str]) -> None:
    # Given an execution waiting on a task token
    sfn, sqs, queue = waiting
    execution, token = start_and_get_token(sfn, sqs, queue)
    # When the callbacks succeed it
    answered = StepFunctionsCallbacks(sfn).succeed(token, {"index": 0, "status": "SUCCEEDED"})
    # Then the execution succeeds with that output
    assert answered is True
    assert poll(lambda: status_of(sfn, execution)) == "SUCCEEDED"
    output = json.loads(sfn.describe_execution(executionArn=execution)["output"])
    assert output == {"index": 0, "status": "SUCCEEDED"}


def test_fail_names_the_error(waiting: tuple[Any, Any, str]) -> None:
    # Given an execution waiting on a task token
    sfn, sqs, queue = waiting
    execution, token = start_and_get_token(sfn, sqs, queue)
    # When the callbacks fail it with a named error
    StepFunctionsCallbacks(sfn).fail(token, "Fanout.ItemFailed", "attempt 3: exit code 1")
    # Then the execution fails with that name and cause
    assert poll(lambda: status_of(sfn, execution)) == "FAILED"
    described = sfn.describe_execution(executionArn=execution)
    assert described.get("error") == "Fanout.ItemFailed"
