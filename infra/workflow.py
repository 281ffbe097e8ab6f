"""The run's state machine, exactly the shape of docs/decisions/0001.

The definition is written as ASL (a dict) rather than with CDK's state classes: the
Distributed Map's ItemReader takes its bucket and key by path, concurrency and tolerance
come from paths, and the run fails with ``CausePath`` — parts CDK's classes do not all
express, and the local mode runs this very definition in moto's interpreter.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from fanout import lambda_errors

#: Lambda's transient errors, retried on every Lambda task (AWS's recommended list).
LAMBDA_TRANSIENT = [*lambda_errors.TRANSIENT, lambda_errors.CONTENTION]
#: Launch errors that never use up an item's attempts.
LAUNCH_THROTTLES = ["Fanout.LaunchThrottled", "Fanout.CapacityUnavailable"]
#: A Launch that died (crash, timeout, out of memory), under every name the Python 3.12
#: runtime reports it. Launch is idempotent per attempt, so trying again adopts the task
#: the dead invocation may have started.
LAUNCH_CRASHES = list(lambda_errors.CRASHES)
#: The S3 actions a Distributed Map's ResultWriter needs (AWS's "IAM policies for
#: ResultWriter"), and the objects they apply to: each run's results prefix.
RESULT_WRITER_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                         "s3:AbortMultipartUpload"]
RESULTS_OBJECTS = "runs/*/results/*"


def definition(
    *, expand_arn: str, launch_arn: str, finalize_arn: str, partition: str = "aws",
    run_timeout_hours: int = 168,
) -> dict[str, Any]:
    """The run's ASL: Expand -> FanOut (Distributed Map) -> Finalize (looped until it is
    done; then succeeded or failed).

    A run lives at most ``run_timeout_hours`` (the execution's TimeoutSeconds; Abort closes
    a TIMED_OUT run), which is what its records' expiry is counted from.
    """
    invoke = f"arn:{partition}:states:::lambda:invoke"
    lambda_retry = {
        "ErrorEquals": LAMBDA_TRANSIENT,
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2.0,
        "JitterStrategy": "FULL",
    }
    child = {
        "StartAt": "Launch",
        "States": {
            "Launch": {
                "Type": "Task",
                "Resource": f"{invoke}.waitForTaskToken",
                "Parameters": {
                    "FunctionName": launch_arn,
                    "Payload": {
                        "token.$": "$$.Task.Token",
                        "run_id.$": "$.run_id",
                        "item.$": "$.item",
                    },
                },
                "TimeoutSecondsPath": "$.callback_timeout_seconds",
                "Retry": [
                    {
                        # Capped low: Fargate refills 20 launches a second, so a long
                        # backoff leaves capacity unused; the cap keeps waiting items close.
                        "ErrorEquals": LAUNCH_THROTTLES,
                        "IntervalSeconds": 1,
                        "MaxAttempts": 60,
                        "BackoffRate": 1.5,
                        "MaxDelaySeconds": 5,
                        "JitterStrategy": "FULL",
                    },
                    lambda_retry,
                    {
                        "ErrorEquals": LAUNCH_CRASHES,
                        "IntervalSeconds": 1,
                        "MaxAttempts": 3,
                        "BackoffRate": 2.0,
                        "JitterStrategy": "FULL",
                    },
                ],
                "Catch": [{"ErrorEquals": ["Fanout.Retry"], "ResultPath": "$.retry",
                           "Next": "Backoff"}],
                "End": True,
            },
            "Backoff": {
                "Type": "Pass",
                "Parameters": {
                    "run_id.$": "$.run_id",
                    "item.$": "$.item",
                    "callback_timeout_seconds.$": "$.callback_timeout_seconds",
                    "wait.$": "States.StringToJson($.retry.Cause)",
                },
                "Next": "Wait",
            },
            "Wait": {"Type": "Wait", "SecondsPath": "$.wait.delay_seconds", "Next": "Launch"},
        },
    }
    return {
        "Comment": "fanout run: expand the spec, launch every item, finalize",
        "StartAt": "Expand",
        "TimeoutSeconds": run_timeout_hours * 3600,
        "States": {
            "Expand": {
                "Type": "Task",
                "Resource": invoke,
                "Parameters": {
                    "FunctionName": expand_arn,
                    "Payload": {
                        "spec.$": "$",
                        "run_id.$": "$$.Execution.Name",
                        "execution_arn.$": "$$.Execution.Id",
                        "start_time.$": "$$.Execution.StartTime",
                    },
                },
                "OutputPath": "$.Payload",
                # No catch: Fanout.InvalidRunSpec fails the execution (run REJECTED).
                "Retry": [lambda_retry],
                "Next": "FanOut",
            },
            "FanOut": {
                "Type": "Map",
                "Label": "FanOut",
                "ItemReader": {
                    "Resource": f"arn:{partition}:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.manifest_key"},
                },
                "ItemSelector": {
                    "run_id.$": "$.run_id",
                    "item.$": "$$.Map.Item.Value",
                    "callback_timeout_seconds.$": "$.callback_timeout_seconds",
                },
                "MaxConcurrencyPath": "$.max_concurrency",
                "ToleratedFailurePercentagePath": "$.tolerated_failure_percent",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **child,
                },
                # The children's results go to S3 under the run's prefix: without a
                # ResultWriter a Distributed Map gathers them into its own output, and
                # ResultPath null does not stop that (aws/aws-cdk#24799): past 256 KiB
                # (about a thousand items) the execution would fail with
                # States.DataLimitExceeded, which no Catch takes.
                "ResultWriter": {
                    "Resource": f"arn:{partition}:states:::s3:putObject",
                    "Parameters": {"Bucket.$": "$.bucket", "Prefix.$": "$.results_prefix"},
                },
                "ResultPath": None,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.map_error",
                           "Next": "Finalize"}],
                "Next": "Finalize",
            },
            "Finalize": {
                "Type": "Task",
                "Resource": invoke,
                "Parameters": {
                    "FunctionName": finalize_arn,
                    "Payload": {"run_id.$": "$.run_id", "outcome.$": "$"},
                },
                "OutputPath": "$.Payload",
                "Retry": [lambda_retry],
                "Next": "Closed?",
            },
            # Finalize closes a run a time budget's worth of item pages at a time: until it
            # says done, it is called again with its output (the cursor) as the outcome.
            # Once done, the same Choice settles the run: one state, not two, so a run that
            # closes in one turn pays no transition for the loop. Each further turn costs 2
            # transitions and 7 history events (docs/decisions/0009).
            "Closed?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.done", "BooleanEquals": False, "Next": "Finalize"},
                    {"Variable": "$.status", "StringEquals": "SUCCEEDED", "Next": "Done"},
                ],
                "Default": "RunFailed",
            },
            "Done": {"Type": "Succeed"},
            "RunFailed": {"Type": "Fail", "Error": "Fanout.RunFailed", "CausePath": "$.summary"},
        },
    }


class Workflow(Construct):
    """The Standard state machine that carries a run, with its log group and X-Ray."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        expand: lambda_.IFunction,
        launch: lambda_.IFunction,
        finalize: lambda_.IFunction,
        manifests: s3.IBucket,
        log_retention: logs.RetentionDays,
        run_timeout_hours: int = 168,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        # A fixed name lets the role start child executions of this very machine
        # without a reference cycle.
        self.state_machine_name = f"{stack.stack_name}-run"
        # json.dumps, not Stack.to_json_string: the latter drops nulls, and the map's
        # "ResultPath": null (discard the children's results) must stay. Tokens (ARNs)
        # stay in the string and become the DefinitionString's Fn::Join.
        body = json.dumps(
            definition(
                expand_arn=expand.function_arn,
                launch_arn=launch.function_arn,
                finalize_arn=finalize.function_arn,
                partition=Aws.PARTITION,
                run_timeout_hours=run_timeout_hours,
            )
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(body),
            # Every state's events, never their data: inputs and outputs carry the items'
            # environment values and the task tokens (ARCHITECTURE.md, invariant 8).
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )
        # The definition invokes the unqualified ARNs: no version or alias wildcard.
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="InvokeFunctions",
            actions=["lambda:InvokeFunction"],
            resources=[f.function_arn for f in (expand, launch, finalize)],
        ))
        machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        map_runs = stack.format_arn(
            service="states",
            resource="mapRun",
            resource_name=f"{self.state_machine_name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="RunChildExecutions", actions=["states:StartExecution"], resources=[machine_arn]
        ))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="ManageChildExecutions",
            actions=["states:DescribeExecution", "states:StopExecution"],
            resources=[executions],
        ))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="ManageMapRuns",
            actions=["states:DescribeMapRun", "states:UpdateMapRun"],
            resources=[map_runs],
        ))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="ReadItemsManifests",
            actions=["s3:GetObject"],
            resources=[manifests.arn_for_objects("runs/*")],
        ))
        # What a ResultWriter needs (AWS: "IAM policies for ResultWriter"), on the runs'
        # results prefixes only: it writes multipart, may abort, and reads what it wrote.
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="WriteMapResults",
            actions=RESULT_WRITER_ACTIONS,
            resources=[manifests.arn_for_objects(RESULTS_OBJECTS)],
        ))
        self.console_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/states/home?region={Aws.REGION}"
            f"#/statemachines/view/{self.state_machine.state_machine_arn}"
        )

