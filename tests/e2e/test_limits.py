"""AWS's limits in the local mode: each one crossed by one byte, one character or one event.

The state machines here are small definitions run by moto's interpreter with the local
mode's limits on (:func:`fanout.local.moto.sfn_limits.enforce_limits`); the whole control plane
against them is in tests/e2e/test_results.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fanout.local.moto import limits, sfn_limits
from fanout.local.moto.limits import (
    DYNAMODB_ITEM_BYTES,
    HISTORY_EVENTS,
    LAMBDA_ENVIRONMENT_BYTES,
    OVERRIDES_CHARS,
    PAYLOAD_BYTES,
    LimitExceeded,
)

ROLE = "arn:aws:iam::123456789012:role/sfn"
BUCKET = "results"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """Step Functions, S3 and DynamoDB clients on emulated AWS with the limits on."""
    import boto3
    from botocore.config import Config

    from fanout.local.aws import MOTO_CONFIG, REGION, emulated_aws

    with emulated_aws():
        undo = sfn_limits.enforce_limits()
        limits.MAXIMA.reset()
        try:
            # Large payloads: no retry, so a refusal is seen once.
            config = Config(retries={"max_attempts": 1})
            made = {s: boto3.client(s, region_name=REGION, config=config)  # type: ignore[call-overload]
                    for s in ("stepfunctions", "s3", "dynamodb")}
            made["s3"].create_bucket(Bucket=BUCKET)
            assert MOTO_CONFIG["stepfunctions"]["execute_state_machine"]
            yield made
        finally:
            undo()


def run(sfn: Any, definition: dict[str, Any], execution_input: str = "{}",
        name: str = "run") -> dict[str, Any]:
    """Create the machine, run it to its end; the execution as DescribeExecution gives it."""
    arn = sfn.create_state_machine(name=f"m{time.monotonic_ns()}", roleArn=ROLE,
                                   definition=json.dumps(definition))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name,
                                    input=execution_input)["executionArn"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] in TERMINAL:
            return described
        time.sleep(0.05)
    raise AssertionError("the execution did not end in 120 s")


def pass_result(padding: int) -> dict[str, Any]:
    """One Pass state whose output is ``{"p":"xxx..."}``: ``padding + 8`` bytes."""
    return {"StartAt": "Big", "States": {
        "Big": {"Type": "Pass", "Result": {"p": "x" * padding}, "End": True}}}


# --- state and execution payloads ---------------------------------------------------------


def test_a_state_output_of_256_kib_passes_and_one_byte_more_fails(aws):
    sfn = aws["stepfunctions"]
    # Given a state whose output is exactly 262,144 bytes, Then the execution succeeds
    exact = run(sfn, pass_result(PAYLOAD_BYTES - 8))
    assert exact["status"] == "SUCCEEDED", exact
    compact = json.dumps(json.loads(exact["output"]), separators=(",", ":"))
    assert len(compact) == PAYLOAD_BYTES
    assert limits.MAXIMA.snapshot()["payload_bytes"] == PAYLOAD_BYTES
    # When it is one byte more, Then the execution fails naming the limit, state and size
    over = run(sfn, pass_result(PAYLOAD_BYTES - 7))
    assert over["status"] == "FAILED"
    assert over["error"] == "States.DataLimitExceeded"
    assert "state 'Big'" in over["cause"] and "262,145 bytes" in over["cause"]


def test_an_execution_input_of_256_kib_starts_and_one_byte_more_is_refused(aws):
    sfn = aws["stepfunctions"]
    machine = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": True}}}
    document = '{"p":"' + "x" * (PAYLOAD_BYTES - 8) + '"}'
    assert len(document) == PAYLOAD_BYTES
    assert run(sfn, machine, document)["status"] == "SUCCEEDED"
    with pytest.raises(sfn.exceptions.InvalidExecutionInput, match="262,145 bytes"):
        run(sfn, machine, document[:-2] + 'x"}', name="run2")


def test_a_distributed_map_without_result_writer_fails_past_256_kib_of_results(aws):
    """The children's outputs gathered by the map count, ResultPath null or not, and no
    Catch takes the failure: the execution fails (aws/aws-cdk#24799)."""
    sfn, s3 = aws["stepfunctions"], aws["s3"]

    def machine(writer: bool) -> dict[str, Any]:
        fanout: dict[str, Any] = {
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                           "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": BUCKET, "Key": "items.json"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED",
                                                  "ExecutionType": "STANDARD"},
                              "StartAt": "Echo",
                              "States": {"Echo": {"Type": "Pass", "Parameters": {"p.$": "$.p"},
                                                  "End": True}}},
            "ResultPath": None,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "Next": "Done",
        }
        if writer:
            fanout["ResultWriter"] = {"Resource": "arn:aws:states:::s3:putObject",
                                      "Parameters": {"Bucket": BUCKET, "Prefix": "out"}}
        return {"StartAt": "FanOut", "States": {
            "FanOut": fanout, "Done": {"Type": "Succeed"},
            "Caught": {"Type": "Pass", "Result": "caught", "End": True}}}

    def items_totalling(total: int, count: int = 4) -> list[dict[str, str]]:
        # Each child's output is {"p":"x..."}: padding + 8 bytes; the array adds "[", "]"
        # and a comma between outputs.
        paddings = [(total - 2 - (count - 1)) // count - 8] * count
        paddings[-1] += total - (2 + (count - 1) + sum(p + 8 for p in paddings))
        return [{"p": "x" * p} for p in paddings]

    # Given children whose outputs gather to exactly 256 KiB: the execution succeeds
    s3.put_object(Bucket=BUCKET, Key="items.json",
                  Body=json.dumps(items_totalling(PAYLOAD_BYTES)).encode())
    exact = run(sfn, machine(writer=False))
    assert exact["status"] == "SUCCEEDED", exact
    assert limits.MAXIMA.snapshot()["payload_bytes"] == PAYLOAD_BYTES
    # When they gather to one byte more, Then the execution fails, not caught by States.ALL
    s3.put_object(Bucket=BUCKET, Key="items.json",
                  Body=json.dumps(items_totalling(PAYLOAD_BYTES + 1)).encode())
    over = run(sfn, machine(writer=False), name="over")
    assert over["status"] == "FAILED", over
    assert over["error"] == "States.DataLimitExceeded"
    assert "FanOut" in over["cause"] and "262,145 bytes" in over["cause"]
    # And with a ResultWriter the same children pass: their results are in S3
    written = run(sfn, machine(writer=True), name="written")
    assert written["status"] == "SUCCEEDED", written


def test_result_writer_writes_the_childrens_results_as_aws_lays_them_out(aws):
    sfn, s3 = aws["stepfunctions"], aws["s3"]
    # Given a Distributed Map with a ResultWriter over three items, one of which fails
    s3.put_object(Bucket=BUCKET, Key="items.json", Body=json.dumps(
        [{"n": 1}, {"n": 2, "fail": True}, {"n": 3}]).encode())
    machine = {"StartAt": "FanOut", "States": {"FanOut": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket.$": "$.bucket", "Key": "items.json"}},
        "ItemSelector": {"item.$": "$$.Map.Item.Value"},
        "ToleratedFailureCount": 1,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Fails?",
            "States": {
                "Fails?": {"Type": "Choice", "Choices": [
                    {"Variable": "$.item.fail", "IsPresent": True, "Next": "Boom"}],
                    "Default": "Echo"},
                "Boom": {"Type": "Fail", "Error": "Item.Failed", "Cause": "asked to"},
                "Echo": {"Type": "Pass", "Parameters": {"n.$": "$.item.n"}, "End": True}}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                         "Parameters": {"Bucket.$": "$.bucket", "Prefix.$": "$.prefix"}},
        "End": True}}}
    # When it runs (the writer's paths read the map's input)
    done = run(sfn, machine, json.dumps({"bucket": BUCKET, "prefix": "runs/r1/results"}))
    # Then the map's output is where its manifest is, not the children's outputs
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    key = output["ResultWriterDetails"]["Key"]
    map_run_id = output["MapRunArn"].rsplit(":", 1)[1]
    assert output["ResultWriterDetails"]["Bucket"] == BUCKET
    assert key == f"runs/r1/results/{map_run_id}/manifest.json"
    # And the manifest names one file per status that has children, with its size
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert manifest["DestinationBucket"] == BUCKET
    assert manifest["MapRunArn"] == output["MapRunArn"]
    files = manifest["ResultFiles"]
    assert set(files) == {"FAILED", "PENDING", "SUCCEEDED"} and files["PENDING"] == []
    (succeeded,) = files["SUCCEEDED"]
    (failed,) = files["FAILED"]
    assert succeeded["Key"] == f"runs/r1/results/{map_run_id}/SUCCEEDED_0.json"
    body = s3.get_object(Bucket=BUCKET, Key=succeeded["Key"])["Body"].read()
    assert succeeded["Size"] == len(body)
    # And each entry is a child execution: input and output as JSON strings, status, dates
    entries = json.loads(body)
    assert sorted(json.loads(e["Output"])["n"] for e in entries) == [1, 3]
    entry = entries[0]
    assert {"ExecutionArn", "Input", "InputDetails", "Name", "Output", "OutputDetails",
            "StartDate", "StopDate", "StateMachineArn", "Status"} <= set(entry)
    assert entry["Status"] == "SUCCEEDED" and entry["InputDetails"] == {"Included": True}
    assert ":execution:" in entry["ExecutionArn"] and entry["ExecutionArn"].endswith(entry["Name"])
    assert json.loads(entry["Input"])["item"]["n"] in (1, 3)
    (failure,) = json.loads(s3.get_object(Bucket=BUCKET, Key=failed["Key"])["Body"].read())
    assert failure["Status"] == "FAILED" and failure["Error"] == "Item.Failed"
    assert failure["Cause"] == "asked to" and "Output" not in failure


# --- history length -----------------------------------------------------------------------


def counting_loop(iterations: int, tail: list[dict[str, Any]]) -> dict[str, Any]:
    """A loop of ``iterations`` x (Pass, Choice) (4 events each), then the ``tail`` states.

    Events: ExecutionStarted, 4 per iteration, 2 per Pass of the tail and 5 per SDK task
    (entered, scheduled, started, succeeded, exited), 2 for the Succeed state, and
    ExecutionSucceeded.
    """
    names = [f"Tail{i}" for i in range(len(tail))] + ["Done"]
    states: dict[str, Any] = {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                  "Next": "More?"},
        "More?": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericLessThan": iterations, "Next": "Count"}],
            "Default": names[0]},
        "Done": {"Type": "Succeed"},
    }
    for i, state in enumerate(tail):
        states[names[i]] = {**state, "ResultPath": None, "Next": names[i + 1]}
    return {"StartAt": "Count", "States": states}


def test_an_execution_of_25000_events_ends_and_one_event_more_fails_it(aws, monkeypatch):
    """At AWS's 25,000 each run takes half a minute of moto here; the count is the same
    at any limit, so the limit is lowered to 200 events (and checked to be AWS's)."""
    sfn = aws["stepfunctions"]
    assert HISTORY_EVENTS == 25_000
    limit = 200
    monkeypatch.setattr(limits, "HISTORY_EVENTS", limit)
    passes = [{"Type": "Pass"}] * 2  # 4 events
    sdk_task = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets"}  # 5
    iterations = (limit - 8) // 4
    # Given a loop whose history is exactly the limit, the last event the execution's end
    assert 1 + 4 * iterations + 4 + 2 + 1 == limit
    exact = run(sfn, counting_loop(iterations, passes), '{"n": 0}')
    # Then the execution succeeds
    assert exact["status"] == "SUCCEEDED", exact
    assert limits.MAXIMA.snapshot()["history_events"] == limit
    # When the same run takes one event more (a 5-event task for two 2-event Pass states)
    over = run(sfn, counting_loop(iterations, [sdk_task]), '{"n": 0}', name="over")
    # Then the execution fails as AWS fails it: States.Runtime, the last event its failure
    assert over["status"] == "FAILED", over
    assert over["error"] == "States.Runtime"
    assert f"maximum number of history events ({limit})" in over["cause"]
    events = sfn.get_execution_history(executionArn=over["executionArn"],
                                       maxResults=1000)["events"]
    assert len(events) == limit
    assert events[-1]["type"] == "ExecutionFailed" and events[-1]["id"] == limit


# --- execution names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a" * 81, "has space", "a/b", "a:b", "tab\there",
                                  "a\u0085b", "br[ack]et", "star*"])
def test_execution_names_step_functions_refuses_are_refused(aws, name):
    sfn = aws["stepfunctions"]
    arn = sfn.create_state_machine(
        name="names", roleArn=ROLE,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    with pytest.raises(sfn.exceptions.InvalidName):
        sfn.start_execution(stateMachineArn=arn, name=name)


def test_an_execution_name_of_80_allowed_characters_is_taken(aws):
    sfn = aws["stepfunctions"]
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    assert run(sfn, definition, name="a-b_c.9" + "x" * 73)["status"] == "SUCCEEDED"


# --- task tokens --------------------------------------------------------------------------


def test_send_task_success_output_over_256_kib_is_refused(aws):
    sfn = aws["stepfunctions"]
    exact = '"' + "x" * (PAYLOAD_BYTES - 2) + '"'
    # Given an output of exactly 256 KiB: the token is looked up (and is unknown here)
    with pytest.raises(sfn.exceptions.ClientError) as known:
        sfn.send_task_success(taskToken="unknown", output=exact)
    assert "length less than or equal" not in str(known.value)
    # When it is one byte more, Then the call is refused for its size
    with pytest.raises(sfn.exceptions.ClientError, match="less than or equal to 262144"):
        sfn.send_task_success(taskToken="unknown", output=exact[:-1] + 'x"')


def test_send_task_failure_error_and_cause_are_limited(aws):
    sfn = aws["stepfunctions"]
    with pytest.raises(sfn.exceptions.ClientError, match="'error'"):
        sfn.send_task_failure(taskToken="unknown", error="e" * 257, cause="c")
    with pytest.raises(sfn.exceptions.ClientError, match="'cause'"):
        sfn.send_task_failure(taskToken="unknown", error="e", cause="c" * 32_769)
    with pytest.raises(sfn.exceptions.ClientError) as within:
        sfn.send_task_failure(taskToken="unknown", error="e" * 256, cause="c" * 32_768)
    assert "length less than or equal" not in str(within.value)


# --- DynamoDB -----------------------------------------------------------------------------


def test_a_dynamodb_item_of_400_kb_is_stored_and_one_byte_more_refused(aws):
    ddb = aws["dynamodb"]
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    # Sizes: "pk" + "a" = 3 bytes, "d" + the string; 409,600 in all
    padding = DYNAMODB_ITEM_BYTES - 3 - 1
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "d": {"S": "x" * padding}})
    with pytest.raises(ddb.exceptions.ClientError, match="Item size has exceeded"):
        ddb.put_item(TableName="t", Item={"pk": {"S": "b"}, "d": {"S": "x" * (padding + 1)}})
    # And an update that grows an item past it is refused too
    with pytest.raises(ddb.exceptions.ClientError, match="exceeded the maximum allowed size"):
        ddb.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression="SET e = :e",
                        ExpressionAttributeValues={":e": {"S": "y"}})


def test_an_item_is_weighed_whole_at_every_write_whatever_changed_in_it(aws):
    ddb = aws["dynamodb"]
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    key = {"pk": {"S": "a"}}
    ddb.put_item(TableName="t", Item={**key, "s": {"S": "x"}, "m": {"M": {"k": {"S": "x"}}}})
    # Given a scalar replaced by a larger one (its size measured anew)...
    half = DYNAMODB_ITEM_BYTES // 2
    ddb.update_item(TableName="t", Key=key, UpdateExpression="SET s = :s",
                    ExpressionAttributeValues={":s": {"S": "x" * half}})
    # ...and a map grown in place to past the limit with it (a nested SET)
    ddb.update_item(TableName="t", Key=key, UpdateExpression="SET m.k = :k",
                    ExpressionAttributeValues={":k": {"S": "y" * half}})
    # When any attribute is written next, Then the item is refused: both counted as they are
    with pytest.raises(ddb.exceptions.ClientError, match="exceeded the maximum allowed size"):
        ddb.update_item(TableName="t", Key=key, UpdateExpression="SET e = :e",
                        ExpressionAttributeValues={":e": {"S": "z"}})
    # And once the scalar shrinks again, the same write goes through
    ddb.update_item(TableName="t", Key=key, UpdateExpression="SET s = :s",
                    ExpressionAttributeValues={":s": {"S": "x"}})
    ddb.update_item(TableName="t", Key=key, UpdateExpression="SET e = :e",
                    ExpressionAttributeValues={":e": {"S": "z"}})


def test_dynamodb_sizes_are_counted_as_dynamodb_counts_them():
    from moto.dynamodb.models.dynamo_type import DynamoType

    def size(value: dict[str, Any]) -> int:
        return limits.attribute_size(DynamoType(value))

    assert size({"S": "héllo"}) == 6  # UTF-8 bytes
    assert size({"N": "12345"}) == 4 and size({"N": "-0.0012"}) == 2
    assert size({"BOOL": True}) == 1 and size({"NULL": True}) == 1
    assert size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
    assert size({"M": {"k": {"S": "v"}}}) == 3 + 1 + 1 + 1


# --- ECS overrides, Lambda environment and error names ------------------------------------


def test_run_task_overrides_are_limited_to_8192_characters():
    def overrides(chars: int) -> dict[str, Any]:
        base = {"containerOverrides": [{"name": "c", "command": [""]}]}
        pad = chars - len(json.dumps(base, separators=(",", ":")))
        return {"containerOverrides": [{"name": "c", "command": ["x" * pad]}]}

    limits.check_overrides(overrides(OVERRIDES_CHARS))
    with pytest.raises(LimitExceeded, match="at most 8192") as over:
        limits.check_overrides(overrides(OVERRIDES_CHARS + 1))
    assert over.value.code == "InvalidParameterException"


def test_emulated_run_task_refuses_overrides_over_the_limit():
    from fanout.local.fargate import EcsError, EmulatedFargate
    from fanout.local.faults import Dice, Faults

    fargate = EmulatedFargate(region="us-east-1", account="123456789012", cluster_arn="c",
                              task_definitions={}, publish=lambda e: None,
                              write_logs=lambda *a: None, dice=Dice(Faults()))
    with pytest.raises(EcsError) as refused:
        fargate.run_task({"cluster": "c", "taskDefinition": "td", "overrides": {
            "containerOverrides": [{"name": "c", "command": ["x" * OVERRIDES_CHARS]}]}})
    assert refused.value.code == "InvalidParameterException"


def test_a_lambda_environment_over_4_kb_is_refused():
    def variables(size: int) -> dict[str, str]:
        return {"V": "x" * (size - len('{"V":""}'))}

    limits.check_lambda_environment("fn", variables(LAMBDA_ENVIRONMENT_BYTES))
    with pytest.raises(LimitExceeded, match="4097 bytes exceed the 4 KB limit"):
        limits.check_lambda_environment("fn", variables(LAMBDA_ENVIRONMENT_BYTES + 1))


def test_handler_failures_surface_with_the_python_312_runtime_names(monkeypatch):
    import types

    from fanout.local.faults import Dice, Faults
    from fanout.local.functions import Function, FunctionError, Functions

    module = types.ModuleType("limits_handlers")
    module.oom = lambda event, context: (_ for _ in ()).throw(MemoryError())  # type: ignore[attr-defined]
    module.slow = lambda event, context: time.sleep(event["seconds"]) or {}  # type: ignore[attr-defined]
    module.odd = lambda event, context: {"when": object()}  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "limits_handlers", module)
    functions = Functions([
        Function("Oom", "oom", "arn:oom", "limits_handlers.oom"),
        Function("Slow", "slow", "arn:slow", "limits_handlers.slow", timeout_seconds=1),
        Function("Odd", "odd", "arn:odd", "limits_handlers.odd"),
    ], Dice(Faults()))
    # A handler that runs out of memory: Runtime.OutOfMemory
    with pytest.raises(FunctionError) as oom:
        functions.invoke("oom", {})
    assert oom.value.error_type == "Runtime.OutOfMemory"
    # A handler that runs past its timeout: Sandbox.Timedout; within it: its answer
    assert functions.invoke("slow", {"seconds": 0.0}) == {}
    with pytest.raises(FunctionError) as slow:
        functions.invoke("slow", {"seconds": 1.05})
    assert slow.value.error_type == "Sandbox.Timedout"
    assert "timed out after 1.00 seconds" in slow.value.message
    # An answer the runtime cannot serialize: Runtime.MarshalError, flagged as an error
    headers: dict[str, str] = {}
    answer = json.loads(functions.moto_invoke("odd", None, b"{}", {}, headers))
    assert headers["x-amz-function-error"] == "Unhandled"
    assert answer["errorType"] == "Runtime.MarshalError"
