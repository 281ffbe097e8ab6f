"""The state machine definition, read back from the template as the local mode reads it."""

from __future__ import annotations

from typing import Any

import pytest

from fanout.local.template import logical_id, state_machine_definition


@pytest.fixture(scope="module")
def asl(template: dict[str, Any]) -> dict[str, Any]:
    return state_machine_definition(template)


def arn_of(template: dict[str, Any], function: str) -> str:
    return f"<{logical_id(template, f'Functions/{function}/Resource')}>"


def test_shape_is_expand_fanout_finalize_choice(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert asl["StartAt"] == "Expand"
    assert states["Expand"]["Next"] == "FanOut"
    assert states["FanOut"]["Next"] == "Finalize"
    assert states["Finalize"]["Next"] == "Closed?"
    # Finalize is called again (its output the next outcome) until it says done; then the
    # same Choice settles the run (no second Choice: one transition less per run)
    closed = states["Closed?"]
    assert closed["Type"] == "Choice"
    assert closed["Choices"] == [
        {"Variable": "$.done", "BooleanEquals": False, "Next": "Finalize"},
        {"Variable": "$.status", "StringEquals": "SUCCEEDED", "Next": "Done"},
    ]
    assert closed["Default"] == "RunFailed"
    assert "Settled?" not in states
    assert states["Done"]["Type"] == "Succeed"
    assert states["RunFailed"] == {
        "Type": "Fail", "Error": "Fanout.RunFailed", "CausePath": "$.summary"
    }


def test_expand_invokes_its_function_with_the_execution_context(
    asl: dict[str, Any], template: dict[str, Any]
) -> None:
    expand = asl["States"]["Expand"]
    assert expand["Resource"] == "arn:aws:states:::lambda:invoke"
    assert expand["Parameters"]["FunctionName"] == arn_of(template, "Expand")
    assert expand["Parameters"]["Payload"] == {
        "spec.$": "$",
        "run_id.$": "$$.Execution.Name",
        "execution_arn.$": "$$.Execution.Id",
        "start_time.$": "$$.Execution.StartTime",
    }
    assert expand["OutputPath"] == "$.Payload"
    # A bad spec fails the execution: nothing catches Fanout.InvalidRunSpec
    assert "Catch" not in expand


def test_fanout_is_a_distributed_map_over_the_manifest(asl: dict[str, Any]) -> None:
    fanout = asl["States"]["FanOut"]
    assert fanout["Type"] == "Map"
    assert fanout["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"
    }
    reader = fanout["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["ReaderConfig"] == {"InputType": "JSON"}
    assert reader["Parameters"] == {"Bucket.$": "$.bucket", "Key.$": "$.manifest_key"}
    assert fanout["MaxConcurrencyPath"] == "$.max_concurrency"
    assert fanout["ToleratedFailurePercentagePath"] == "$.tolerated_failure_percent"
    assert fanout["ItemSelector"] == {
        "run_id.$": "$.run_id",
        "item.$": "$$.Map.Item.Value",
        "callback_timeout_seconds.$": "$.callback_timeout_seconds",
    }
    assert fanout["ResultPath"] is None


def test_a_failed_map_still_reaches_finalize(asl: dict[str, Any]) -> None:
    (catch,) = asl["States"]["FanOut"]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.map_error",
                     "Next": "Finalize"}
    finalize = asl["States"]["Finalize"]
    assert finalize["Parameters"]["Payload"] == {"run_id.$": "$.run_id", "outcome.$": "$"}
    assert finalize["OutputPath"] == "$.Payload"


def test_launch_waits_for_its_callback_with_a_timeout(
    asl: dict[str, Any], template: dict[str, Any]
) -> None:
    child = asl["States"]["FanOut"]["ItemProcessor"]
    assert child["StartAt"] == "Launch"
    launch = child["States"]["Launch"]
    assert launch["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert launch["Parameters"]["FunctionName"] == arn_of(template, "Launch")
    assert launch["Parameters"]["Payload"] == {
        "token.$": "$$.Task.Token", "run_id.$": "$.run_id", "item.$": "$.item"
    }
    assert launch["TimeoutSecondsPath"] == "$.callback_timeout_seconds"
    assert launch["End"] is True


def test_launch_throttles_retry_with_full_jitter(asl: dict[str, Any]) -> None:
    launch = asl["States"]["FanOut"]["ItemProcessor"]["States"]["Launch"]
    throttle = next(r for r in launch["Retry"]
                    if "Fanout.LaunchThrottled" in r["ErrorEquals"])
    assert "Fanout.CapacityUnavailable" in throttle["ErrorEquals"]
    assert throttle["JitterStrategy"] == "FULL"
    assert throttle["BackoffRate"] > 1 and throttle["MaxAttempts"] >= 10
    assert any("Lambda.TooManyRequestsException" in r["ErrorEquals"] for r in launch["Retry"])


def test_a_launch_that_died_is_tried_again_but_final_answers_are_not(
        asl: dict[str, Any]) -> None:
    # Given the Launch state's retriers
    launch = asl["States"]["FanOut"]["ItemProcessor"]["States"]["Launch"]
    retried = {name for r in launch["Retry"] for name in r["ErrorEquals"]}
    # Then a crashed Launch (idempotent per attempt) is retried under every name the
    # Python 3.12 runtime reports it: a timeout, out of memory, an exit, an unknown failure
    assert {"Sandbox.Timedout", "Runtime.OutOfMemory", "Runtime.ExitError", "Runtime.Unknown",
            "Lambda.Unknown"} <= retried
    # And an item's final answer or a refused launch never is, nor the per-attempt retry path
    assert not retried & {"Fanout.ItemFailed", "Fanout.ItemTimedOut", "Fanout.ItemAborted",
                          "Fanout.LaunchFailed", "Fanout.Retry", "States.ALL",
                          "States.TaskFailed"}


def test_every_lambda_task_retries_awss_transient_list(asl: dict[str, Any]) -> None:
    # Given the Lambda tasks of the definition, as synthesized
    states = asl["States"]
    child = states["FanOut"]["ItemProcessor"]["States"]
    tasks = {"Expand": states["Expand"], "Finalize": states["Finalize"],
             "Launch": child["Launch"]}
    # Then each retries every transient error AWS recommends retrying, spelled as written
    # here (not read from the module the definition is built from)
    recommended = {"Lambda.ServiceException", "Lambda.AWSLambdaException",
                   "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
                   "Lambda.ClientExecutionTimeoutException"}
    for name, task in tasks.items():
        retried = {error for r in task["Retry"] for error in r["ErrorEquals"]}
        assert recommended <= retried, (name, recommended - retried)


def test_the_error_names_the_local_mode_raises_are_the_ones_retried(
        asl: dict[str, Any]) -> None:
    # Given the shared list the local mode raises from, Then the template retries each name
    from fanout import lambda_errors

    launch = asl["States"]["FanOut"]["ItemProcessor"]["States"]["Launch"]
    retried = {name for r in launch["Retry"] for name in r["ErrorEquals"]}
    assert set(lambda_errors.CRASHES) | set(lambda_errors.TRANSIENT) <= retried


def test_a_retried_attempt_backs_off_then_launches_again(asl: dict[str, Any]) -> None:
    states = asl["States"]["FanOut"]["ItemProcessor"]["States"]
    (catch,) = states["Launch"]["Catch"]
    assert catch == {"ErrorEquals": ["Fanout.Retry"], "ResultPath": "$.retry", "Next": "Backoff"}
    backoff = states["Backoff"]
    assert backoff["Type"] == "Pass"
    assert backoff["Parameters"]["wait.$"] == "States.StringToJson($.retry.Cause)"
    assert backoff["Next"] == "Wait"
    assert states["Wait"] == {"Type": "Wait", "SecondsPath": "$.wait.delay_seconds",
                              "Next": "Launch"}


def test_happy_path_of_an_item_is_one_state(asl: dict[str, Any]) -> None:
    # A child execution that launches and is answered with success passes Launch only:
    # entering and leaving it are the item's 2 billed transitions at most.
    child = asl["States"]["FanOut"]["ItemProcessor"]
    launch = child["States"][child["StartAt"]]
    assert launch.get("End") is True and "Next" not in launch


def test_a_run_lives_at_most_the_configured_run_timeout(asl: dict[str, Any]) -> None:
    # Given the repository's config (limits.run_timeout_hours unset: 168 h), Then the
    # execution times out after it (Abort closes a TIMED_OUT run; records expire from it)
    from fanout.config import Limits

    assert asl["TimeoutSeconds"] == Limits().run_timeout_hours * 3600 == 168 * 3600


def test_the_map_writes_its_results_to_s3_under_the_runs_prefix(asl: dict[str, Any]) -> None:
    # Given the FanOut state of the synthesized definition
    fanout = asl["States"]["FanOut"]
    # Then its children's results go to the manifest bucket under the run's results prefix
    # (Expand's output names both), never into the execution's payload
    assert fanout["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket.$": "$.bucket", "Prefix.$": "$.results_prefix"},
    }
    # And what reaches Finalize is the map's input, not even the results' location
    assert fanout["ResultPath"] is None


def test_every_lambda_task_retries_a_records_write_refused_for_contention(
        asl: dict[str, Any]) -> None:
    # Given the records' error for contention that outlasted its own retries
    from fanout import lambda_errors
    from fanout.records.writes import ContentionError

    assert ContentionError.__name__ == lambda_errors.CONTENTION
    # Then every Lambda task of the state machine retries it (never fails the item on it)
    launch = asl["States"]["FanOut"]["ItemProcessor"]["States"]["Launch"]
    retried = {name for r in launch["Retry"] for name in r["ErrorEquals"]}
    assert lambda_errors.CONTENTION in retried
