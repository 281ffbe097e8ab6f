"""EventBridge Scheduler schedules from the config, each starting a run or a pipeline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from fanout.config import ScheduleConfig

#: Scheduler's context value: the time the schedule was due (stable across retries).
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


def schedule_input(schedule: ScheduleConfig,
                   pipelines: Mapping[str, dict[str, Any]] | None = None) -> str:
    """The execution input of a scheduled run: its spec (or the named pipeline's document),
    marked as started by a schedule, with the schedule's time zone (``today`` is that
    zone's day, as the cron reads it)."""
    body = schedule.spec if schedule.spec is not None else {
        **(pipelines or {})[str(schedule.pipeline)], "pipeline": schedule.pipeline}
    # ``schedule`` + the scheduled time name the run's slot: a retried delivery runs nothing.
    return json.dumps({"timezone": schedule.timezone, **body, "trigger": "schedule",
                       "logical_time": SCHEDULED_TIME, "schedule": schedule.name})


class Schedules(Construct):
    """One schedule per ``fanout.schedules`` entry; a role that may start only this machine."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        schedules: list[ScheduleConfig],
        state_machine_arn: str,
        pipeline_machine_arn: str | None = None,
        pipelines: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.role: iam.Role | None = None
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        if not schedules:
            return
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="fanout schedules: start runs (and pipelines) of this stack",
        )
        machines = {state_machine_arn if s.spec is not None else str(pipeline_machine_arn)
                    for s in schedules}
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["states:StartExecution"], resources=sorted(machines, key=str)
        ))
        for schedule in schedules:
            window = (
                scheduler.CfnSchedule.FlexibleTimeWindowProperty(
                    mode="FLEXIBLE", maximum_window_in_minutes=schedule.flexible_window_minutes
                )
                if schedule.flexible_window_minutes
                else scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF")
            )
            start, end = schedule.window()
            self.schedules[schedule.name] = scheduler.CfnSchedule(
                self,
                f"Schedule-{schedule.name}",
                description=f"fanout run of job {schedule.spec.get('job')}"
                if schedule.spec is not None else f"fanout pipeline {schedule.pipeline}",
                schedule_expression=schedule.expression,
                schedule_expression_timezone=schedule.timezone,
                # The window, given in the schedule's zone, in UTC (Scheduler's StartDate
                # and EndDate); unset where it is open.
                start_date=start,
                end_date=end,
                flexible_time_window=window,
                state="ENABLED" if schedule.enabled else "DISABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=state_machine_arn if schedule.spec is not None
                    else str(pipeline_machine_arn),
                    role_arn=self.role.role_arn,
                    input=schedule_input(schedule, pipelines),
                ),
            )
