"""The Fargate cluster and, per job, its ECR repository and task definition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from fanout.config import JobConfig
from fanout.job_settings import VolumeConfig, secret_source
from fanout.schema import LOG_STREAM_PREFIX
from infra.packed import RUNNER_ARGS, RUNNER_PATH, add_packed_containers, inject, packs

#: The repository: the packed task's images are built from it (infra/packed.py).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: A complete secret ARN ends with the six random characters Secrets Manager adds.
COMPLETE_SECRET_ARN = re.compile(r"-[A-Za-z0-9]{6}$")


@dataclass(frozen=True)
class JobResources:
    """What the stack made for one job."""

    name: str
    repository: ecr.Repository
    task_definition: ecs.FargateTaskDefinition
    container: ecs.ContainerDefinition
    log_group: logs.LogGroup
    #: ``<job>-packed``: the same task with the runner injected (docs/decisions/0021);
    #: None when the job does not pack (``packable`` false or no ``entrypoint``).
    packed: ecs.FargateTaskDefinition | None = None

    @property
    def task_definitions(self) -> list[ecs.FargateTaskDefinition]:
        """The job's task definitions: its own, and its packed one if it has one."""
        return [self.task_definition] + ([self.packed] if self.packed else [])


class Jobs(Construct):
    """A Fargate-only cluster (FARGATE and FARGATE_SPOT) and every job's image and task."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        jobs: dict[str, JobConfig],
        vpc: ec2.IVpc,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            enable_fargate_capacity_providers=True,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        prefix = Stack.of(self).stack_name.lower()
        self.jobs: dict[str, JobResources] = {}
        for name, job in jobs.items():
            self.jobs[name] = self._job(name, job, prefix, log_retention)

    def _job(
        self, name: str, job: JobConfig, prefix: str, log_retention: logs.RetentionDays
    ) -> JobResources:
        scope = Construct(self, f"Job-{name}")
        repository = ecr.Repository(
            scope,
            "Repository",
            repository_name=f"{prefix}/{name}",
            image_scan_on_push=True,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"keep the last {job.keep_images} images",
                    max_image_count=job.keep_images,
                )
            ],
        )
        log_group = logs.LogGroup(
            scope, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        task_definition, container = self._task(scope, "TaskDefinition", f"{prefix}-{name}",
                                                 name, job, repository, log_group)
        packed = None
        if packs(job):
            packed = self._task(scope, "PackedTaskDefinition", f"{prefix}-{name}-packed",
                                name, job, repository, log_group, packed=True)[0]
        return JobResources(name, repository, task_definition, container, log_group, packed)

    def _task(
        self, scope: Construct, id: str, family: str, name: str, job: JobConfig,
        repository: ecr.Repository, log_group: logs.LogGroup, *, packed: bool = False,
    ) -> tuple[ecs.FargateTaskDefinition, ecs.ContainerDefinition]:
        """The job's task definition; ``packed``: with the runner injected and the agent
        beside it (infra/packed.py), all else the same."""
        task_definition = ecs.FargateTaskDefinition(
            scope,
            id,
            family=family,
            cpu=job.cpu,
            memory_limit_mib=job.memory,
            ephemeral_storage_gib=job.ephemeral_storage_gib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=(
                    ecs.CpuArchitecture.ARM64
                    if job.architecture == "ARM64"
                    else ecs.CpuArchitecture.X86_64
                ),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        logging = ecs.LogDrivers.aws_logs(stream_prefix=LOG_STREAM_PREFIX, log_group=log_group)
        runner = (add_packed_containers(task_definition, job, repo_root=str(REPO_ROOT),
                                        logging=logging) if packed else None)
        container = task_definition.add_container(
            name,
            container_name=name,
            # Pinned by digest when the config gives one (docs/decisions/
            # 0015-image-digest-secrets-chat.md): `repository@sha256:...`, else the tag.
            image=ecs.ContainerImage.from_ecr_repository(
                repository, job.image_digest or job.image_tag),
            # Container-level memory: what the container may use (and what moto needs).
            memory_limit_mib=job.memory,
            # Handed over by ECS at start; the execution role may read exactly these.
            secrets={variable: self._secret(task_definition, variable, source)
                     for variable, source in job.secrets.items()},
            logging=logging,
            # Packed: the injected runner, told where the agent lays the batch out.
            entry_point=[RUNNER_PATH] if packed else None,
            command=RUNNER_ARGS if packed else None,
        )
        if runner is not None:
            inject(container, runner)
        for n, volume in enumerate(job.volumes):
            self._mount(task_definition, container, f"efs-{n}", volume)
        for n, policy in enumerate(job.policies):
            if isinstance(policy, str):
                task_definition.task_role.add_managed_policy(
                    iam.ManagedPolicy.from_managed_policy_arn(task_definition, f"Policy{n}",
                                                              policy))
            else:
                task_definition.add_to_task_role_policy(iam.PolicyStatement.from_json(policy))
        return task_definition, container

    @staticmethod
    def _secret(scope: Construct, variable: str, source: str) -> ecs.Secret:
        service, reference, key = secret_source(source)
        if service == "ssm":
            parameter = (
                ssm.StringParameter.from_string_parameter_arn(
                    scope, f"Parameter-{variable}", reference)
                if reference.startswith("arn:") else
                ssm.StringParameter.from_secure_string_parameter_attributes(
                    scope, f"Parameter-{variable}", parameter_name=reference))
            return ecs.Secret.from_ssm_parameter(parameter)
        if not reference.startswith("arn:"):
            secret = secretsmanager.Secret.from_secret_name_v2(
                scope, f"Secret-{variable}", reference)
        elif COMPLETE_SECRET_ARN.search(reference):
            secret = secretsmanager.Secret.from_secret_complete_arn(
                scope, f"Secret-{variable}", reference)
        else:
            secret = secretsmanager.Secret.from_secret_partial_arn(
                scope, f"Secret-{variable}", reference)
        return ecs.Secret.from_secrets_manager(secret, key)

    @staticmethod
    def _mount(task_definition: ecs.FargateTaskDefinition, container: ecs.ContainerDefinition,
               name: str, volume: VolumeConfig) -> None:
        """Mount an EFS volume, encrypted in transit and authorized by the task role."""
        stack = Stack.of(task_definition)
        task_definition.add_volume(name=name, efs_volume_configuration=ecs.EfsVolumeConfiguration(
            file_system_id=volume.file_system_id,
            transit_encryption="ENABLED",
            root_directory=None if volume.access_point_id else volume.root_directory,
            authorization_config=ecs.AuthorizationConfig(
                access_point_id=volume.access_point_id, iam="ENABLED"),
        ))
        container.add_mount_points(ecs.MountPoint(
            container_path=volume.container_path, source_volume=name,
            read_only=volume.read_only))
        file_system = stack.format_arn(service="elasticfilesystem", resource="file-system",
                                       resource_name=volume.file_system_id,
                                       arn_format=ArnFormat.SLASH_RESOURCE_NAME)
        conditions = None
        if volume.access_point_id:
            conditions = {"StringEquals": {"elasticfilesystem:AccessPointArn": stack.format_arn(
                service="elasticfilesystem", resource="access-point",
                resource_name=volume.access_point_id,
                arn_format=ArnFormat.SLASH_RESOURCE_NAME)}}
        actions = ["elasticfilesystem:ClientMount"]
        if not volume.read_only:
            actions.append("elasticfilesystem:ClientWrite")
        task_definition.add_to_task_role_policy(iam.PolicyStatement(
            actions=actions, resources=[file_system], conditions=conditions))
