"""A job's packed task definition (docs/decisions/0021): the job's task with the runner
injected through a shared volume by an init container, and the agent beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fanout.local.template import logical_id, resources
from tests.infra.test_iam import actions_of, statements

PACKED = "Jobs/Job-analyzer/PackedTaskDefinition"


def task(template: dict[str, Any], path: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][
        logical_id(template, f"{path}/Resource")]["Properties"]
    return properties


@pytest.fixture(scope="module")
def containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["Name"]: c for c in task(template, PACKED)["ContainerDefinitions"]}


def test_the_init_container_installs_the_runner_into_the_shared_volume(containers) -> None:
    # Then fanout-runner is not essential, and copies itself into /fanout
    runner = containers["fanout-runner"]
    assert runner["Essential"] is False
    assert runner["Command"] == ["install", "/fanout"]
    assert runner["MountPoints"] == [
        {"ContainerPath": "/fanout", "ReadOnly": False, "SourceVolume": "fanout"}]


def test_the_jobs_image_runs_the_injected_runner_once_installed(template, containers) -> None:
    # Given the job's own task definition
    own = {c["Name"]: c for c in task(template, "Jobs/Job-analyzer/TaskDefinition")[
        "ContainerDefinitions"]}["analyzer"]
    job = containers["analyzer"]
    # Then the packed one runs the same image, after the runner's init container succeeded,
    # with /fanout/runner as its entrypoint, on the shared volume
    assert job["Image"] == own["Image"] and job["Essential"] is True
    assert job["EntryPoint"] == ["/fanout/runner"]
    assert job["Command"] == ["--batch", "/fanout/batch", "--out", "/fanout/out"]
    assert job["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": "fanout-runner"}]
    assert {"ContainerPath": "/fanout", "ReadOnly": False, "SourceVolume": "fanout"} in \
        job["MountPoints"]
    # And nothing else of the job's container differs
    different = {k for k in {*own, *job} if own.get(k) != job.get(k)}
    assert different == {"EntryPoint", "Command", "DependsOn", "MountPoints"}


def test_the_agent_is_told_the_images_entrypoint_and_shares_the_volume(containers) -> None:
    agent = containers["fanout-agent"]
    assert agent["Essential"] is True
    assert agent["Command"] == ["--entrypoint", '["python", "/app/analyzer.py"]']
    assert agent["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": "fanout-runner"}]
    assert agent["MountPoints"] == [
        {"ContainerPath": "/fanout", "ReadOnly": False, "SourceVolume": "fanout"}]
    assert agent["LogConfiguration"]["LogDriver"] == "awslogs"


def test_the_packed_task_is_the_jobs_but_for_the_injection(template) -> None:
    own, packed = task(template, "Jobs/Job-analyzer/TaskDefinition"), task(template, PACKED)
    # Then its family is the job's with -packed, with one task-scoped volume
    assert packed["Family"] == own["Family"] + "-packed"
    assert packed["Volumes"] == [{"Name": "fanout"}]
    for key in ("Cpu", "Memory", "RuntimePlatform", "NetworkMode", "RequiresCompatibilities"):
        assert packed[key] == own[key], key


def test_the_packed_task_role_reads_batches_and_writes_item_results_only(template) -> None:
    # Given the packed task's role and the job's own
    packed = statements(template, f"{PACKED}/TaskRole")
    own = statements(template, "Jobs/Job-analyzer/TaskDefinition/TaskRole")

    def grants(found: list[dict[str, Any]]) -> set[tuple[str, str]]:
        out = set()
        for s in found:
            for resource in s["Resource"] if isinstance(s["Resource"], list) \
                    else [s["Resource"]]:
                path = "".join(p for p in resource["Fn::Join"][1] if isinstance(p, str))
                out |= {(a, path) for a in actions_of(s)}
        return out

    # Then it has the job's grants, plus exactly the batch read and the items' write
    assert grants(packed) - grants(own) == {
        ("s3:GetObject", "/runs/*/tasks/*/batch.json"),
        ("s3:PutObject", "/runs/*/tasks/*/items/*"),
    }
    assert grants(own) <= grants(packed)


def s3_grants(template: dict[str, Any], role_path: str) -> set[tuple[str, str]]:
    """(action, key pattern) of a role's S3 object grants in the run bucket."""
    bucket = logical_id(template, "Records/Manifests/Resource")
    out = set()
    for s in statements(template, role_path):
        for resource in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
            parts = resource.get("Fn::Join", ["", []])[1] if isinstance(resource, dict) else []
            if parts[:1] == [{"Fn::GetAtt": [bucket, "Arn"]}]:
                path = "".join(p for p in parts if isinstance(p, str))
                out |= {(a, path) for a in actions_of(s) if a.startswith("s3:")}
    return out


@pytest.mark.parametrize("name", ["Launch", "Dispatch", "Record", "Reconcile"])
def test_the_functions_write_and_read_a_packed_tasks_keys_only_as_their_part_needs(
        template, name: str) -> None:
    # Given a function's grants on a packed task's keys (runs/<run>/tasks/<key>/)
    found = {g for g in s3_grants(template, f"Functions/{name}Role") if "/tasks/" in g[1]}
    # Then the dispatcher only writes batch.json, Record and Reconcile only read it and
    # items/, Launch neither
    assert found == {
        "Launch": set(),
        "Dispatch": {("s3:PutObject", "/runs/*/tasks/*/batch.json")},
        "Record": {("s3:GetObject", "/runs/*/tasks/*/batch.json"),
                   ("s3:GetObject", "/runs/*/tasks/*/items/*")},
        "Reconcile": {("s3:GetObject", "/runs/*/tasks/*/batch.json"),
                      ("s3:GetObject", "/runs/*/tasks/*/items/*")},
    }[name]
    # And none of them may touch the rest of a run's folder through a wider pattern
    assert not {g for g in s3_grants(template, f"Functions/{name}Role")
                if g[1] in ("/runs/*", "/*", "/runs/*/tasks/*")}


def test_launch_may_run_the_packed_family_and_pass_its_roles(template) -> None:
    launch = statements(template, "Functions/LaunchRole")
    (passing,) = [s for s in launch if "iam:PassRole" in actions_of(s)]
    roles = {r["Fn::GetAtt"][0] for r in passing["Resource"]}
    assert logical_id(template, f"{PACKED}/TaskRole/Resource") in roles
    assert logical_id(template, f"{PACKED}/ExecutionRole/Resource") in roles


def test_only_jobs_that_pack_get_a_packed_task(template) -> None:
    # The repository's one job packs; its own task definition and the packed one, no more
    assert len(resources(template, "AWS::ECS::TaskDefinition")) == 2


def test_the_images_are_built_from_their_own_files_only(stack) -> None:
    # Given the assets the synth staged for the packed task's two images
    from aws_cdk import App

    app = App.of(stack)
    assert app is not None
    staged = {}
    for folder in Path(app.outdir).glob("asset.*"):
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        if any(f.endswith("Dockerfile") for f in files):
            staged[next(f for f in files if f.endswith("Dockerfile"))] = files
    # Then the runner's is its source and Dockerfile, the agent's its module and Dockerfile
    assert staged == {
        "Dockerfile": ["Dockerfile", "runner.c"],
        "runner/agent.Dockerfile": ["fanout/__init__.py", "fanout/runtime/__init__.py",
                                    "fanout/runtime/packed_agent.py",
                                    "runner/agent.Dockerfile"],
    }
