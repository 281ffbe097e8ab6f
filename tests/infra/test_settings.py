"""Every documented setting of notifications and jobs, switched on in one app and
synthesized once through cdk-nag (synthesis fails on any unacknowledged finding)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fanout.local.template import resources
from tests.infra.conftest import repo_context, synthesize


def everything_on() -> dict[str, Any]:
    """The repository's config with every notification and job setting docs/config.md
    documents set."""
    context = copy.deepcopy(repo_context())
    context["notifications"] = {
        "email": "team@example.com",
        "webhooks": [{"kind": "slack", "secret": "fanout/slack"},
                     {"kind": "teams", "secret": "arn:aws:secretsmanager:eu-west-1:"
                                                 "123456789012:secret:fanout/teams-AbCdEf"},
                     {"kind": "generic", "secret": "fanout/hook"}]}
    return context


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    return synthesize(everything_on(), tmp_path_factory.mktemp("cdk-out-full"))


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
            if "secretsmanager:GetSecretValue" in statement["Action"]:
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
