"""EventBridge Scheduler schedules from the config, each starting a run."""

from __future__ import annotations

import json

from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from fanout.config import ScheduleConfig

#: Scheduler's context value: the time the schedule was due (stable across retries).
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


def schedule_input(schedule: ScheduleConfig) -> str:
    """The execution input of a scheduled run: its spec, marked as started by a schedule,
    with the schedule's time zone (``today`` is that zone's day, as the cron reads it)."""
    # ``schedule`` + the scheduled time name the run's slot: a retried delivery runs nothing.
    return json.dumps({"timezone": schedule.timezone, **schedule.spec, "trigger": "schedule",
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
            description="fanout schedules: start runs of this state machine",
        )
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["states:StartExecution"], resources=[state_machine_arn]
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
                description=f"fanout run of job {schedule.spec.get('job')}",
                schedule_expression=schedule.expression,
                schedule_expression_timezone=schedule.timezone,
                # The window, given in the schedule's zone, in UTC (Scheduler's StartDate
                # and EndDate); unset where it is open.
                start_date=start,
                end_date=end,
                flexible_time_window=window,
                state="ENABLED" if schedule.enabled else "DISABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=state_machine_arn,
                    role_arn=self.role.role_arn,
                    input=schedule_input(schedule),
                ),
            )
