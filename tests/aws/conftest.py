"""A deployed stack on moto's HTTP server, and the ``fanout`` command run against it.

The server holds what the commands read: a CloudFormation stack whose Outputs carry the
physical names (a template with one trivial resource and literal Outputs), the records
table (built from :mod:`fanout.schema`, as the stack builds it), the manifest bucket, the
run and pipeline state machines and the job's log group. Records are seeded through the
real records store (:class:`fanout.records.dynamo.DynamoRecords`) with the calls the
handlers make.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fanout.schema import INDEXES, PARTITION_KEY, PROJECTIONS, SORT_KEY

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STACK = "FanoutTest"
TABLE, BUCKET, LOG_GROUP, CLUSTER = "fanout-test-records", "fanout-test-manifests", \
    "/fanout/test/analyzer", "fanout-test"


@dataclass
class Stack:
    endpoint: str
    env: dict[str, str]
    outputs: dict[str, str]
    session: Any

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION, endpoint_url=self.endpoint)

    def fanout(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The ``fanout`` command, as a user runs it (a subprocess)."""
        return subprocess.run(
            [sys.executable, "-m", "fanout.cli", *args], input=stdin, text=True,
            capture_output=True, env=self.env, cwd=REPO, timeout=60,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _create(session: Any, endpoint: str) -> dict[str, str]:
    def client(name: str) -> Any:
        return session.client(name, region_name=REGION, endpoint_url=endpoint)

    attributes = {PARTITION_KEY, SORT_KEY} | {k for pair in INDEXES.values() for k in pair}
    client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in sorted(attributes)],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                   {"AttributeName": SORT_KEY, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": name,
            "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                          {"AttributeName": sk, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": PROJECTIONS[name]},
        } for name, (pk, sk) in INDEXES.items()],
    )
    client("s3").create_bucket(Bucket=BUCKET)
    client("logs").create_log_group(logGroupName=LOG_GROUP)
    machine = client("stepfunctions").create_state_machine(
        name="fanout-test-runs", roleArn="arn:aws:iam::123456789012:role/fanout-test",
        definition=json.dumps({"StartAt": "Expand", "States": {"Expand": {"Type": "Pass",
                                                                         "End": True}}}),
    )["stateMachineArn"]
    pipelines = client("stepfunctions").create_state_machine(
        name="fanout-test-pipeline", roleArn="arn:aws:iam::123456789012:role/fanout-test",
        definition=json.dumps({"StartAt": "Decide", "States": {"Decide": {"Type": "Pass",
                                                                         "End": True}}}),
    )["stateMachineArn"]
    outputs = {"StateMachineArn": machine, "PipelineStateMachineArn": pipelines,
               "RecordsTable": TABLE, "ManifestBucket": BUCKET,
               "Cluster": CLUSTER, "LogsAnalyzer": LOG_GROUP}
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    return outputs


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    import boto3
    from moto.server import ThreadedMotoServer

    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_SESSION_TOKEN": "testing"}
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        session = boto3.Session(region_name=REGION, aws_access_key_id="testing",
                                aws_secret_access_key="testing", aws_session_token="testing")
        outputs = _create(session, endpoint)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k != "FANOUT_CONFIG"}
        env.update(credentials, AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION=REGION,
                   PYTHONPATH=str(REPO))
        yield Stack(endpoint, env, outputs, session)
    finally:
        server.stop()
