"""A real (emulated) AWS for the handlers: table, bucket, cluster, network, topic, queue.

The table is built from :mod:`fanout.schema`'s names, as the stack builds it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fanout.schema import INDEXES, PARTITION_KEY, PROJECTIONS, SORT_KEY, TTL_ATTRIBUTE

EVENTS = Path(__file__).parent.parent / "events"
REGION = "us-east-1"
TABLE, BUCKET, CLUSTER, CONTAINER = "fanout-records", "fanout-manifests", "fanout-cluster", "main"

JOBS = {"analyzer": {"cpu": 256, "memory": 512, "command": ["-y", "{year}"],
                     "defaults": {"retry": {"max_attempts": 3, "delay_seconds": 10,
                                            "backoff_rate": 2.0},
                                  "timeout_seconds": 600, "max_concurrency": 5}}}


DISPATCHER = "fanout-dispatch"


class WakeCounter:
    """Stands in for the Lambda client: counts the dispatcher's asynchronous invocations."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def invoke(self, *, FunctionName: str, InvocationType: str = "RequestResponse",
               **_: Any) -> dict[str, Any]:
        assert InvocationType == "Event"
        self.calls.append(FunctionName)
        return {"StatusCode": 202}


@dataclass
class World:
    ddb: Any
    s3: Any
    ecs: Any
    sns: Any
    sqs: Any
    queue_url: str
    topic_arn: str
    task_definition: str
    subnet: str
    security_group: str
    #: The dispatcher's wake-ups (Launch invokes it asynchronously; tests run it by hand).
    wakes: WakeCounter

    def messages(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"]) for m in got.get("Messages", [])]

    def tasks(self, status: str = "RUNNING") -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=CLUSTER, desiredStatus=status)["taskArns"]
        if not arns:
            return []
        return list(self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns, include=["TAGS"])["tasks"])


def create_table(ddb: Any) -> None:
    attributes = {PARTITION_KEY, SORT_KEY} | {k for pair in INDEXES.values() for k in pair}
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in sorted(attributes)],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                   {"AttributeName": SORT_KEY, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": name, "Projection": {"ProjectionType": PROJECTIONS[name]},
             "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                           {"AttributeName": sk, "KeyType": "RANGE"}]}
            for name, (pk, sk) in INDEXES.items()
        ],
    )
    ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": TTL_ATTRIBUTE})


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    import boto3
    from moto import mock_aws

    from fanout.aws import clients
    from fanout.runtime.context import reset as reset_clients

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
                        "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_DEV": "false"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        reset_clients()
        ddb, s3, ecs, ec2 = (boto3.client(s, region_name=REGION)
                             for s in ("dynamodb", "s3", "ecs", "ec2"))
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        create_table(ddb)
        s3.create_bucket(Bucket=BUCKET)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        sg = ec2.create_security_group(GroupName="tasks", Description="fanout tasks",
                                       VpcId=vpc)["GroupId"]
        ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["FARGATE", "FARGATE_SPOT"])
        task_def = ecs.register_task_definition(
            family="fanout-analyzer", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512",
            containerDefinitions=[{"name": CONTAINER, "image": "analyzer:latest",
                                   "memory": 512, "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]
        topic = sns.create_topic(Name="fanout-runs")["TopicArn"]
        queue = sqs.create_queue(QueueName="runs")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        env = {
            "FANOUT_TABLE": TABLE, "FANOUT_BUCKET": BUCKET, "FANOUT_CLUSTER": CLUSTER,
            "FANOUT_JOBS": json.dumps(JOBS), "FANOUT_LIMITS": json.dumps({"max_items_per_run": 50}),
            "FANOUT_TASK_DEFINITIONS": json.dumps(
                {"analyzer": {"task_definition": task_def, "container": CONTAINER}}),
            "FANOUT_SUBNETS": subnet, "FANOUT_SECURITY_GROUPS": sg, "FANOUT_TOPIC_ARN": topic,
            "FANOUT_DISPATCHER": DISPATCHER, "FANOUT_OUTPUTS": f"s3://{BUCKET}",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # moto's ECS backend is not safe for concurrent calls (the local mode serializes
        # them in its emulated Fargate): the dispatcher makes one RunTask call at a time here.
        monkeypatch.setattr("fanout.runtime.dispatch.WORKERS", 1)
        # moto's DynamoDB is not either (the local mode serializes its calls): a batch's
        # Launch queues its items one at a time here.
        monkeypatch.setattr("fanout.runtime.launch.TURN_WORKERS", 1)
        wakes = WakeCounter()
        clients.provide("lambda", wakes)
        yield World(ddb, s3, ecs, sns, sqs, queue, topic, task_def, subnet, sg, wakes)
        reset_clients()


def event(name: str, *, task_arn: str, run_id: str, index: int, attempt: int,
          version: int | None = None) -> dict[str, Any]:
    """A recorded "ECS Task State Change" event from tests/events, re-aimed at a task."""
    loaded = json.loads((EVENTS / f"task-stopped-{name}.json").read_text())
    e: dict[str, Any] = copy.deepcopy(loaded)
    detail = e["detail"]
    detail["taskArn"] = task_arn
    e["resources"] = [task_arn]
    for container in detail["containers"]:
        container["taskArn"] = task_arn
    detail["overrides"]["containerOverrides"][0]["environment"] = [
        {"name": "FANOUT_RUN_ID", "value": run_id},
        {"name": "FANOUT_ITEM_INDEX", "value": str(index)},
        {"name": "FANOUT_ATTEMPT", "value": str(attempt)},
    ]
    if version is not None:
        detail["version"] = version
    return e
