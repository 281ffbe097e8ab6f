"""The pipeline state machine (docs/decisions/0018-pipelines-on-aws.md).

One execution per pipeline run, a loop: ``Decide`` (Lambda) starts and skips steps and
says whether the pipeline has ended; if not, ``AwaitStep`` (``.waitForTaskToken``) waits
until StepEnded answers its token (a step ended), or for ``wait_seconds`` at most (a lost
event: Decide then reads the steps' executions). Only the pipeline run id, a counter and a
summary cross the state: the steps' items stay in DynamoDB and S3.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from fanout.pipelines.validate import MAX_TIMEOUT_SECONDS
from infra.workflow import LAMBDA_TRANSIENT

#: The pipeline execution's own limit: a pipeline's longest life, and an hour to stop.
PIPELINE_TIMEOUT_SECONDS = MAX_TIMEOUT_SECONDS + 3600


def pipeline_machine_name(scope: Construct) -> str:
    """The pipeline state machine's fixed name: StepEnded tells its executions' ends from
    the runs' by it, which a reference could not give without a dependency cycle."""
    return f"{Stack.of(scope).stack_name}-pipeline"


def definition(*, decide_arn: str, await_arn: str, partition: str = "aws") -> dict[str, Any]:
    """Decide -> Ended? -> (AwaitStep -> Decide)* -> Succeeded | PipelineFailed |
    PipelineTimedOut."""
    invoke = f"arn:{partition}:states:::lambda:invoke"
    lambda_retry = {"ErrorEquals": LAMBDA_TRANSIENT, "IntervalSeconds": 2, "MaxAttempts": 6,
                    "BackoffRate": 2.0, "JitterStrategy": "FULL"}
    return {
        "Comment": "fanout pipeline: start each step's run when its needs have ended",
        "StartAt": "Decide",
        "TimeoutSeconds": PIPELINE_TIMEOUT_SECONDS,
        "States": {
            "Decide": {
                "Type": "Task",
                "Resource": invoke,
                "Parameters": {
                    "FunctionName": decide_arn,
                    "Payload": {
                        "input.$": "$",
                        "pipeline_run_id.$": "$$.Execution.Name",
                        "execution_arn.$": "$$.Execution.Id",
                        "start_time.$": "$$.Execution.StartTime",
                    },
                },
                "OutputPath": "$.Payload",
                # No catch: Fanout.InvalidPipelineSpec fails the execution, nothing started.
                "Retry": [lambda_retry],
                "Next": "Ended?",
            },
            "Ended?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.again", "BooleanEquals": True, "Next": "Decide"},
                    {"Variable": "$.ended", "BooleanEquals": False, "Next": "AwaitStep"},
                    {"Variable": "$.status", "StringEquals": "SUCCEEDED", "Next": "Succeeded"},
                    {"Variable": "$.status", "StringEquals": "TIMED_OUT",
                     "Next": "PipelineTimedOut"},
                ],
                "Default": "PipelineFailed",
            },
            "AwaitStep": {
                "Type": "Task",
                "Resource": f"{invoke}.waitForTaskToken",
                "Parameters": {
                    "FunctionName": await_arn,
                    "Payload": {
                        "token.$": "$$.Task.Token",
                        "pipeline_run_id.$": "$.pipeline_run_id",
                        "changes.$": "$.changes",
                    },
                },
                # A lost step-ending event: Decide runs anyway after this long.
                "TimeoutSecondsPath": "$.wait_seconds",
                "ResultPath": None,
                "Retry": [lambda_retry],
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timed_out",
                           "Next": "Decide"}],
                "Next": "Decide",
            },
            "Succeeded": {"Type": "Succeed"},
            "PipelineFailed": {"Type": "Fail", "Error": "Fanout.PipelineFailed",
                               "CausePath": "$.summary"},
            "PipelineTimedOut": {"Type": "Fail", "Error": "Fanout.PipelineTimedOut",
                                 "CausePath": "$.summary"},
        },
    }


class PipelineWorkflow(Construct):
    """The Standard state machine that carries a pipeline run, with its log group."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        decide: lambda_.IFunction,
        await_step: lambda_.IFunction,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.state_machine_name = pipeline_machine_name(self)
        body = json.dumps(definition(decide_arn=decide.function_arn,
                                     await_arn=await_step.function_arn,
                                     partition=Aws.PARTITION))
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(body),
            # Events, never data: the loop's state carries AwaitStep's task token.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            sid="InvokeFunctions",
            actions=["lambda:InvokeFunction"],
            resources=[decide.function_arn, await_step.function_arn],
        ))
        self.arn = stack.format_arn(
            service="states", resource="stateMachine", resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.console_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/states/home?region={Aws.REGION}"
            f"#/statemachines/view/{self.state_machine.state_machine_arn}"
        )
