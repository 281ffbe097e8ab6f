"""Scheduled runs: the scheduled time is the logical time; a retried delivery runs nothing.

Expand's real logic runs against the records table and bucket on moto's server (the
conditional slot write is DynamoDB's), with the input a schedule sends (infra/schedules.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fanout.config import ScheduleConfig, load_config_file
from fanout.records.dynamo import DynamoRecords
from fanout.runtime.expand import ExpandInput, expand
from fanout.runtime.slots import DuplicateScheduledRun
from fanout.settings import ExpandEnv
from infra.schedules import SCHEDULED_TIME, schedule_input
from tests.aws.conftest import BUCKET, REPO, TABLE, Stack

CONFIG = load_config_file(REPO / "cdk.json")
BACKFILL = ScheduleConfig(
    name="daily", expression="cron(0 2 * * ? *)",
    spec={"job": "analyzer", "params": {"day": {"dates": {"start": "today-1d",
                                                           "stop": "today"}}},
          "command": ["--day", "{day}"]},
)


def delivered(when: str) -> Any:
    """The execution input Scheduler sends at ``when`` (it fills in the context keyword)."""
    return json.loads(schedule_input(BACKFILL).replace(SCHEDULED_TIME, when))


def run_expand(stack: Stack, spec: Any, run_id: str) -> Any:
    env = ExpandEnv(fanout_table=TABLE, fanout_bucket=BUCKET, fanout_jobs=CONFIG.jobs,
                    fanout_limits=CONFIG.limits)
    return expand(ExpandInput(spec=spec, run_id=run_id, start_time="2026-03-05T02:00:09Z"),
                  env=env, store=DynamoRecords(TABLE, stack.client("dynamodb")),
                  s3=stack.client("s3"))


def test_scheduled_run_backfills_the_day_before_its_scheduled_time(stack: Stack) -> None:
    # Given the input of the daily schedule due at 2026-03-05 02:00 UTC
    spec = delivered("2026-03-05T02:00:00Z")

    # When Expand runs it
    out = run_expand(stack, spec, "daily-run-1")

    # Then its one item is yesterday, and the run is recorded as the schedule's
    manifest = json.loads(stack.client("s3").get_object(
        Bucket=BUCKET, Key=out.manifest_key)["Body"].read())
    assert [m["params"] for m in manifest] == [{"day": "2026-03-04"}]
    run = DynamoRecords(TABLE, stack.client("dynamodb")).get_run("daily-run-1")
    assert run is not None
    assert run.trigger == "schedule"
    assert run.logical_time.startswith("2026-03-05T02:00:00")


def test_a_retried_delivery_starts_no_second_run(stack: Stack) -> None:
    # Given a run already started for the schedule's 2026-03-06 slot
    spec = delivered("2026-03-06T02:00:00Z")
    run_expand(stack, spec, "daily-run-a")

    # When a retried delivery of the same slot starts a second execution
    with pytest.raises(DuplicateScheduledRun, match="already started run daily-run-a"):
        run_expand(stack, spec, "daily-run-b")

    # Then it wrote no run and no manifest; a retried Expand of the first goes on; the next
    # day's slot is free
    store = DynamoRecords(TABLE, stack.client("dynamodb"))
    assert store.get_run("daily-run-b") is None
    listed = stack.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="runs/daily-run-b/")
    assert listed.get("KeyCount", 0) == 0
    assert run_expand(stack, spec, "daily-run-a").run_id == "daily-run-a"
    assert run_expand(stack, delivered("2026-03-07T02:00:00Z"), "daily-run-c").total == 1
    assert type(DuplicateScheduledRun("x")).__name__ == "Fanout.DuplicateScheduledRun"


def test_today_is_the_schedules_day_in_its_time_zone(stack: Stack) -> None:
    # Given a daily schedule at 00:30 in Auckland, backfilling the day before: it is due at
    # 2026-03-05 00:30 NZDT, which is 2026-03-04 11:30 UTC (the day before, in UTC)
    auckland = ScheduleConfig(name="auckland", expression="cron(30 0 * * ? *)",
                              timezone="Pacific/Auckland", spec=BACKFILL.spec)
    spec = json.loads(schedule_input(auckland).replace(SCHEDULED_TIME,
                                                       "2026-03-04T11:30:00Z"))
    assert spec["timezone"] == "Pacific/Auckland"

    # When Expand runs it
    out = run_expand(stack, spec, "auckland-run-1")

    # Then "yesterday" is Auckland's yesterday (4 March), not UTC's (3 March)
    manifest = json.loads(stack.client("s3").get_object(
        Bucket=BUCKET, Key=out.manifest_key)["Body"].read())
    assert [m["params"] for m in manifest] == [{"day": "2026-03-04"}]
