"""cdk-nag: the rule packs, and every acknowledged finding with its reason, in one place.

cdk-nag 3 names a wildcard finding by the resource it covers, rendered with the logical
ids of the tokens in it (``<RecordsTableC9B7A30B.Arn>/index/*``), so the ids below are
computed from the stack rather than written out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, App, CfnElement, Token, Validations
from aws_cdk import aws_ecs as ecs
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

from fanout.config import JobConfig
from fanout.job_settings import secret_source
from infra.jobs import COMPLETE_SECRET_ARN
from infra.secrets import SECRET_SUFFIX

if TYPE_CHECKING:
    from infra.stack import FanoutStack


#: Why each kind of finding is acceptable here.
REASONS = {
    "unscoped": "only actions AWS cannot scope to a resource (infra.stack.UNSCOPED_ACTIONS)",
    "indexes": "the functions query the table's own indexes (by_job, by_time, open_attempts)",
    "manifests": "the run's items manifests: one object per run under runs/",
    "results": "the Distributed Map's results (ResultWriter) under runs/<run>/results/, "
    "one prefix per run, named at run time",
    "inputs": "items_from objects a user puts under inputs/ of the manifest bucket",
    "outputs": "the items' outputs: each item writes under runs/<run>/outputs/<index>/, "
    "named at run time; a role shared by a job's runs cannot be narrowed to one run "
    "(docs/decisions/0017-outputs-grant.md)",
    "batches": "a packed task's batch attempt and its items' marks and results, under "
    "runs/<run>/tasks/<task>/, named at run time; a role shared by a job's runs cannot be "
    "narrowed to one run or task (docs/decisions/0021)",
    "families": "RunTask on any revision of this app's task definition families, "
    "conditioned on this cluster (ecs:cluster)",
    "tasks": "the tasks of this cluster only; task ids are not known before launch",
    "executions": "the Distributed Map's child executions of this state machine",
    "map_runs": "the map runs of this state machine",
    "runtime": "python3.12 is the runtime the public Powertools layer (python312-arm64) "
    "is built for; moving runtime means moving layer",
    "sync": "invoked synchronously by the state machine, which retries and catches its "
    "errors: no asynchronous event to dead-letter",
    "dlq_config": "asynchronous failures go to the dead-letter queue (DeadLetterConfig)",
    "is_dlq": "this queue is the dead-letter queue",
    "wake": "an invocation of the dispatcher carries nothing but a wake-up: a lost one is "
            "made good by the next Launch or by Reconcile, which wake it while items wait",
    "secret_suffix": "a secret named in the config: Secrets Manager ends its ARN with six "
    "random characters, matched by '-??????' (that secret only)",
    "job_policies": "the job's own permissions, as its config grants them "
    "(jobs.<name>.policies): what the job's program needs is the deployer's call",
    "dashboard_sync": "invoked synchronously by API Gateway, which answers the browser with "
    "the error: no asynchronous event to dead-letter",
    "dashboard_auth": "the app verifies the Cognito ID token itself on every request "
    "(fanout.ui.signin): API Gateway's JWT authorizer reads only the Authorization header, "
    "which a browser following links does not send (docs/decisions/0019)",
    "dashboard_executions": "stop and describe the executions of this stack's run and "
    "pipeline state machines only; an execution's name is its run or pipeline run id, made "
    "when it starts",
    "threat_protection": "Cognito's Plus plan (threat protection) is billed per monthly "
    "active user; the Lite plan keeps the dashboard at $0 for a team (MFA is required by "
    "default instead)",
    "pipeline_files": "a pipeline's fan-in objects: pipelines/<pipeline run>/<step>/, named "
    "when the pipeline runs (docs/decisions/0018-pipelines-on-aws.md)",
    "step_executions": "the executions of this stack's run state machine only: a pipeline's "
    "step is one, named <pipeline run>.<step> when it starts",
    "access_logs": "manifests are transient internal data written and read only by the "
    "control plane's roles; CloudTrail data events can audit it if wanted",
}


@dataclass(frozen=True)
class Ack:
    target: IConstruct
    rule: str
    reason: str


def attach(app: App) -> None:
    """Run the AwsSolutions and Serverless packs on the app; synth fails on any finding."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def _account_arn(stack: FanoutStack, service: str) -> str:
    """How cdk-nag renders ``arn:<partition>:<service>:<region>:<account>`` of this stack:
    a pseudo parameter where the stack leaves it open, else its value (a region-bound
    stack has its region written out)."""
    def part(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    partition = part(stack.partition, "Partition")
    region = part(stack.region, "Region")
    account = part(stack.account, "AccountId")
    return f"arn:{partition}:{service}:{region}:{account}"


def _lid(stack: FanoutStack, construct: IConstruct) -> str:
    element = construct.node.default_child
    assert isinstance(element, CfnElement)
    return stack.get_logical_id(element)


def acknowledgements(stack: FanoutStack) -> list[Ack]:
    """Every finding this stack accepts, on the construct it is about, with its reason."""
    iam5 = "AwsSolutions-IAM5"
    fns = stack.functions
    roles = fns.roles
    table = f"<{_lid(stack, stack.records.table)}.Arn>"
    bucket = f"<{_lid(stack, stack.records.bucket)}.Arn>"
    ecs = _account_arn(stack, "ecs")
    tasks = f"{ecs}:task/<{_lid(stack, stack.jobs.cluster)}>/*"
    machine_role = stack.workflow.state_machine.role
    machine = stack.workflow.state_machine_name
    states = _account_arn(stack, "states")
    acks: list[Ack] = []

    def ack(target: IConstruct, rule: str, reason: str) -> None:
        acks.append(Ack(target, rule, REASONS[reason]))

    for role in roles.values():
        ack(role, f"{iam5}[Resource::*]", "unscoped")
        ack(role, f"{iam5}[Resource::{table}/index/*]", "indexes")
    for name in ("launch", "dispatch", "record", "finalize", "reconcile", "abort"):
        ack(roles[name], f"{iam5}[Resource::{tasks}]", "tasks")
    for name in ("expand", "finalize", "abort"):
        ack(roles[name], f"{iam5}[Resource::{bucket}/runs/*]", "manifests")
    ack(roles["expand"], f"{iam5}[Resource::{bucket}/inputs/*]", "inputs")
    for name in ("expand", "decide"):
        ack(roles[name], f"{iam5}[Resource::{bucket}/pipelines/*]", "pipeline_files")
    for name in ("decide", "step_ended"):
        ack(roles[name], f"{iam5}[Resource::{states}:execution:{machine}:*]", "step_executions")
    ack(stack.pipelines.state_machine.role, f"{iam5}[Resource::*]", "unscoped")
    for made in stack.jobs.jobs.values():
        for task_definition in made.task_definitions:
            family = task_definition.family
            for name in ("launch", "dispatch"):
                ack(roles[name], f"{iam5}[Resource::{ecs}:task-definition/{family}:*]",
                    "families")
            ack(task_definition.task_role, f"{iam5}[Resource::{bucket}/runs/*/outputs/*]",
                "outputs")
            ack(task_definition.task_role, f"{iam5}[Resource::{bucket}/pipelines/*]",
                "pipeline_files")
            execution_role = task_definition.execution_role
            assert execution_role is not None
            ack(execution_role, f"{iam5}[Resource::*]", "unscoped")
        if made.packed is not None:
            ack(made.packed.task_role, f"{iam5}[Resource::{bucket}/runs/*/tasks/*/batch.json]",
                "batches")
            ack(made.packed.task_role, f"{iam5}[Resource::{bucket}/runs/*/tasks/*/items/*]",
                "batches")
    if any(made.packed is not None for made in stack.jobs.jobs.values()):
        ack(roles["dispatch"], f"{iam5}[Resource::{bucket}/runs/*/tasks/*/batch.json]",
            "batches")
        for name in ("record", "reconcile"):
            for pattern in ("batch.json", "items/*"):
                ack(roles[name], f"{iam5}[Resource::{bucket}/runs/*/tasks/*/{pattern}]",
                    "batches")
    ack(machine_role, f"{iam5}[Resource::*]", "unscoped")
    ack(machine_role, f"{iam5}[Resource::{bucket}/runs/*]", "manifests")
    ack(machine_role, f"{iam5}[Resource::{bucket}/runs/*/results/*]", "results")
    ack(machine_role, f"{iam5}[Resource::{states}:execution:{machine}/*]", "executions")
    ack(machine_role, f"{iam5}[Resource::{states}:mapRun:{machine}/*]", "map_runs")
    for name, function in fns.functions.items():
        ack(function, "AwsSolutions-L1", "runtime")
        ack(function, "Serverless-LambdaLatestVersion", "runtime")
        if name in ("expand", "launch", "finalize", "decide", "await_step"):
            ack(function, "Serverless-LambdaDLQ", "sync")
        elif name == "dispatch":
            ack(function, "Serverless-LambdaDLQ", "wake")
            ack(function, "Serverless-LambdaAsyncFailureDestination", "wake")
        else:
            ack(function, "Serverless-LambdaAsyncFailureDestination", "dlq_config")
    ack(fns.dead_letters, "Serverless-SQSRedrivePolicy", "is_dlq")
    if stack.notifications.dead_letters is not None:
        ack(stack.notifications.dead_letters, "Serverless-SQSRedrivePolicy", "is_dlq")
        ack(stack.notifications.dead_letters, "AwsSolutions-SQS3", "is_dlq")
    ack(stack.records.bucket, "AwsSolutions-S1", "access_logs")
    secrets = _account_arn(stack, "secretsmanager")
    for webhook in stack.config.notifications.webhooks:
        if not webhook.secret.startswith("arn:"):
            for name in ("finalize", "abort"):
                ack(roles[name], f"{iam5}[Resource::{secrets}:secret:{webhook.secret}"
                    f"{SECRET_SUFFIX}]", "secret_suffix")
    if stack.dashboard is not None:
        acks += _dashboard_acks(stack, table)
    for name, made in stack.jobs.jobs.items():
        for task_definition in made.task_definitions:
            acks += _job_acks(stack, task_definition, stack.config.jobs[name])
    return acks


def _dashboard_acks(stack: FanoutStack, table: str) -> list[Ack]:
    dash = stack.dashboard
    assert dash is not None
    executions = f"{_account_arn(stack, 'states')}:execution:{stack.workflow.state_machine_name}:*"
    pipelines = f"{_account_arn(stack, 'states')}:execution:{stack.pipelines.state_machine_name}:*"
    acks = [Ack(dash.function, rule, REASONS["runtime"])
            for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion")]
    acks += [Ack(dash.function, rule, REASONS["dashboard_sync"])
             for rule in ("Serverless-LambdaDLQ", "Serverless-LambdaAsyncFailureDestination")]
    for holder in (dash.role, dash.operator_policy):
        acks.append(Ack(holder, f"AwsSolutions-IAM5[Resource::{table}/index/*]",
                        REASONS["indexes"]))
        for names in (executions, pipelines):
            acks.append(Ack(holder, f"AwsSolutions-IAM5[Resource::{names}]",
                            REASONS["dashboard_executions"]))
    acks.append(Ack(dash.role, "AwsSolutions-IAM5[Resource::*]", REASONS["unscoped"]))
    acks.append(Ack(dash.api, "AwsSolutions-APIG4", REASONS["dashboard_auth"]))
    for rule in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
        acks.append(Ack(dash.user_pool, rule, REASONS["threat_protection"]))
    return acks


def _job_acks(stack: FanoutStack, task_definition: ecs.FargateTaskDefinition,
              job: JobConfig) -> list[Ack]:
    """A job's own settings: its secrets' names (read by the execution role), and what its
    config grants its task role (``policies``), as the config asks."""
    acks: list[Ack] = []
    secrets = _account_arn(stack, "secretsmanager")
    for source in job.secrets.values():
        service, reference, _ = secret_source(source)
        if service != "secretsmanager" or COMPLETE_SECRET_ARN.search(reference):
            continue
        arn = reference if reference.startswith("arn:") else f"{secrets}:secret:{reference}"
        assert task_definition.execution_role is not None
        acks.append(Ack(task_definition.execution_role,
                        f"AwsSolutions-IAM5[Resource::{arn}{SECRET_SUFFIX}]",
                        REASONS["secret_suffix"]))
    for policy in job.policies:
        if isinstance(policy, str):
            acks.append(Ack(task_definition.task_role, f"AwsSolutions-IAM4[Policy::{policy}]",
                            REASONS["job_policies"]))
            continue
        for key, kind in (("Action", "Action"), ("Resource", "Resource")):
            values = policy.get(key, [])
            for value in [values] if isinstance(values, str) else values:
                if "*" in value:
                    acks.append(Ack(task_definition.task_role,
                                    f"AwsSolutions-IAM5[{kind}::{value}]",
                                    REASONS["job_policies"]))
    return acks


def acknowledge(stack: FanoutStack) -> int:
    """Acknowledge every finding of :func:`acknowledgements`; their count."""
    acks = acknowledgements(stack)
    for a in acks:
        Validations.of(a.target).acknowledge(Acknowledgment(id=a.rule, reason=a.reason))
    return len(acks)
