"""Drive the handlers the way the state machine and EventBridge do."""

from __future__ import annotations

import json
from typing import Any

from fanout.records.dynamo import DynamoRecords
from tests.integration.conftest import BUCKET, TABLE, World, event


class Context:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def call(name: str, payload: dict[str, Any]) -> Any:
    import importlib

    module = importlib.import_module(f"lambdas.{name}")
    return module.handler(payload, Context())


def store() -> DynamoRecords:
    return DynamoRecords(TABLE)


def start_run(run_id: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = spec or {"job": "analyzer", "params": {"year": {"range": {"start": 1999, "stop": 2002}}}}
    result: dict[str, Any] = call("expand", {
        "spec": spec, "run_id": run_id,
        "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:FanoutRun:{run_id}",
        "start_time": "2026-11-20T10:00:00Z"})
    return result


def manifest(world: World, run_id: str) -> list[dict[str, Any]]:
    body = world.s3.get_object(Bucket=BUCKET, Key=f"runs/{run_id}/items.json")["Body"].read()
    items: list[dict[str, Any]] = json.loads(body)
    return items


def launch(world: World, run_id: str, index: int, token: str) -> dict[str, Any]:
    """Launch, then (when Launch queued the attempt) the dispatcher it wakes: what the item's
    child execution and the launch gate do together. ``launched`` says whether this call
    started a task; ``task_arn`` is the attempt's task."""
    item = manifest(world, run_id)[index]
    result: dict[str, Any] = call("launch", {"token": token, "run_id": run_id, "item": item})
    if not result.get("queued"):
        return result
    call("dispatch", {})
    attempt = store().get_attempt(run_id, index, result["attempt"])
    assert attempt is not None
    return {**result, "launched": attempt.task_arn is not None and attempt.is_open,
            "task_arn": attempt.task_arn,
            "capacity": attempt.capacity}


def stopped(kind: str, task_arn: str, run_id: str, index: int, attempt: int,
            version: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = call("record", event(kind, task_arn=task_arn, run_id=run_id,
                                                  index=index, attempt=attempt,
                                                  version=version))
    return result


def totals(run_id: str) -> dict[str, int]:
    run = store().get_run(run_id)
    assert run is not None
    return run.totals()


def item_states(run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in store().items(run_id):
        counts[item.status.lower()] = counts.get(item.status.lower(), 0) + 1
    return counts


#: The analyzer job's log group, as the stack names it (container ``main``).
LOG_GROUP = "/fanout/analyzer"


def read_log_groups(world: World, monkeypatch: Any, answers: Any) -> None:
    """Record and Reconcile are told the analyzer's log group (their FANOUT_LOG_GROUPS):
    the cached environment is dropped and the world's fakes are put back."""
    from fanout.aws import clients
    from fanout.runtime import context

    monkeypatch.setenv("FANOUT_LOG_GROUPS", json.dumps({"main": LOG_GROUP}))
    context.reset()
    clients.provide("lambda", world.wakes)
    context.use(callbacks=answers)


def write_task_log(task_arn: str, lines: list[str]) -> str:
    """The lines a task's container wrote, in its CloudWatch stream; returns the stream."""
    import time

    import boto3

    logs = boto3.client("logs", region_name="us-east-1")
    if not logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]:
        logs.create_log_group(logGroupName=LOG_GROUP)
    stream = f"fanout/main/{task_arn.rsplit('/', 1)[-1]}"
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": m}
                                   for i, m in enumerate(lines)])
    return stream
