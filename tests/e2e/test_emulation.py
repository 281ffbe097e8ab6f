"""The local mode's emulation of AWS, piece by piece (fast: no synthesis, no state machine)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from fanout.local.events import matches
from fanout.local.fargate import EmulatedFargate
from fanout.local.faults import Faults, FaultsError
from fanout.local.tasks import TaskDefinition
from tests.e2e.conftest import alive, moto_table, wait_for

REGION, ACCOUNT = "us-east-1", "123456789012"
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/local"
DEFINITION = TaskDefinition(
    arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/prog:1", family="prog",
    container="main", local_command=[sys.executable, "-c"], log_group="/fanout/prog",
    stream_prefix="prog",
)
STOPPED_RULE = {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
                "detail": {"lastStatus": ["STOPPED"], "clusterArn": [CLUSTER],
                           "startedBy": [{"prefix": "fanout"}]}}


@pytest.fixture
def ecs() -> Iterator[tuple[Any, list[dict[str, Any]], EmulatedFargate]]:
    """boto3's ECS and Logs clients against moto, tasks answered by the emulated Fargate."""
    import boto3

    from fanout.local.aws import emulated_aws, take_over, write_logs

    events: list[dict[str, Any]] = []
    with emulated_aws():
        fargate = EmulatedFargate(region=REGION, account=ACCOUNT, cluster_arn=CLUSTER,
                                  task_definitions={DEFINITION.arn: DEFINITION},
                                  publish=events.append, write_logs=write_logs,
                                  stop_grace_seconds=0.5)
        with take_over(fargate, lambda *_: b"{}"):
            yield boto3.client("ecs", region_name=REGION), events, fargate
        fargate.stop_all("test over")


def run_task(client: Any, code: str, token: str) -> dict[str, Any]:
    return client.run_task(
        cluster=CLUSTER, taskDefinition=DEFINITION.arn, startedBy="fanout", clientToken=token,
        overrides={"containerOverrides": [{"name": "main", "command": [code]}]},
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"],
                                                      "securityGroups": ["sg-1"]}},
    )


def test_same_client_token_is_the_same_task_and_one_launch(ecs):
    # Given a RunTask that went through
    client, events, fargate = ecs
    first = run_task(client, "print('hello'); raise SystemExit(3)", "token-1")

    # When it is sent again with the same clientToken (a retried launch)
    again = run_task(client, "print('hello'); raise SystemExit(3)", "token-1")

    # Then it is the same task, launched once, and it ends as ECS says
    arn = first["tasks"][0]["taskArn"]
    assert again["tasks"][0]["taskArn"] == arn
    assert fargate.launches == 1
    assert fargate.wait_stopped(10)
    (task,) = client.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    assert (task["lastStatus"], task["stopCode"], task["containers"][0]["exitCode"]) == (
        "STOPPED", "EssentialContainerExited", 3)
    stopped = [e for e in events if matches(STOPPED_RULE, e)]
    assert [e["detail"]["taskArn"] for e in stopped] == [arn]
    versions = [e["detail"]["version"] for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_task_output_goes_to_its_log_stream(ecs):
    import boto3

    # Given a task that prints
    client, _, fargate = ecs
    arn = run_task(client, "print('line one'); print('line two')", "token-2")["tasks"][0][
        "taskArn"]
    assert fargate.wait_stopped(10)

    # Then its lines are in <prefix>/<container>/<task id> of the definition's log group
    logs = boto3.client("logs", region_name=REGION)
    stream = f"prog/main/{arn.rsplit('/', 1)[1]}"
    lines = [e["message"] for e in logs.get_log_events(
        logGroupName="/fanout/prog", logStreamName=stream, startFromHead=True)["events"]]
    assert lines == ["line one", "line two"]


def test_stop_task_ends_the_process(ecs):
    # Given a task whose program would run for a minute
    client, _, fargate = ecs
    arn = run_task(client, "import time; time.sleep(60)", "token-3")["tasks"][0]["taskArn"]
    wait_for(lambda: bool(fargate.live_processes()), 10, "the task's process")
    (pid,) = fargate.live_processes()

    # When it is stopped
    client.stop_task(cluster=CLUSTER, task=arn, reason="past its timeout")

    # Then its process is gone and the task says why it stopped
    assert fargate.wait_stopped(10)
    assert not alive(pid)
    (task,) = client.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    assert (task["stopCode"], task["stoppedReason"]) == ("UserInitiated", "past its timeout")


def test_throttle_fault_is_a_throttling_exception(ecs):
    from botocore.exceptions import ClientError

    # Given every RunTask throttled
    client, _, fargate = ecs
    fargate.dice.faults = Faults(throttle=1.0)

    # When a task is asked for, Then ECS's ThrottlingException comes back and nothing runs
    with pytest.raises(ClientError) as raised:
        run_task(client, "pass", "token-4")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert fargate.launches == 0


@pytest.mark.parametrize(("pattern", "event", "expected"), [
    ({"a": ["x"]}, {"a": "x"}, True),
    ({"a": ["x"]}, {"a": "y"}, False),
    ({"a": [{"prefix": "fan"}]}, {"a": "fanout"}, True),
    ({"a": [{"exists": False}]}, {"b": 1}, True),
    ({"a": [{"exists": True}]}, {"b": 1}, False),
    ({"a": [{"anything-but": ["x"]}]}, {"a": "y"}, True),
    ({"d": {"s": ["STOPPED"]}}, {"d": {"s": "RUNNING"}}, False),
    ({"r": ["arn:1"]}, {"r": ["arn:0", "arn:1"]}, True),
])
def test_event_patterns(pattern, event, expected):
    assert matches(pattern, event) is expected


def test_bad_faults_are_named_together():
    with pytest.raises(FaultsError) as raised:
        Faults.parse("throttle=2,nosuch=0.1,seed=x,spot=0.2,launch_latency=-1")
    assert raised.value.fields == ["throttle", "nosuch", "seed", "launch_latency"]


def test_launch_latency_is_seconds_not_a_fraction():
    assert Faults.parse("launch_latency=3,spot=0.5").launch_latency == 3.0
    assert Faults.parse("launch_latency=3").any


def test_vcpu_quota_is_a_number_of_vcpus():
    assert Faults.parse("vcpu_quota=4").vcpu_quota == 4.0 and Faults.parse("vcpu_quota=4").any
    with pytest.raises(FaultsError) as raised:
        Faults.parse("vcpu_quota=0")
    assert raised.value.fields == ["vcpu_quota"]


def test_launch_latency_answers_run_task_after_the_task_started(ecs):
    # Given RunTask answering 0.5 s late
    client, events, fargate = ecs
    fargate.dice.faults = Faults(launch_latency=0.5)

    # When a task is asked for
    answer = run_task(client, "import time; time.sleep(30)", "token-l")

    # Then the task had been running for the latency when RunTask answered
    (task,) = answer["tasks"]
    assert task["lastStatus"] == "RUNNING"
    started = fargate.tasks[task["taskArn"]].started_at
    assert started is not None
    from datetime import UTC, datetime

    assert (datetime.now(UTC) - started).total_seconds() >= 0.5
    assert [e["detail"]["lastStatus"] for e in events][:2] == ["PROVISIONING", "RUNNING"]


def test_table_queries_answer_as_dynamodb_does():
    from fanout.local.moto.dynamodb import cheap_transactions

    # Given a table with a sparse index, one item on it and one off it
    with moto_table(cheap_transactions, keys=("pk", "sk"),
                    indexes={"open": ("open", "at")}) as ddb:
        ddb.put_item(TableName="t", Item={"pk": {"S": "R"}, "sk": {"S": "I#1"},
                                          "open": {"S": "OPEN"}, "at": {"S": "1"}})
        ddb.put_item(TableName="t", Item={"pk": {"S": "R"}, "sk": {"S": "I#2"}})
        ddb.put_item(TableName="t", Item={"pk": {"S": "S"}, "sk": {"S": "I#3"}})

        def keys(**query: Any) -> list[str]:
            return [i["sk"]["S"] for i in ddb.query(TableName="t", **query)["Items"]]

        # Then the index, the partition and a prefix each give what DynamoDB gives
        assert keys(IndexName="open", KeyConditionExpression="#o = :o",
                    ExpressionAttributeNames={"#o": "open"},
                    ExpressionAttributeValues={":o": {"S": "OPEN"}}) == ["I#1"]
        assert keys(KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "R"}}) == ["I#1", "I#2"]
        assert keys(KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                    ExpressionAttributeValues={":p": {"S": "R"}, ":s": {"S": "I#2"}},
                    ScanIndexForward=False) == ["I#2"]


def test_a_cancelled_transaction_leaves_every_item_as_it_was():
    from fanout.local.moto.dynamodb import cheap_transactions

    # Given an item holding nested, set and binary values
    with moto_table(cheap_transactions) as ddb:
        before = {"pk": {"S": "a"}, "n": {"N": "1"}, "b": {"B": b"\x00\xff"},
                  "m": {"M": {"l": {"L": [{"S": "x"}, {"NULL": True}]}}},
                  "ss": {"SS": ["p", "q"]}}
        ddb.put_item(TableName="t", Item=before)
        ddb.put_item(TableName="t", Item={"pk": {"S": "c"}})
        # When a transaction changes it and adds an item, then fails its last condition
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "a"}},
                            "UpdateExpression": "SET n = :two, m.l[0] = :y REMOVE b",
                            "ExpressionAttributeValues": {":two": {"N": "2"},
                                                          ":y": {"S": "y"}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}},
                {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}},
                                    "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        # Then the item is as it was, and the added one is not there
        assert ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"] == before
        assert "Item" not in ddb.get_item(TableName="t", Key={"pk": {"S": "new"}})
