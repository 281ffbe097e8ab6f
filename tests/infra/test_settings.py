"""Every documented setting of notifications and jobs, switched on in one app and
synthesized once through cdk-nag (synthesis fails on any unacknowledged finding)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fanout.local.template import resources
from tests.infra.conftest import repo_context

DIGEST = "sha256:" + "ab" * 32


def everything_on() -> dict[str, Any]:
    """The repository's config with every notification and job setting docs/config.md
    documents set."""
    context = copy.deepcopy(repo_context())
    context["jobs"]["analyzer"].update({
        "image_digest": DIGEST,
        "secrets": {"DB_PASSWORD": "prod/db#password", "API_TOKEN": "prod/api-token",
                    "PARTNER_KEY": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
                                   "partner-AbCdEf",
                    "LICENSE": "ssm:/prod/license",
                    "SHARED_KEY": "arn:aws:ssm:eu-west-1:123456789012:parameter/shared/key"},
        "policies": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                     {"Effect": "Allow", "Action": ["s3:PutObject"],
                      "Resource": "arn:aws:s3:::results-bucket/*"}],
        "ephemeral_storage_gib": 100,
        "volumes": [{"file_system_id": "fs-0123456789abcdef0", "container_path": "/data",
                     "read_only": True},
                    {"file_system_id": "fs-0123456789abcdef0",
                     "access_point_id": "fsap-0123456789abcdef0",
                     "container_path": "/scratch"}],
    })
    context["notifications"] = {
        "email": "team@example.com",
        "webhooks": [{"kind": "slack", "secret": "fanout/slack"},
                     {"kind": "teams", "secret": "arn:aws:secretsmanager:eu-west-1:"
                                                 "123456789012:secret:fanout/teams-AbCdEf"},
                     {"kind": "generic", "secret": "fanout/hook"}]}
    context["dashboard"] = {"enabled": True, "session_minutes": 60}
    return context


#: One worker synthesizes ``full`` (conftest.py) for this module and test_dashboard.py.
pytestmark = pytest.mark.xdist_group("full-synth")


def test_email_subscription_keeps_undelivered_messages_in_an_encrypted_queue(
        full: tuple[Any, dict[str, Any]]) -> None:
    # Given the app synthesized with notifications.email (cdk-nag passed, or it raised)
    _, template = full
    # Then the email subscription has a redrive policy to a queue under the topic's key
    [subscription] = resources(template, "AWS::SNS::Subscription").values()
    props = subscription["Properties"]
    assert props["Protocol"] == "email" and props["Endpoint"] == "team@example.com"
    queue_ref = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    queue = template["Resources"][queue_ref]["Properties"]
    [topic] = resources(template, "AWS::SNS::Topic").values()
    assert queue["KmsMasterKeyId"]["Fn::GetAtt"][0] == topic["Properties"]["KmsMasterKeyId"][
        "Fn::GetAtt"][0]
    # And SNS may send to it (queue policy) and encrypt with the key (key policy)
    policies = [p["Properties"] for p in resources(template, "AWS::SQS::QueuePolicy").values()
                if {"Ref": queue_ref} in p["Properties"]["Queues"]]
    assert any(s.get("Principal") == {"Service": "sns.amazonaws.com"}
               and s["Effect"] == "Allow"
               for p in policies for s in p["PolicyDocument"]["Statement"])
    [key] = resources(template, "AWS::KMS::Key").values()
    assert any(s.get("Principal") == {"Service": "sns.amazonaws.com"}
               and "kms:GenerateDataKey*" in s["Action"]
               for s in key["Properties"]["KeyPolicy"]["Statement"])


def test_webhook_secrets_are_read_by_finalize_and_abort_only(
        full: tuple[Any, dict[str, Any]]) -> None:
    # Given the app with three webhooks, two by secret name, one by ARN
    _, template = full
    readers = {}
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "secretsmanager:GetSecretValue" in statement["Action"] \
                    and "fanout/slack" in json.dumps(statement["Resource"]):
                readers[policy["Properties"]["Roles"][0]["Ref"]] = statement["Resource"]
    # Then exactly Finalize's and Abort's roles read exactly those secrets
    assert sorted(r.split("Role")[0] for r in readers) == ["FunctionsAbort", "FunctionsFinalize"]
    for granted in readers.values():
        rendered = [json.dumps(r) for r in granted]
        assert len(granted) == 3
        assert any("secret:fanout/slack-??????" in r for r in rendered)
        assert any("secret:fanout/hook-??????" in r for r in rendered)
        assert "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fanout/teams-AbCdEf" \
            in granted
    # And their functions are told the kinds and secrets, never a URL
    for function in resources(template, "AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        if "FANOUT_WEBHOOKS" in variables:
            assert [w["kind"] for w in json.loads(variables["FANOUT_WEBHOOKS"])] == [
                "slack", "teams", "generic"]


def task_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The job's own task definition (its packed one aside: tests/infra/test_packed.py)."""
    [found] = [res for res in resources(template, "AWS::ECS::TaskDefinition").values()
               if res["Metadata"]["aws:cdk:path"].endswith("/TaskDefinition/Resource")]
    props: dict[str, Any] = found["Properties"]
    return props


def statements_of(template: dict[str, Any], role_path: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role at construct path ``role_path``."""
    roles = [lid for lid, res in resources(template, "AWS::IAM::Role").items()
             if role_path in res.get("Metadata", {}).get("aws:cdk:path", "")]
    assert len(roles) == 1, roles
    return [s for p in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": roles[0]} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_the_job_runs_its_image_by_digest_with_its_storage_and_volumes(
        full: tuple[Any, dict[str, Any]]) -> None:
    _, template = full
    props = task_definition(template)
    [container] = props["ContainerDefinitions"]
    # Then the image is the job's repository at the digest, whatever its tag points at
    assert json.dumps(container["Image"]).endswith(f'@{DIGEST}"]]}}')
    assert props["EphemeralStorage"] == {"SizeInGiB": 100}
    # And both EFS volumes are mounted, encrypted in transit, authorized by the task role
    volumes = {v["Name"]: v["EFSVolumeConfiguration"] for v in props["Volumes"]}
    mounts = {m["ContainerPath"]: m for m in container["MountPoints"]}
    assert mounts["/data"]["ReadOnly"] is True and mounts["/scratch"]["ReadOnly"] is False
    data, scratch = (volumes[mounts[p]["SourceVolume"]] for p in ("/data", "/scratch"))
    assert data["FilesystemId"] == scratch["FilesystemId"] == "fs-0123456789abcdef0"
    assert data["TransitEncryption"] == scratch["TransitEncryption"] == "ENABLED"
    assert scratch["AuthorizationConfig"] == {"AccessPointId": "fsap-0123456789abcdef0",
                                              "IAM": "ENABLED"}
    mounting = [s for s in statements_of(template, "/TaskDefinition/TaskRole")
                if "elasticfilesystem:ClientMount" in s["Action"]]
    assert sorted(map(str, (s["Action"] for s in mounting))) == sorted(map(str, [
        "elasticfilesystem:ClientMount",
        ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]]))


def test_secrets_reach_the_container_from_their_stores_and_nothing_else(
        full: tuple[Any, dict[str, Any]]) -> None:
    _, template = full
    [container] = task_definition(template)["ContainerDefinitions"]
    # Then each secret is a container secret (ECS fetches it at start), none an environment
    sources = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
    assert set(sources) == {"DB_PASSWORD", "API_TOKEN", "PARTNER_KEY", "LICENSE",
                            "SHARED_KEY"}
    assert sources["DB_PASSWORD"].endswith(':secret:prod/db:password::"]]}')
    assert ":secret:prod/api-token" in sources["API_TOKEN"]
    assert "secret:partner-AbCdEf" in sources["PARTNER_KEY"]
    assert ":parameter/prod/license" in sources["LICENSE"]
    assert sources["SHARED_KEY"] == '"arn:aws:ssm:eu-west-1:123456789012:parameter/shared/key"'
    names = {e["Name"] for e in container.get("Environment", [])}
    assert not names & set(sources)
    # And the execution role reads exactly those secrets and that parameter
    reads = [s for s in statements_of(template, "/TaskDefinition/ExecutionRole")
             if "secretsmanager:GetSecretValue" in s["Action"] or "ssm:GetParameters" in
             s["Action"]]
    granted = json.dumps([s["Resource"] for s in reads])
    for expected in ("secret:prod/db-??????", "secret:prod/api-token-??????",
                     "secret:partner-AbCdEf", "parameter/prod/license",
                     "arn:aws:ssm:eu-west-1:123456789012:parameter/shared/key"):
        assert expected in granted
    assert granted.count("secret:") == 3 and granted.count("parameter/") == 2


def test_the_task_role_gets_the_jobs_policies(full: tuple[Any, dict[str, Any]]) -> None:
    _, template = full
    roles = [res for res in resources(template, "AWS::IAM::Role").values()
             if "TaskDefinition/TaskRole" in res.get("Metadata", {}).get("aws:cdk:path", "")]
    # (the job's own task and its packed one: the same policies)
    assert len(roles) == 2
    for role in roles:
        assert role["Properties"]["ManagedPolicyArns"] == [
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
    assert {"Effect": "Allow", "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::results-bucket/*"} in statements_of(
        template, "/TaskDefinition/TaskRole")
