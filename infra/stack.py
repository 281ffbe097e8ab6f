"""The fanout stack: composes the constructs, makes the grants between them, adds outputs."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnOutput, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from fanout.config import FanoutConfig
from fanout.errors import ConfigError, Problem
from fanout.names import output_id
from fanout.outputs import bucket_root
from infra.dashboard import Dashboard
from infra.events import Events
from infra.functions import Functions, abort_name, dispatcher_name
from infra.jobs import Jobs
from infra.monitoring import Monitoring, Notifications
from infra.network import Network
from infra.packed import AGENT
from infra.pipelines import PipelineWorkflow, pipeline_machine_name
from infra.powertools import Powertools
from infra.records import Records
from infra.schedules import Schedules
from infra.secrets import secret_arn
from infra.workflow import Workflow

#: Actions AWS does not scope to a resource (Resource "*"); nothing else gets "*".
#: The infra tests check every "*" in the template against this list.
UNSCOPED_ACTIONS: dict[str, str] = {
    "states:SendTaskSuccess": "task tokens are not resources: SendTask* takes no resource ARN",
    "states:SendTaskFailure": "task tokens are not resources: SendTask* takes no resource ARN",
    "states:SendTaskHeartbeat": "task tokens are not resources: SendTask* takes no resource ARN",
    "xray:PutTraceSegments": "X-Ray tracing APIs support no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray tracing APIs support no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray tracing APIs support no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray tracing APIs support no resource-level permissions",
    "logs:CreateLogDelivery": "Step Functions log delivery APIs take no resource ARN",
    "logs:GetLogDelivery": "Step Functions log delivery APIs take no resource ARN",
    "logs:UpdateLogDelivery": "Step Functions log delivery APIs take no resource ARN",
    "logs:DeleteLogDelivery": "Step Functions log delivery APIs take no resource ARN",
    "logs:ListLogDeliveries": "Step Functions log delivery APIs take no resource ARN",
    "logs:PutResourcePolicy": "Step Functions log delivery APIs take no resource ARN",
    "logs:DescribeResourcePolicies": "Step Functions log delivery APIs take no resource ARN",
    "logs:DescribeLogGroups": "Step Functions log delivery APIs take no resource ARN",
    "ecr:GetAuthorizationToken": "ECR's registry login takes no resource ARN",
    "ecs:ListTasks": "ListTasks takes no task resource; the statement is conditioned on "
    "this cluster (ecs:cluster)",
}

#: Key patterns in the manifest bucket: manifests Expand writes, items_from inputs it reads.
MANIFESTS = "runs/*"
INPUTS = "inputs/*"
#: ... and the items' outputs (fanout.outputs: ``runs/<run_id>/outputs/<index>/``).
OUTPUTS = "runs/*/outputs/*"
#: ... and a packed task's batch attempt and its items' marks and results (docs/decisions/
#: 0020, 0021): ``runs/<run_id>/tasks/<key>/batch.json``, ``.../items/<index>.json``.
BATCHES = "runs/*/tasks/*/batch.json"
ITEM_RESULTS = "runs/*/tasks/*/items/*"
#: ... and the pipelines' fan-in objects (fanout.runtime.fanin: ``pipelines/<id>/<step>/``).
PIPELINE_FILES = "pipelines/*"

SEND_TASK = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]


#: The retention periods CloudWatch Logs offers, in days.
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """CloudWatch's retention for ``days``; any other number fails the synth, named."""
    if days not in RETENTION_DAYS:
        raise ConfigError([Problem(
            "fanout.limits.log_retention_days",
            f"{days} is not a CloudWatch Logs retention (one of {sorted(RETENTION_DAYS)})",
        )])
    return RETENTION_DAYS[days]


class FanoutStack(Stack):
    """Everything one deployment of fanout is made of."""

    def __init__(self, scope: Construct, id: str, *, config: FanoutConfig, **kwargs: Any) -> None:
        if config.region:
            # Bound to its region (any account): the layer is chosen at synth.
            kwargs.setdefault("env", Environment(region=config.region))
        super().__init__(scope, id, **kwargs)
        self.config = config
        limits = config.limits
        retention = log_retention(limits.log_retention_days)

        self.network = Network(self, "Network", config=config.network, log_retention=retention)
        self.jobs = Jobs(
            self, "Jobs", jobs=dict(config.jobs), vpc=self.network.vpc, log_retention=retention
        )
        self.records = Records(self, "Records", limits=limits)
        self.notifications = Notifications(self, "Notifications", email=config.notifications.email)
        self.powertools = Powertools(self, "Powertools", config=config.powertools)
        self.functions = Functions(
            self,
            "Functions",
            envs=self._function_envs(),
            powertools=self.powertools.layer,
            log_retention=retention,
            dispatcher_reserved=config.launch_gate.reserved_concurrency,
        )
        fns = self.functions.functions
        self.workflow = Workflow(
            self,
            "Workflow",
            expand=fns["expand"],
            launch=fns["launch"],
            finalize=fns["finalize"],
            manifests=self.records.bucket,
            log_retention=retention,
            run_timeout_hours=config.limits.run_timeout_hours,
        )
        machine_arn = self.workflow.state_machine.state_machine_arn
        self.pipelines = PipelineWorkflow(
            self, "Pipelines", decide=fns["decide"], await_step=fns["await_step"],
            log_retention=retention,
        )
        self.events = Events(
            self,
            "Events",
            cluster_arn=self.jobs.cluster.cluster_arn,
            state_machine_arn=machine_arn,
            record=fns["record"],
            abort=fns["abort"],
            reconcile=fns["reconcile"],
            step_ended=fns["step_ended"],
            pipeline_machine_arn=self.pipelines.state_machine.state_machine_arn,
            dead_letters=self.functions.dead_letters,
            reconcile_every_minutes=limits.reconcile_every_minutes,
        )
        self.schedules = Schedules(
            self, "Schedules", schedules=list(config.schedules), state_machine_arn=machine_arn,
            pipeline_machine_arn=self.pipelines.state_machine.state_machine_arn,
            pipelines=dict(config.pipelines),
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=self.workflow.state_machine,
            dead_letters=self.functions.dead_letters,
            topic=self.notifications.topic,
        )
        self.dashboard = self._dashboard(retention) if config.dashboard.enabled else None
        self._grant()
        self._outputs()

    def _dashboard(self, retention: logs.RetentionDays) -> Dashboard:
        return Dashboard(
            self, "Dashboard", config=self.config, context=self.config.model_dump(mode="json"),
            table=self.records.table,
            state_machine_arn=self.workflow.state_machine.state_machine_arn,
            state_machine_name=self.workflow.state_machine_name,
            pipeline_machine_arn=self.pipelines.state_machine.state_machine_arn,
            pipeline_machine_name=self.pipelines.state_machine_name,
            job_log_groups={n: made.log_group for n, made in self.jobs.jobs.items()},
            powertools=self.powertools.layer, log_retention=retention)

    def _function_envs(self) -> dict[str, dict[str, str]]:
        table = self.records.table.table_name
        cluster = self.jobs.cluster.cluster_arn
        jobs = {name: job.model_dump(mode="json") for name, job in self.config.jobs.items()}
        # A job that packs has its ``-packed`` task definition too: the dispatcher starts it
        # with the agent's FANOUT_BATCH (docs/decisions/0021).
        task_definitions = {
            name: {"task_definition": made.task_definition.task_definition_arn,
                   "container": made.container.container_name,
                   **({"packed_task_definition": made.packed.task_definition_arn,
                       "agent_container": AGENT} if made.packed is not None else {})}
            for name, made in self.jobs.jobs.items()
        }
        common = {"FANOUT_TABLE": table, "FANOUT_CLUSTER": cluster}
        # Every item writes under its own prefix of the manifest bucket (fanout.outputs).
        outputs = bucket_root(self.records.bucket.bucket_name)
        dispatcher = dispatcher_name(self)
        # Finalize and Abort price the runs they announce (docs/cost.md).
        prices = self.to_json_string(self.config.cost.prices)
        # Record and Reconcile settle stopped tasks, a failed one with its log's last lines.
        settling = {**common, "FANOUT_DISPATCHER": dispatcher, "FANOUT_OUTPUTS": outputs,
                    "FANOUT_LOG_GROUPS": self.to_json_string(
                        {made.container.container_name: made.log_group.log_group_name
                         for made in self.jobs.jobs.values()})}
        launch = {
            **common,
            "FANOUT_TASK_DEFINITIONS": self.to_json_string(task_definitions),
            "FANOUT_SUBNETS": ",".join(self.network.subnet_ids),
            "FANOUT_SECURITY_GROUPS": self.network.security_group.security_group_id,
            "FANOUT_ASSIGN_PUBLIC_IP": (
                "ENABLED" if self.network.assign_public_ip else "DISABLED"
            ),
            "FANOUT_DISPATCHER": dispatcher,
            "FANOUT_OUTPUTS": outputs,
        }
        limits = self.to_json_string(self.config.limits.model_dump(mode="json"))
        # The webhooks' kinds and secrets (never a URL: that is the secret's value).
        webhooks = json.dumps([w.model_dump(mode="json")
                               for w in self.config.notifications.webhooks])
        run_machine = self._run_machine_arn()
        return {
            "decide": {
                "FANOUT_TABLE": table,
                "FANOUT_BUCKET": self.records.bucket.bucket_name,
                "FANOUT_JOBS": self.to_json_string(jobs),
                "FANOUT_LIMITS": limits,
                "FANOUT_RUN_MACHINE": run_machine,
                "FANOUT_PIPELINES": json.dumps(dict(self.config.pipelines),
                                               separators=(",", ":")),
            },
            "await_step": {"FANOUT_TABLE": table},
            "step_ended": {"FANOUT_TABLE": table, "FANOUT_RUN_MACHINE": run_machine,
                           "FANOUT_PIPELINE_MACHINE": pipeline_machine_name(self)},
            "expand": {
                "FANOUT_TABLE": table,
                "FANOUT_BUCKET": self.records.bucket.bucket_name,
                "FANOUT_JOBS": self.to_json_string(jobs),
                "FANOUT_LIMITS": limits,
            },
            "launch": launch,
            "dispatch": {
                **launch,
                "FANOUT_LAUNCH_GATE": self.to_json_string(
                    self.config.launch_gate.model_dump(
                        mode="json", exclude={"reserved_concurrency"})),
                "FANOUT_MAX_RUNNING": self.to_json_string(
                    {name: job.max_running for name, job in self.config.jobs.items()
                     if job.max_running is not None}),
            },
            "record": settling,
            "finalize": {**common, "FANOUT_TOPIC_ARN": self.notifications.topic.topic_arn,
                         "FANOUT_BUCKET": self.records.bucket.bucket_name,
                         "FANOUT_COST_PRICES": prices, "FANOUT_WEBHOOKS": webhooks},
            "reconcile": settling,
            "abort": {**common, "FANOUT_TOPIC_ARN": self.notifications.topic.topic_arn,
                      "FANOUT_BUCKET": self.records.bucket.bucket_name,
                      "FANOUT_COST_PRICES": prices, "FANOUT_LIMITS": limits,
                      "FANOUT_WEBHOOKS": webhooks},
        }

    def _run_machine_arn(self) -> str:
        """The run state machine's ARN by its fixed name (Workflow's): the pipeline
        functions start and stop its executions."""
        return self.format_arn(service="states", resource="stateMachine",
                               resource_name=f"{self.stack_name}-run",
                               arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def _grant_pipelines(self) -> None:
        """Decide starts steps' runs (executions of the run state machine, nothing else),
        reads them when an event was lost, writes the fan-in objects under ``pipelines/``
        and reads the items' outputs; StepEnded stops a stopped pipeline's steps; both,
        and AwaitStep, answer the pipeline loop's token."""
        roles = self.functions.roles
        bucket = self.records.bucket
        run_executions = self.format_arn(
            service="states", resource="execution", resource_name=f"{self.stack_name}-run:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        roles["decide"].add_to_policy(iam.PolicyStatement(
            sid="StartStepRuns", actions=["states:StartExecution"],
            resources=[self._run_machine_arn()]))
        roles["decide"].add_to_policy(iam.PolicyStatement(
            sid="ReadStepRuns", actions=["states:DescribeExecution", "states:StopExecution"],
            resources=[run_executions]))
        roles["step_ended"].add_to_policy(iam.PolicyStatement(
            sid="StopStepRuns", actions=["states:StopExecution"], resources=[run_executions]))
        roles["decide"].add_to_policy(iam.PolicyStatement(
            sid="WriteFanIn",
            actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            resources=[bucket.arn_for_objects(PIPELINE_FILES)]))
        roles["decide"].add_to_policy(iam.PolicyStatement(
            sid="ListItemOutputs", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [OUTPUTS]}}))
        for name in ("decide", "await_step", "step_ended"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="AnswerPipelineToken", actions=SEND_TASK, resources=["*"]))
        # A step's run reads its items from a step before it; its tasks, the inputs
        # manifest and the outputs it names.
        roles["expand"].add_to_policy(iam.PolicyStatement(
            sid="ReadStepItems", actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(PIPELINE_FILES)]))
        for made in self.jobs.jobs.values():
            for task_definition in made.task_definitions:
                task_definition.add_to_task_role_policy(iam.PolicyStatement(
                    sid="ReadStepInputs", actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(PIPELINE_FILES),
                               bucket.arn_for_objects(OUTPUTS)]))

    def _grant(self) -> None:
        self._grant_pipelines()
        roles = self.functions.roles
        table = self.records.table
        bucket = self.records.bucket
        cluster = self.jobs.cluster
        for role in roles.values():
            table.grant_read_write_data(role)
        # Expand writes manifests (multipart) and reads items_from objects put under inputs/.
        roles["expand"].add_to_policy(iam.PolicyStatement(
            sid="WriteManifests",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[bucket.arn_for_objects(MANIFESTS)],
        ))
        roles["expand"].add_to_policy(iam.PolicyStatement(
            sid="ReadItems",
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(MANIFESTS), bucket.arn_for_objects(INPUTS)],
        ))
        # Finalize and Abort read the manifest (only) to record never-launched items with
        # their params.
        for name in ("finalize", "abort"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="ReadManifests",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(MANIFESTS)],
            ))
        # Finalize announces the runs it closes, Abort every other ending.
        # Not topic.grant_publish: it grants kms:GenerateDataKey*, and a publisher needs
        # exactly these two of the topic's key (SNS developer guide, publishing to an
        # encrypted topic).
        for name in ("finalize", "abort"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="PublishRunSummaries",
                actions=["sns:Publish"],
                resources=[self.notifications.topic.topic_arn],
            ))
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="EncryptRunSummaries",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.notifications.key.key_arn],
            ))
        # Finalize and Abort read the webhooks' URLs, from exactly their secrets.
        webhook_secrets = sorted({secret_arn(self, w.secret)
                                  for w in self.config.notifications.webhooks})
        if webhook_secrets:
            for name in ("finalize", "abort"):
                roles[name].add_to_policy(iam.PolicyStatement(
                    sid="ReadWebhookUrls",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=webhook_secrets,
                ))
        # Each job's tasks write their items' outputs, and nothing else of the bucket; no
        # IAM condition can tell one run's task from another's under a role shared by the
        # job's runs (docs/decisions/0017-outputs-grant.md). Record and Reconcile list what
        # an ending item wrote.
        for made in self.jobs.jobs.values():
            for task_definition in made.task_definitions:
                task_definition.add_to_task_role_policy(iam.PolicyStatement(
                    sid="WriteItemOutputs",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[bucket.arn_for_objects(OUTPUTS)],
                ))
            # A packed task's agent reads its batch attempt and writes its items' marks and
            # results beside it (docs/decisions/0021), nothing else of the bucket.
            if made.packed is not None:
                made.packed.add_to_task_role_policy(iam.PolicyStatement(
                    sid="ReadBatches", actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(BATCHES)],
                ))
                made.packed.add_to_task_role_policy(iam.PolicyStatement(
                    sid="WriteItemResults", actions=["s3:PutObject"],
                    resources=[bucket.arn_for_objects(ITEM_RESULTS)],
                ))
        packing = any(made.packed is not None for made in self.jobs.jobs.values())
        for name in ("record", "reconcile"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="ListItemOutputs",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                # ... and the marks and results under a packed task's items/ (listed too).
                conditions={"StringLike": {"s3:prefix": [OUTPUTS] + (
                    [ITEM_RESULTS] if packing else [])}},
            ))
        # The dispatcher writes a packed task's batch attempt; Record and Reconcile read it
        # and its items' marks and results when the task stops (docs/decisions/0020, 0021).
        if packing:
            roles["dispatch"].add_to_policy(iam.PolicyStatement(
                sid="WriteBatches", actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(BATCHES)],
            ))
            for name in ("record", "reconcile"):
                roles[name].add_to_policy(iam.PolicyStatement(
                    sid="ReadBatches", actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(BATCHES),
                               bucket.arn_for_objects(ITEM_RESULTS)],
                ))
        # Record and Reconcile read the end of a failed attempt's log (its last words), in the
        # jobs' log groups only.
        for made in self.jobs.jobs.values():
            for settler in ("record", "reconcile"):
                made.log_group.grant(roles[settler], "logs:GetLogEvents")

        tasks_of_cluster = self.format_arn(
            service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*"
        )
        on_cluster = {"ArnEquals": {"ecs:cluster": cluster.cluster_arn}}
        families = [
            self.format_arn(
                service="ecs",
                resource="task-definition",
                resource_name=f"{task_definition.family}:*",
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )
            for made in self.jobs.jobs.values()
            for task_definition in made.task_definitions
        ]
        pass_roles = [
            role.role_arn
            for made in self.jobs.jobs.values()
            for task_definition in made.task_definitions
            for role in (task_definition.task_role, task_definition.execution_role)
            if role is not None
        ]
        # The dispatcher starts queued attempts; Launch adopts or restarts one whose launch
        # died (docs/decisions/0002).
        for name in ("launch", "dispatch"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="RunJobTasks", actions=["ecs:RunTask"], resources=families,
                conditions=on_cluster,
            ))
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="TagTasksAtLaunch",
                actions=["ecs:TagResource"],
                resources=[tasks_of_cluster],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            ))
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="PassTaskRoles",
                actions=["iam:PassRole"],
                resources=pass_roles,
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            ))
        dispatcher = self.format_arn(
            service="lambda", resource="function", resource_name=dispatcher_name(self),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for name in ("launch", "dispatch", "record", "reconcile"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="WakeDispatcher", actions=["lambda:InvokeFunction"], resources=[dispatcher]
            ))
        # Abort hands a large run's closing on to its own next invocation.
        roles["abort"].add_to_policy(iam.PolicyStatement(
            sid="ContinueClosing", actions=["lambda:InvokeFunction"],
            resources=[self.format_arn(service="lambda", resource="function",
                                       resource_name=abort_name(self),
                                       arn_format=ArnFormat.COLON_RESOURCE_NAME)],
        ))
        for name in ("launch", "dispatch", "record", "reconcile", "abort"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="AnswerTaskTokens", actions=SEND_TASK, resources=["*"]
            ))
        for name in ("launch", "dispatch", "record", "finalize", "reconcile", "abort"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="ReadTasks",
                actions=["ecs:DescribeTasks"],
                resources=[tasks_of_cluster],
                conditions=on_cluster,
            ))
        # Launch (after a crash) and the dispatcher find a task by its tags among this
        # cluster's; Abort and Reconcile find the running tasks that nothing waits for.
        for name in ("launch", "dispatch", "reconcile", "abort"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="ListTasks", actions=["ecs:ListTasks"], resources=["*"],
                conditions=on_cluster,
            ))
        # Finalize stops what is left of a failed run; Reconcile, tasks past their timeout
        # and tasks nothing waits for; Abort, a stopped run's; Launch, a task it started
        # for a run stopped while RunTask was in flight.
        for name in ("launch", "finalize", "reconcile", "abort"):
            roles[name].add_to_policy(iam.PolicyStatement(
                sid="StopTasks",
                actions=["ecs:StopTask"],
                resources=[tasks_of_cluster],
                conditions=on_cluster,
            ))

    def _outputs(self) -> None:
        machine = self.workflow.state_machine
        CfnOutput(self, "StateMachineArn", value=machine.state_machine_arn,
                  description="start runs here (fanout start, the console, schedules)")
        CfnOutput(self, "StateMachineConsole", value=self.workflow.console_url,
                  description="the state machine in the AWS console")
        CfnOutput(self, "PipelineStateMachineArn",
                  value=self.pipelines.state_machine.state_machine_arn,
                  description="start pipelines here (fanout start PIPELINE.json, the console)")
        CfnOutput(self, "RecordsTable", value=self.records.table.table_name)
        CfnOutput(self, "ManifestBucket", value=self.records.bucket.bucket_name)
        CfnOutput(self, "Cluster", value=self.jobs.cluster.cluster_name)
        if self.dashboard is not None:
            CfnOutput(self, "DashboardUrl", value=f"{self.dashboard.url}/",
                      description="the team dashboard (sign in with the user pool below)")
            CfnOutput(self, "DashboardUserPool", value=self.dashboard.user_pool.user_pool_id,
                      description="the dashboard's users: groups viewers and operators")
            CfnOutput(self, "OperatorPolicy",
                      value=self.dashboard.operator_policy.managed_policy_arn,
                      description="attach to CLI users who start, stop and rerun runs")
        registry = f"{Aws.ACCOUNT_ID}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}"
        for name, made in self.jobs.jobs.items():
            job = self.config.jobs[name]
            uri = made.repository.repository_uri
            platform = "linux/arm64" if job.architecture == "ARM64" else "linux/amd64"
            CfnOutput(self, f"Repository{output_id(name)}", value=uri,
                      description=f"ECR repository of job {name}")
            CfnOutput(self, f"Logs{output_id(name)}", value=made.log_group.log_group_name,
                      description=f"log group of job {name}'s tasks (fanout logs)")
            CfnOutput(
                self,
                f"Push{output_id(name)}",
                description=f"build and push the image of job {name} (run in its folder)",
                value=(
                    f"aws ecr get-login-password --region {Aws.REGION} | docker login "
                    f"--username AWS --password-stdin {registry} && "
                    f"docker build --platform {platform} -t {uri}:{job.image_tag} . && "
                    f"docker push {uri}:{job.image_tag}"
                ),
            )
