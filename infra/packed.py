"""A job's packed task definition (docs/decisions/0020, 0021): the job's own, plus the
runner injected through a shared volume and the agent that links it to S3.

``<job>-packed`` differs from the job's task definition in exactly this:

- a task-scoped volume ``fanout`` (a bind mount with no host path: the task's own storage);
- an init container ``fanout-runner`` (not essential), from the runner's image (a static
  binary ``FROM scratch``, runner/Dockerfile), that runs ``install /fanout`` and exits 0;
- the agent ``fanout-agent`` (essential), fanout's image (runner/agent.Dockerfile), told
  the job image's entrypoint; Launch gives it the batch (``FANOUT_BATCH``, an override);
- the job's container mounts the volume, starts once ``fanout-runner`` succeeded, and its
  entrypoint is ``/fanout/runner``.
"""

from __future__ import annotations

import json

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs

from fanout.aws.ecs import AGENT_CONTAINER, RUNNER_CONTAINER
from fanout.config import JobConfig

#: The runner's and the agent's names in the task, and the volume they share.
RUNNER = RUNNER_CONTAINER
AGENT = AGENT_CONTAINER
VOLUME = "fanout"
MOUNT = "/fanout"
#: The job's container's entrypoint and arguments in the packed task.
RUNNER_PATH = f"{MOUNT}/runner"
RUNNER_ARGS = ["--batch", f"{MOUNT}/batch", "--out", f"{MOUNT}/out"]
#: The agent's image is built from the repository with only these files let in.
AGENT_FILES = ("fanout/__init__.py", "fanout/runtime/__init__.py",
               "fanout/runtime/packed_agent.py", "runner/agent.Dockerfile")
#: Everything out, then each folder on the way back in with its contents out, then the
#: files (the same in the CDK's glob and Docker's ignore modes).
AGENT_EXCLUDES = ["*", ".*", "!fanout", "fanout/*", "!fanout/runtime", "fanout/runtime/*",
                  "!runner", "runner/*", *(f"!{f}" for f in AGENT_FILES)]


def packs(job: JobConfig) -> bool:
    """Whether a job gets a packed task definition: it allows packing, and its config names
    the image's entrypoint (which the runner replaces)."""
    return bool(job.packable and job.entrypoint)


def add_packed_containers(
    task_definition: ecs.FargateTaskDefinition, job: JobConfig, *, repo_root: str,
    logging: ecs.LogDriver,
) -> ecs.ContainerDefinition:
    """Add the volume, the runner's init container and the agent; the runner's container
    for :func:`inject` (the caller adds the job's container)."""
    platform = (ecr_assets.Platform.LINUX_ARM64 if job.architecture == "ARM64"
                else ecr_assets.Platform.LINUX_AMD64)
    task_definition.add_volume(name=VOLUME)
    runner = task_definition.add_container(
        RUNNER, container_name=RUNNER, essential=False,
        image=ecs.ContainerImage.from_asset(f"{repo_root}/runner", platform=platform,
                                            exclude=["agent.Dockerfile"]),
        command=["install", MOUNT], logging=logging)
    agent = task_definition.add_container(
        AGENT, container_name=AGENT, essential=True,
        image=ecs.ContainerImage.from_asset(repo_root, file="runner/agent.Dockerfile",
                                            exclude=AGENT_EXCLUDES, platform=platform),
        command=["--entrypoint", json.dumps(list(job.entrypoint))], logging=logging)
    for container in (runner, agent):
        container.add_mount_points(ecs.MountPoint(
            container_path=MOUNT, source_volume=VOLUME, read_only=False))
    agent.add_container_dependencies(ecs.ContainerDependency(
        container=runner, condition=ecs.ContainerDependencyCondition.SUCCESS))
    return runner


def inject(container: ecs.ContainerDefinition, runner: ecs.ContainerDefinition) -> None:
    """The job's container runs the injected runner once the init container installed it."""
    container.add_mount_points(ecs.MountPoint(
        container_path=MOUNT, source_volume=VOLUME, read_only=False))
    container.add_container_dependencies(ecs.ContainerDependency(
        container=runner, condition=ecs.ContainerDependencyCondition.SUCCESS))

