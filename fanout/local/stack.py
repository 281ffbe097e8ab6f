"""Stand the synthesized stack's resources up on moto, from the template's own properties.

moto's CloudFormation cannot take a CDK template whole (``AWS::CDK::Metadata``; a state
machine made through it is not listed), so each resource the control plane touches is made
with the API call CloudFormation would make, and every logical id gets the physical name
or ARN its ``Ref`` / ``Fn::GetAtt`` tokens resolve to. What the stack holds only for AWS
(IAM, alarms, dashboards, flow logs, ECR) gets names but no emulation.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fanout.config import FanoutConfig
from fanout.local.events import Rule
from fanout.local.functions import Function
from fanout.local.moto.limits import LimitExceeded, check_lambda_environment
from fanout.local.tasks import TaskDefinition
from fanout.local.template import (
    PSEUDO_PARAMETERS,
    resolve,
    resources,
    run_state_machine,
    state_machine_definition,
)


class StackError(Exception):
    """The template does not hold what the local mode needs."""


@dataclass
class LocalStack:
    """The stack as it stands on moto: names, functions, task definitions, rules."""

    region: str
    account: str
    refs: dict[str, Any]
    functions: list[Function]
    task_definitions: dict[str, TaskDefinition]  # job name -> its task definition
    rules: list[Rule]
    state_machine_arn: str
    table: str
    bucket: str
    cluster_arn: str
    log_groups: dict[str, str] = field(default_factory=dict)  # job name -> log group


def _short(lid: str) -> str:
    return lid[:40]


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def physical_refs(template: Mapping[str, Any], stack: str, region: str,
                  account: str) -> dict[str, Any]:
    """What each logical id's ``Ref`` and ``Fn::GetAtt`` stand for on the emulated account."""
    refs: dict[str, Any] = {
        **PSEUDO_PARAMETERS, "AWS::Region": region, "AWS::AccountId": account,
        "AWS::StackName": stack,
    }
    arn = f"arn:aws:{{service}}:{region}:{account}:{{rest}}"

    def a(service: str, rest: str) -> str:
        return arn.format(service=service, rest=rest)

    for lid, res in template.get("Resources", {}).items():
        kind, props = res.get("Type", ""), res.get("Properties", {}) or {}

        def given(key: str, default: str, props: Mapping[str, Any] = props) -> str:
            value = props.get(key)
            try:
                return str(resolve(value, refs)) if value is not None else default
            except KeyError:
                return default

        # One branch a resource type, alike in shape on purpose: each names its resource
        # and its attributes as CloudFormation does for that type (Ref and Fn::GetAtt
        # differ from type to type), which a shared table would only hide.
        if kind in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            name = given("TableName", f"{stack}-{_short(lid)}-{_suffix()}")
            refs[lid] = name
            refs[f"{lid}.Arn"] = a("dynamodb", f"table/{name}")
            refs[f"{lid}.StreamArn"] = a("dynamodb", f"table/{name}/stream/local")
        elif kind == "AWS::S3::Bucket":
            default = re.sub(r"[^a-z0-9-]", "", f"{stack}-{lid}".lower())[:50] + "-" + _suffix()
            name = given("BucketName", default)
            refs[lid] = name
            refs[f"{lid}.Arn"] = f"arn:aws:s3:::{name}"
            refs[f"{lid}.DomainName"] = f"{name}.s3.amazonaws.com"
            refs[f"{lid}.RegionalDomainName"] = f"{name}.s3.{region}.amazonaws.com"
        elif kind == "AWS::SNS::Topic":
            name = given("TopicName", f"{stack}-{_short(lid)}-{_suffix()}")
            refs[lid] = a("sns", name)
            refs[f"{lid}.TopicArn"] = refs[lid]
            refs[f"{lid}.TopicName"] = name
        elif kind == "AWS::SQS::Queue":
            name = given("QueueName", f"{stack}-{_short(lid)}-{_suffix()}")
            refs[lid] = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
            refs[f"{lid}.Arn"] = a("sqs", name)
            refs[f"{lid}.QueueName"] = name
            refs[f"{lid}.QueueUrl"] = refs[lid]
        elif kind == "AWS::Logs::LogGroup":
            name = given("LogGroupName", f"/fanout/{stack}/{_short(lid)}-{_suffix()}")
            refs[lid] = name
            refs[f"{lid}.Arn"] = a("logs", f"log-group:{name}:*")
        elif kind == "AWS::ECS::Cluster":
            name = given("ClusterName", f"{stack}-{_short(lid)}-{_suffix()}")
            refs[lid] = name
            refs[f"{lid}.Arn"] = a("ecs", f"cluster/{name}")
        elif kind == "AWS::ECS::TaskDefinition":
            family = given("Family", f"{stack}{_short(lid)}")
            refs[lid] = a("ecs", f"task-definition/{family}:1")
            refs[f"{lid}.TaskDefinitionArn"] = refs[lid]
        elif kind == "AWS::Lambda::Function":
            name = given("FunctionName", f"{stack}-{_short(lid)}-{_suffix()}")[:64]
            refs[lid] = name
            refs[f"{lid}.Arn"] = a("lambda", f"function:{name}")
        elif kind == "AWS::StepFunctions::StateMachine":
            name = given("StateMachineName", f"{_short(lid)}-{_suffix()}")
            refs[lid] = a("states", f"stateMachine:{name}")
            refs[f"{lid}.Arn"] = refs[lid]
            refs[f"{lid}.Name"] = name
        elif kind == "AWS::IAM::Role":
            name = given("RoleName", f"{stack}-{_short(lid)}-{_suffix()}")
            refs[lid] = name
            refs[f"{lid}.Arn"] = f"arn:aws:iam::{account}:role/{name}"
            refs[f"{lid}.RoleId"] = f"AROA{_suffix().upper()}"
        elif kind == "AWS::EC2::VPC":
            refs[lid] = f"vpc-{_suffix()}"
            refs[f"{lid}.CidrBlock"] = "10.0.0.0/16"
            refs[f"{lid}.DefaultSecurityGroup"] = f"sg-{_suffix()}"
        elif kind == "AWS::EC2::Subnet":
            refs[lid] = f"subnet-{_suffix()}"
            refs[f"{lid}.SubnetId"] = refs[lid]
        elif kind == "AWS::EC2::SecurityGroup":
            refs[lid] = f"sg-{_suffix()}"
            refs[f"{lid}.GroupId"] = refs[lid]
        elif kind == "AWS::Events::Rule":
            name = given("Name", f"{stack}-{_short(lid)}-{_suffix()}")
            refs[lid] = name
            refs[f"{lid}.Arn"] = a("events", f"rule/{name}")
        elif kind == "AWS::ECR::Repository":
            name = given("RepositoryName", f"{stack.lower()}-{lid.lower()}")
            refs[lid] = name
            refs[f"{lid}.Arn"] = a("ecr", f"repository/{name}")
            refs[f"{lid}.RepositoryUri"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{name}"
        else:
            refs[lid] = f"{lid}-local"
            refs[f"{lid}.Arn"] = a(kind.split("::")[1].lower() if "::" in kind else "local", lid)
    return refs


def stand_up(template: Mapping[str, Any], config: FanoutConfig, *, region: str,
             account: str) -> LocalStack:
    """Create the resources on moto (inside ``mock_aws``) and describe what was made."""
    import boto3

    stack = config.stack_name
    refs = physical_refs(template, stack, region, account)

    def props(lid: str) -> dict[str, Any]:
        res = template["Resources"][lid]
        resolved: dict[str, Any] = resolve(res.get("Properties", {}) or {}, refs)
        return resolved

    ddb = boto3.client("dynamodb", region_name=region)
    tables = {**resources(template, "AWS::DynamoDB::Table"),
              **resources(template, "AWS::DynamoDB::GlobalTable")}
    if len(tables) != 1:
        raise StackError(f"expected one DynamoDB table in the template, found {len(tables)}")
    for lid in tables:
        p = props(lid)
        table_args: dict[str, Any] = {
            "TableName": refs[lid], "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"], "BillingMode": "PAY_PER_REQUEST",
        }
        indexes = [{k: g[k] for k in ("IndexName", "KeySchema", "Projection") if k in g}
                   for g in p.get("GlobalSecondaryIndexes", [])]
        if indexes:
            table_args["GlobalSecondaryIndexes"] = indexes
        ddb.create_table(**table_args)
    table = refs[next(iter(tables))]

    s3 = boto3.client("s3", region_name=region)
    buckets = list(resources(template, "AWS::S3::Bucket"))
    for lid in buckets:
        s3.create_bucket(Bucket=refs[lid])

    sns = boto3.client("sns", region_name=region)
    for lid in resources(template, "AWS::SNS::Topic"):
        sns.create_topic(Name=refs[f"{lid}.TopicName"])
    sqs = boto3.client("sqs", region_name=region)
    for lid in resources(template, "AWS::SQS::Queue"):
        sqs.create_queue(QueueName=refs[f"{lid}.QueueName"])
    logs = boto3.client("logs", region_name=region)
    for lid in resources(template, "AWS::Logs::LogGroup"):
        logs.create_log_group(logGroupName=refs[lid])

    clusters = list(resources(template, "AWS::ECS::Cluster"))
    if len(clusters) != 1:
        raise StackError(f"expected one ECS cluster in the template, found {len(clusters)}")
    cluster_arn = refs[f"{clusters[0]}.Arn"]

    functions = []
    for lid, _res in resources(template, "AWS::Lambda::Function").items():
        p = props(lid)
        handler = p.get("Handler", "")
        if not handler.startswith("lambdas."):
            continue  # CDK's own helper functions (custom resources), not the control plane's
        variables = {k: str(v) for k, v in
                     (p.get("Environment", {}).get("Variables", {}) or {}).items()}
        try:  # Lambda refuses to deploy a function whose environment is over 4 KB
            check_lambda_environment(refs[lid], variables)
        except LimitExceeded as exc:
            raise StackError(exc.message) from None
        functions.append(Function(
            logical_id=lid, name=refs[lid], arn=refs[f"{lid}.Arn"], handler=handler,
            environment=variables,
            memory_mb=int(p.get("MemorySize", 128)), timeout_seconds=int(p.get("Timeout", 3)),
        ))
    if not functions:
        raise StackError("no lambdas.* functions in the template")

    task_definitions = _task_definitions(template, config, refs, functions)

    try:  # the run's; the local mode runs a pipeline's loop in Python (fanout.local.pipeline)
        machine = run_state_machine(template)
    except (KeyError, StopIteration) as exc:
        raise StackError(f"no run state machine in the template ({exc})") from None
    definition = state_machine_definition(template, refs, machine)
    sfn = boto3.client("stepfunctions", region_name=region)
    machine_arn = sfn.create_state_machine(
        name=refs[f"{machine}.Name"], definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{account}:role/{stack}-local-states", type="STANDARD",
    )["stateMachineArn"]

    rules = []
    by_arn = {fn.arn: fn for fn in functions}
    for lid, _res in resources(template, "AWS::Events::Rule").items():
        p = props(lid)
        targets = tuple(t["Arn"] for t in p.get("Targets", []) if t.get("Arn") in by_arn)
        rules.append(Rule(
            name=refs[lid], targets=targets, pattern=p.get("EventPattern"),
            schedule=p.get("ScheduleExpression"), enabled=p.get("State", "ENABLED") == "ENABLED",
        ))
    return LocalStack(
        region=region, account=account, refs=refs, functions=functions,
        task_definitions=task_definitions, rules=rules, state_machine_arn=machine_arn,
        table=table, bucket=refs[buckets[0]] if buckets else "", cluster_arn=cluster_arn,
        log_groups={job: td.log_group or "" for job, td in task_definitions.items()},
    )


def _task_definitions(template: Mapping[str, Any], config: FanoutConfig, refs: dict[str, Any],
                      functions: list[Function]) -> dict[str, TaskDefinition]:
    """Job name -> task definition, through the launch function's ``FANOUT_TASK_DEFINITIONS``."""
    launch = next((fn for fn in functions if fn.kind == "launch"), None)
    if launch is None or "FANOUT_TASK_DEFINITIONS" not in launch.environment:
        raise StackError("the launch function has no FANOUT_TASK_DEFINITIONS")
    by_job: dict[str, Any] = json.loads(launch.environment["FANOUT_TASK_DEFINITIONS"])
    by_arn = {refs[lid]: lid for lid in resources(template, "AWS::ECS::TaskDefinition")}
    out: dict[str, TaskDefinition] = {}
    for job, runtime in by_job.items():
        arn = runtime["task_definition"]
        lid = by_arn.get(arn)
        if lid is None:
            raise StackError(f"job {job}: task definition {arn} is not in the template")
        p: dict[str, Any] = resolve(template["Resources"][lid].get("Properties", {}), refs)
        containers = p.get("ContainerDefinitions", [])
        container = next((c for c in containers if c.get("Name") == runtime["container"]),
                         containers[0] if containers else {})
        options = (container.get("LogConfiguration") or {}).get("Options", {})
        job_config = config.jobs.get(job)
        out[job] = TaskDefinition(
            arn=arn,
            family=str(p.get("Family", arn.rsplit("/", 1)[-1].split(":")[0])),
            container=str(container.get("Name", runtime["container"])),
            local_command=list(job_config.local_command) if job_config else [],
            environment={e["Name"]: str(e["Value"]) for e in container.get("Environment", [])},
            log_group=options.get("awslogs-group"),
            stream_prefix=options.get("awslogs-stream-prefix"),
            image=str(container.get("Image", "")),
            cpu=str(p.get("Cpu", "256")),
            memory=str(p.get("Memory", "512")),
        )
    return out
