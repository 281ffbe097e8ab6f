"""Every documented setting of notifications and jobs, switched on in one app and
synthesized once through cdk-nag (synthesis fails on any unacknowledged finding)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fanout.local.template import resources
from tests.infra.conftest import repo_context, synthesize


def everything_on() -> dict[str, Any]:
    """The repository's config with every notification and job setting docs/config.md
    documents set."""
    context = copy.deepcopy(repo_context())
    context["notifications"] = {"email": "team@example.com"}
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
