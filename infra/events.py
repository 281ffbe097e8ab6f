"""What wakes the functions: task stops, ended executions, the reconcile schedule."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from fanout.schema import STARTED_BY

#: Execution statuses after which a run's tasks must be stopped.
ABORTING_STATUSES = ["ABORTED", "FAILED", "TIMED_OUT"]


class Events(Construct):
    """EventBridge rules: STOPPED tasks -> Record, ended executions -> Abort, Reconcile."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster_arn: str,
        state_machine_arn: str,
        record: lambda_.IFunction,
        abort: lambda_.IFunction,
        reconcile: lambda_.IFunction,
        step_ended: lambda_.IFunction,
        pipeline_machine_arn: str,
        dead_letters: sqs.IQueue,
        reconcile_every_minutes: int,
    ) -> None:
        super().__init__(scope, id)

        def target(function: lambda_.IFunction) -> targets.LambdaFunction:
            return targets.LambdaFunction(
                function,
                dead_letter_queue=dead_letters,
                retry_attempts=8,
                max_event_age=Duration.hours(2),
            )

        self.task_stopped = events.Rule(
            self,
            "TaskStopped",
            description="fanout: a task of this cluster stopped -> Record",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={
                    "clusterArn": [cluster_arn],
                    "lastStatus": ["STOPPED"],
                    "startedBy": [STARTED_BY],
                },
            ),
            targets=[target(record)],
        )
        self.run_ended = events.Rule(
            self,
            "RunEnded",
            description="fanout: a run's execution aborted, failed or timed out -> Abort",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [state_machine_arn],
                    "status": ABORTING_STATUSES,
                },
            ),
            targets=[target(abort)],
        )
        # A second rule, not a second target of RunEnded: a step's run that SUCCEEDED ends
        # its step too, and Abort must not be woken for it.
        self.execution_ended = events.Rule(
            self,
            "ExecutionEnded",
            description="fanout: a run or a pipeline execution ended -> StepEnded",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [state_machine_arn, pipeline_machine_arn],
                    "status": ["SUCCEEDED", *ABORTING_STATUSES],
                },
            ),
            targets=[target(step_ended)],
        )
        self.reconcile = events.Rule(
            self,
            "Reconcile",
            description="fanout: settle attempts whose STOPPED event never came",
            schedule=events.Schedule.rate(Duration.minutes(reconcile_every_minutes)),
            targets=[target(reconcile)],
        )
