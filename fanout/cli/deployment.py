"""The deployed stack, found by name through its CloudFormation outputs.

Credentials, ``--region`` and ``AWS_ENDPOINT_URL`` are boto3's. Records are read with
:class:`fanout.records.dynamo.DynamoRecords`, the store the Lambdas write.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.cli.args import load_config_path
from fanout.errors import Problem, UsageError

if TYPE_CHECKING:
    from fanout.records.dynamo import DynamoRecords
    from fanout.records.model import RunRecord


@dataclass
class Deployment:
    stack: str
    region: str
    outputs: dict[str, str]
    session: Any

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region)

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise UsageError([Problem("--stack", f"stack {self.stack} has no output {key} "
                                                 "(deployed by an older fanout?)")])
        return self.outputs[key]

    def records(self) -> DynamoRecords:
        from fanout.records.dynamo import DynamoRecords

        return DynamoRecords(self.output("RecordsTable"), self.client("dynamodb"))


def stack_name(args: argparse.Namespace) -> str:
    if args.stack:
        return str(args.stack)
    if not Path(args.config).exists():
        raise UsageError([Problem("--stack", f"give --stack, or a config ({args.config} "
                                             "is not there)")])
    return load_config_path(args.config).stack_name


def deployment(args: argparse.Namespace) -> Deployment:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    name = stack_name(args)
    session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
    region = session.region_name
    if not region:
        raise UsageError([Problem("--region", "no AWS region: give --region or set "
                                              "AWS_REGION / AWS_DEFAULT_REGION")])
    try:
        got = session.client("cloudformation", region_name=region).describe_stacks(
            StackName=name)
    except NoCredentialsError:
        raise UsageError([Problem("credentials", "no AWS credentials found (the standard "
                                                 "chain: env, profile, SSO, role)")]) from None
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if "does not exist" in message:
            raise UsageError([Problem("--stack", f"no stack {name!r} in {region}")]) from None
        raise UsageError([Problem("--stack", f"cannot read stack {name!r}: {message}")]) \
            from None
    except BotoCoreError as exc:
        raise UsageError([Problem("--stack", f"cannot reach AWS: {exc}")]) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in got["Stacks"][0].get("Outputs", [])}
    return Deployment(name, region, outputs, session)


def get_run(deploy: Deployment, run_id: str) -> RunRecord:
    run = deploy.records().get_run(run_id)
    if run is None:
        raise UsageError([Problem("RUN", f"no run {run_id!r} in stack {deploy.stack}")])
    return run

