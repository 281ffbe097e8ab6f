"""The Fargate cluster and, per job, its ECR repository and task definition."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct

from fanout.config import JobConfig
from fanout.schema import LOG_STREAM_PREFIX


@dataclass(frozen=True)
class JobResources:
    """What the stack made for one job."""

    name: str
    repository: ecr.Repository
    task_definition: ecs.FargateTaskDefinition
    container: ecs.ContainerDefinition
    log_group: logs.LogGroup


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
        task_definition = ecs.FargateTaskDefinition(
            scope,
            "TaskDefinition",
            family=f"{prefix}-{name}",
            cpu=job.cpu,
            memory_limit_mib=job.memory,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=(
                    ecs.CpuArchitecture.ARM64
                    if job.architecture == "ARM64"
                    else ecs.CpuArchitecture.X86_64
                ),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        log_group = logs.LogGroup(
            scope, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        container = task_definition.add_container(
            name,
            container_name=name,
            image=ecs.ContainerImage.from_ecr_repository(repository, job.image_tag),
            # Container-level memory: what the container may use (and what moto needs).
            memory_limit_mib=job.memory,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=LOG_STREAM_PREFIX,
                                            log_group=log_group),
        )
        return JobResources(name, repository, task_definition, container, log_group)
