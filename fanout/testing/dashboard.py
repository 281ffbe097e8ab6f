"""The deployed dashboard without AWS: an issuer with a test key, a stack on moto.

:class:`TestIssuer` signs ID tokens with an RSA key made here and serves its JWKS (as
Cognito's ``/.well-known/jwks.json``); :class:`EmulatedStack` is the records table and the
state machine on moto (inside ``mock_aws``), with runs written as the control plane leaves
them; :meth:`EmulatedStack.app` builds the function's app over them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanout.ui.tokens import b64url

REGION = "us-east-1"
TABLE = "fanout-dashboard-records"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
CLIENT_ID = "dashboardclient"
AUTH_URL = "https://fanout-test.auth.us-east-1.amazoncognito.com"


@dataclass
class TestIssuer:
    """Signs ID tokens (RS256) as a Cognito user pool would, with a key of its own."""

    __test__ = False  # not a pytest class
    issuer: str = ISSUER
    audience: str = CLIENT_ID
    kid: str = "test-key-1"
    key: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.key is None:
            from cryptography.hazmat.primitives.asymmetric import rsa

            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return json.dumps({"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig",
                                     "alg": "RS256", "n": b64url(n), "e": b64url(e)}]}).encode()

    def fetch(self, url: str) -> bytes:
        assert url == f"{self.issuer}/.well-known/jwks.json", url
        return self.jwks()

    def token(self, groups: list[str], *, user: str = "ana@example.com",
              expires_in: float = 3600, header: dict[str, Any] | None = None,
              **claims: Any) -> str:
        """A signed ID token of ``user`` in ``groups``; ``claims`` override any claim."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        body = {"sub": "0000-" + user, "iss": self.issuer, "aud": self.audience,
                "token_use": "id", "email": user, "cognito:groups": groups,
                "iat": now, "exp": int(now + expires_in), **claims}
        head = header or {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signed = (b64url(json.dumps(head).encode()) + "." +
                  b64url(json.dumps(body).encode()))
        signature = self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signed + "." + b64url(signature)


@dataclass
class EmulatedStack:
    """The records table and a state machine on moto (call inside ``mock_aws``)."""

    config_dir: Path
    session: Any = None
    machine_arn: str = ""
    jobs: dict[str, Any] = field(default_factory=lambda: {"analyzer": {
        "cpu": 256, "memory": 512, "command": ["-y", "{year}"]}})

    def __post_init__(self) -> None:
        import boto3

        self.session = boto3.Session(region_name=REGION, aws_access_key_id="testing",
                                     aws_secret_access_key="testing")
        self.ddb = self.session.client("dynamodb")
        _create_table(self.ddb)
        sfn = self.session.client("stepfunctions")
        iam = self.session.client("iam")
        role = iam.create_role(RoleName="fanout-machine", AssumeRolePolicyDocument="{}")
        definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600,
                                                             "End": True}}}
        self.machine_arn = sfn.create_state_machine(
            name="fanout-runs", definition=json.dumps(definition),
            roleArn=role["Role"]["Arn"])["stateMachineArn"]
        self.pipeline_machine_arn = sfn.create_state_machine(
            name="fanout-pipeline", definition=json.dumps(definition),
            roleArn=role["Role"]["Arn"])["stateMachineArn"]
        self.sfn = sfn
        (self.config_dir / "dashboard.json").write_text(json.dumps(
            {"context": {"fanout": {"stack_name": "Fanout", "jobs": self.jobs}}}))

    def store(self) -> Any:
        from fanout.records.dynamo import DynamoRecords

        return DynamoRecords(TABLE, self.ddb)

    def env(self, url: str = "https://dash.execute-api.us-east-1.amazonaws.com",
            pipelines: bool = True) -> Any:
        """The function's environment; without ``pipelines``, as a stack deployed before
        pipelines gives it (no pipeline state machine)."""
        from fanout.ui.deployed import DashboardEnv

        return DashboardEnv(
            fanout_stack_name="Fanout", fanout_table=TABLE,
            fanout_state_machine_arn=self.machine_arn,
            fanout_pipeline_state_machine_arn=self.pipeline_machine_arn if pipelines else "",
            fanout_job_log_groups={"analyzer": "/fanout/analyzer"},
            dashboard_url=url, dashboard_issuer=ISSUER, dashboard_client_id=CLIENT_ID,
            dashboard_auth_url=AUTH_URL, aws_region=REGION)

    def app(self, issuer: TestIssuer, url: str = "https://dash.execute-api.us-east-1"
            ".amazonaws.com", post: Any = None, pipelines: bool = True) -> Any:
        from fanout.ui.deployed import app_from_env

        return app_from_env(self.env(url, pipelines), task_root=self.config_dir,
                            session=self.session, fetch=issuer.fetch, post=post)

    def add_pipeline_run(self, pipeline_run_id: str, steps: dict[str, dict[str, Any]],
                         status: str = "FAILED",
                         started_at: str = "2026-12-04T09:00:00.000Z") -> None:
        """A pipeline run as Decide leaves it: ``steps`` maps each step's name to its
        record (``status``, ``run_id``, ``reason``...) and ``needs``."""
        from fanout.records.pipelines import PipelineRecords

        spec = {"pipeline": "seed", "steps": {
            name: {"job": "analyzer", "items": [{"year": 1999}],
                   **({"needs": step["needs"]} if step.get("needs") else {})}
            for name, step in steps.items()}}
        PipelineRecords(TABLE, self.ddb).create(
            {"pipeline_run_id": pipeline_run_id, "pipeline": "seed", "spec": spec,
             "status": status, "trigger": "console", "started_at": started_at,
             "finished_at": started_at.replace("T09:", "T10:")},
            {name: {"runs": [step["run_id"]] if step.get("run_id") else [],
                    **{k: v for k, v in step.items() if k != "needs"}}
             for name, step in steps.items()},
            expires_at=2_000_000_000)

    def add_run(self, run_id: str, items: int, *, running: bool = False,
                started_at: str = "2026-12-04T10:00:00.000Z") -> str:
        """A run of ``items`` items as the control plane leaves it (every third failed
        once then succeeded; item 5 failed), its execution started when ``running``."""
        from boto3.dynamodb.types import TypeSerializer

        from fanout.records.layout import attempt_sk, item_sk, run_pk, to_attrs
        from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
        from fanout.schema import PARTITION_KEY, SORT_KEY

        arn = ""
        if running:
            arn = self.sfn.start_execution(stateMachineArn=self.machine_arn, name=run_id,
                                           input="{}")["executionArn"]
        statuses = ["FAILED" if i == 5 else "SUCCEEDED" for i in range(items)]
        counts = {"SUCCEEDED": statuses.count("SUCCEEDED"), "FAILED": statuses.count("FAILED")}
        if running:
            statuses = ["RUNNING"] * items
            counts = {"RUNNING": items}
        spec = {"job": "analyzer", "params": {"year": {"range": {"start": 0, "stop": items}}}}
        self.store().create_run(RunRecord(
            run_id, "analyzer", "RUNNING" if running else "FAILED", started_at, total=items,
            execution_arn=arn, counts=counts,
            finished_at=None if running else "2026-12-04T10:30:00.000Z"), spec=spec)
        ser = TypeSerializer()
        batch: list[dict[str, Any]] = []

        def put(record: Any, sk: str) -> None:
            attrs = {**to_attrs(record), PARTITION_KEY: run_pk(run_id), SORT_KEY: sk}
            batch.append({"PutRequest": {"Item": {k: ser.serialize(v)
                                                  for k, v in attrs.items()}}})
            if len(batch) == 25:
                self.ddb.batch_write_item(RequestItems={TABLE: batch})
                batch.clear()

        for index, status in enumerate(statuses):
            tries = 2 if index % 3 == 0 and not running else 1
            put(ItemRecord(run_id, index, status,  # type: ignore[arg-type]
                           params={"year": index}, command=["-y", str(index)],
                           attempts=tries, exit_code=None if running else
                           int(status == "FAILED")), item_sk(index))
            for n in range(1, tries + 1):
                last = n == tries
                outcome = status if last else "FAILED"
                put(AttemptRecord(
                    run_id, index, n, f"{run_id}-{index}-{n}", "token",
                    status=outcome if not running else "RUNNING",
                    task_arn=f"arn:aws:ecs:{REGION}:123456789012:task/c/{index:06d}{n}",
                    created_at="2026-12-04T10:00:00.000Z",
                    started_at="2026-12-04T10:00:01.000Z",
                    stopped_at=None if running else "2026-12-04T10:00:05.000Z",
                    exit_code=None if running else int(outcome == "FAILED"),
                    answered=not running), attempt_sk(index, n))
        if batch:
            self.ddb.batch_write_item(RequestItems={TABLE: batch})
        return run_id

    def execution_status(self, run_id: str) -> str:
        arn = self.machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
        return str(self.sfn.describe_execution(executionArn=arn)["status"])


def _create_table(ddb: Any) -> None:
    from fanout.schema import INDEXES, PARTITION_KEY, PROJECTIONS, SORT_KEY

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
            for name, (pk, sk) in INDEXES.items()])


def http_event(method: str, path: str, *, host: str = "dash.execute-api.us-east-1.amazonaws.com",
               query: str = "", headers: dict[str, str] | None = None,
               cookies: list[str] | None = None, body: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as the function receives one."""
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": {"host": host, "user-agent": "test", **(headers or {})},
        "requestContext": {"domainName": host, "http": {
            "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"}},
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if body is not None:
        event["body"] = body
    return event
