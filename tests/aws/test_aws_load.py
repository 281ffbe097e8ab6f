"""bench/aws_load.py's report against a fake deployed stack on moto's server: the records
as the handlers write them, and the CloudWatch metrics AWS would publish."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from fanout.records.model import AttemptRecord, ItemRecord, RunRecord, Settlement
from tests.aws.conftest import REGION, REPO, STACK, TABLE, Stack

STARTED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
RECONCILE = "FanoutTest-FunctionsReconcile1234"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aws_load", REPO / "bench" / "aws_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["aws_load"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed(stack: Stack, run_id: str, items: int, *, twice: int, unfinished: int) -> None:
    """A load run as the handlers record it: ``items`` no-op items launched 20 a second,
    item ``twice`` was settled lost although its task ran, and ran again (the failure the
    records design must not have), the last ``unfinished`` items never settled."""
    from fanout.records.dynamo import DynamoRecords

    store = DynamoRecords(TABLE, stack.client("dynamodb"))
    assert store.create_run(RunRecord(
        run_id=run_id, job="analyzer", status="RUNNING", started_at=iso(STARTED),
        total=items, settings={"cpu": 256, "memory": 512, "architecture": "ARM64"},
        trigger="cli", logical_time=iso(STARTED)), spec={"job": "analyzer"})
    for index in range(items):
        started = STARTED + timedelta(seconds=index / 20)
        item = ItemRecord(run_id, index, "PENDING", params={"n": index})
        attempt = AttemptRecord(run_id, index, 1, client_token=f"ct-{index}",
                                task_token=f"tt-{index}", created_at=iso(STARTED),
                                capacity="FARGATE")
        assert store.begin_attempt(item, attempt)
        arn = f"arn:aws:ecs:{REGION}:123456789012:task/fanout-test/{run_id}-{index}"
        assert store.attach_task(run_id, index, 1, arn, iso(started))
        if index >= items - unfinished:
            continue
        if index == twice:  # settled lost (its event never counted), then launched again
            assert store.settle_attempt(attempt, Settlement(
                status="RETRY", item_status=None, stop_class="lost",
                stopped_at=iso(started), answer={}, reason="ECS no longer knows the task"))
            attempt = AttemptRecord(run_id, index, 2, client_token=f"ct-{index}-2",
                                    task_token=f"tt-{index}", created_at=iso(started),
                                    capacity="FARGATE")
            fresh = store.get_item(run_id, index)
            assert fresh is not None and store.begin_attempt(fresh, attempt)
            assert store.attach_task(run_id, index, 2, arn + "-2", iso(started))
        assert store.settle_attempt(attempt, Settlement(
            status="SUCCEEDED", item_status="SUCCEEDED", stop_class="exit",
            stopped_at=iso(started + timedelta(seconds=30)), answer={}, exit_code=0,
            reason="exit code 0", duration_seconds=30.0))


def publish(stack: Stack) -> None:
    """What CloudWatch holds after the run: DynamoDB's, Lambda's and fanout's metrics."""
    cloudwatch = stack.client("cloudwatch")
    at = STARTED + timedelta(minutes=1)
    for operation, conflicts in (("TransactWriteItems", 7.0), ("UpdateItem", 0.0)):
        cloudwatch.put_metric_data(Namespace="AWS/DynamoDB", MetricData=[
            {"MetricName": "ThrottledRequests", "Timestamp": at, "Value": 2.0,
             "Dimensions": [{"Name": "TableName", "Value": TABLE},
                            {"Name": "Operation", "Value": operation}]}])
        cloudwatch.put_metric_data(Namespace="AWS/DynamoDB", MetricData=[
            {"MetricName": "TransactionConflict", "Timestamp": at, "Value": conflicts,
             "Dimensions": [{"Name": "TableName", "Value": TABLE},
                            {"Name": "Operation", "Value": operation}]}])
    for minute, duration in enumerate((800.0, 2400.0)):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
            {"MetricName": "Duration", "Timestamp": at + timedelta(minutes=minute),
             "Value": duration, "Dimensions": [{"Name": "FunctionName", "Value": RECONCILE}]}])
    # Another table's conflicts are not this stack's.
    cloudwatch.put_metric_data(Namespace="AWS/DynamoDB", MetricData=[
        {"MetricName": "TransactionConflict", "Timestamp": at, "Value": 100.0,
         "Dimensions": [{"Name": "TableName", "Value": "someone-else"}]}])
    cloudwatch.put_metric_data(Namespace="Fanout", MetricData=[
        {"MetricName": "LaunchThrottled", "Timestamp": at, "Value": 3.0,
         "Dimensions": [{"Name": "service", "Value": "fanout"}]}])


@pytest.fixture
def bench(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # The script's clients reach the fake stack as the CLI's do: through the endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    return load_bench()


def test_the_report_counts_what_the_records_and_cloudwatch_say(stack: Stack,
                                                              bench: Any) -> None:
    # Given a 100-item load run with one item launched twice and two never settled, and
    # the metrics CloudWatch published over it
    seed(stack, "load-report", 100, twice=5, unfinished=2)
    publish(stack)
    deployed = bench.Deployed.read(STACK, REGION, stack.session)
    # When the report is made over the run's window
    report = bench.report(deployed, "load-report", reconcile=RECONCILE, start=STARTED,
                          end=STARTED + timedelta(minutes=10))
    # Then it names the lost and the doubled items
    assert report["items"] == 100 and report["succeeded"] == 98
    assert report["items_lost"] == 2 and report["items_run_twice"] == 1
    assert report["items_settled_lost"] == 1
    # And the launch rate: 101 tasks (one item's twice) over 4.95 s, about 20 a second
    launches = report["launches"]
    assert launches["launched"] == 101 and launches["span_seconds"] == 4.95
    assert launches["per_second"] == pytest.approx(20.4, abs=0.1)
    # And the table's conflicts and throttles (every operation, no other table's)
    assert report["dynamodb"] == {"TransactionConflict": 7.0, "ThrottledRequests": 4.0}
    assert report["launch_throttles"]["dispatcher_counted"] == 3.0
    # And Reconcile's duration
    assert report["reconcile"]["invocations"] == 2 and report["reconcile"]["max_ms"] == 2400.0
    assert report["reconcile"]["average_ms"] == 1600.0
    # And the cost per 1,000 items, from the run's estimate
    cost = report["cost"]
    assert cost["total_usd"] > 0
    assert cost["usd_per_1000_items"] == pytest.approx(cost["total_usd"] * 10, rel=1e-3)
    json.dumps(report, default=str)  # what the script prints


def test_the_script_refuses_an_unknown_run(stack: Stack, bench: Any) -> None:
    deployed = bench.Deployed.read(STACK, REGION, stack.session)
    with pytest.raises(SystemExit, match="no run nope"):
        bench.report(deployed, "nope", reconcile=None)
