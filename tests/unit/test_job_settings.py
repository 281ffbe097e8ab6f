"""A job's secrets, policies, storage, volumes and image digest, and the notifications'
webhooks, in the config: valid ones load, a bad one is one line naming the job and field;
the local mode's secrets; the chat message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fanout.config import load_config
from fanout.errors import ConfigError
from fanout.local.checks import LocalInputError
from fanout.local.secrets import SECRETS_FILE, local_secrets
from fanout.runtime.webhooks import body_of, kind_of_url, text_of

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "0f" * 32


def context(**job: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = copy.deepcopy(
        json.loads((REPO / "cdk.json").read_text())["context"]["fanout"])
    ctx["jobs"]["analyzer"].update(job)
    return ctx


def test_every_job_setting_loads() -> None:
    # Given a job with every setting docs/config.md documents
    config = load_config(context(
        image_digest=DIGEST,
        secrets={"DB_PASSWORD": "prod/db#password", "LICENSE": "ssm:/prod/license",
                 "TOKEN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf"},
        policies=["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                  {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}],
        ephemeral_storage_gib=200,
        volumes=[{"file_system_id": "fs-0123456789abcdef0", "container_path": "/data",
                  "read_only": True}]))
    # Then it is there as written
    job = config.job("analyzer")
    assert job.image_digest == DIGEST and job.ephemeral_storage_gib == 200
    assert set(job.secrets) == {"DB_PASSWORD", "LICENSE", "TOKEN"}
    assert job.volumes[0].read_only and job.volumes[0].root_directory == "/"


@pytest.mark.parametrize(("job", "field", "says"), [
    ({"ephemeral_storage_gib": 20}, "ephemeral_storage_gib", "at least 21"),
    ({"ephemeral_storage_gib": 201}, "ephemeral_storage_gib", "at most 200"),
    ({"image_digest": "latest"}, "image_digest", "sha256: then 64 hexadecimal digits"),
    ({"secrets": {"DB-PASSWORD": "prod/db"}}, "secrets", "not an environment variable name"),
    ({"secrets": {"FANOUT_X": "prod/db"}}, "secrets", "fanout's own"),
    ({"secrets": {"DB": "prod db"}}, "secrets", "neither a Secrets Manager secret"),
    ({"secrets": {"DB": "prod/db"}, "environment": {"DB": "x"}}, "",
     "secrets and environment both set DB"),
    ({"policies": ["AmazonS3ReadOnlyAccess"]}, "policies", "not a managed policy ARN"),
    ({"policies": [{"Effect": "Allow", "Action": "s3:*"}]}, "policies",
     "needs Action and Resource"),
    ({"policies": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}]},
     "policies", "has no key Principal"),
    ({"volumes": [{"file_system_id": "efs-1", "container_path": "/data"}]},
     "volumes[0].file_system_id", "not an EFS file system id"),
    ({"volumes": [{"file_system_id": "fs-01234567", "container_path": "data"}]},
     "volumes[0].container_path", "absolute path"),
    ({"volumes": [{"file_system_id": "fs-01234567", "container_path": "/d"},
                  {"file_system_id": "fs-89abcdef", "container_path": "/d"}]},
     "", "volumes mount twice at /d"),
])
def test_a_bad_job_setting_is_one_line_naming_the_job_and_field(job: dict[str, Any],
                                                                 field: str, says: str) -> None:
    # When a config with the mistake is loaded
    with pytest.raises(ConfigError) as exc:
        load_config(context(**job))
    # Then one line names the job's field and says what is wrong
    named = "fanout.jobs.analyzer" + (f".{field}" if field else "")
    assert exc.value.fields == [named]
    assert len(str(exc.value).splitlines()) == 1 and says in str(exc.value)


@pytest.mark.parametrize("webhook", [{"kind": "discord", "secret": "a"},
                                     {"kind": "slack", "secret": "https://hooks.slack.com/x"},
                                     {"kind": "slack"}])
def test_a_bad_webhook_is_named(webhook: dict[str, Any]) -> None:
    ctx = context()
    ctx["notifications"] = {"webhooks": [webhook]}
    with pytest.raises(ConfigError) as exc:
        load_config(ctx)
    assert exc.value.fields[0].startswith("fanout.notifications.webhooks[0]")


def secretive() -> Any:
    return load_config(context(secrets={"DB_PASSWORD": "prod/db#password",
                                        "LICENSE": "ssm:/prod/license"}))


def test_local_secrets_come_from_the_environment_then_the_secrets_file(tmp_path: Path) -> None:
    # Given one secret in the environment and both in .fanout/secrets.json
    (tmp_path / SECRETS_FILE).parent.mkdir()
    (tmp_path / SECRETS_FILE).write_text(json.dumps({"DB_PASSWORD": "from-file",
                                                     "LICENSE": "lic-123"}))
    # When the local mode resolves the job's secrets
    found = local_secrets("analyzer", secretive(), {"DB_PASSWORD": "from-env"}, tmp_path)
    # Then the environment wins, the file fills the rest
    assert found == {"DB_PASSWORD": "from-env", "LICENSE": "lic-123"}


def test_a_local_secret_found_nowhere_is_named_never_shown(tmp_path: Path) -> None:
    (tmp_path / SECRETS_FILE).parent.mkdir()
    (tmp_path / SECRETS_FILE).write_text(json.dumps({"LICENSE": "lic-123"}))
    with pytest.raises(LocalInputError) as exc:
        local_secrets("analyzer", secretive(), {}, tmp_path)
    assert exc.value.fields == ["jobs.analyzer.secrets.DB_PASSWORD"]
    assert "DB_PASSWORD in the environment" in str(exc.value)
    assert "lic-123" not in str(exc.value)


def test_a_broken_secrets_file_is_named_without_quoting_it(tmp_path: Path) -> None:
    (tmp_path / SECRETS_FILE).parent.mkdir()
    (tmp_path / SECRETS_FILE).write_text('{"DB_PASSWORD": "hunter2"')
    with pytest.raises(LocalInputError) as exc:
        local_secrets("analyzer", secretive(), {}, tmp_path)
    assert "not a JSON object of secrets (line 1)" in str(exc.value)
    assert "hunter2" not in str(exc.value)


MESSAGE = {"run_id": "r1", "job": "analyzer", "status": "FAILED",
           "totals": {"total": 30, "succeeded": 17, "failed": 12, "timed_out": 1, "aborted": 0},
           "failed_items": [{"index": i, "status": "FAILED", "params": {"year": 1990 + i},
                             "reason": "exit code 3", "exit_code": 3, "log_tail": []}
                            for i in range(13)],
           "console_url": "https://console/r1", "summary": "", "cost": None}


def test_the_chat_message_lists_ten_failed_items_then_how_many_more_then_the_link() -> None:
    lines = text_of(MESSAGE).splitlines()
    assert lines[0] == "fanout run r1 of job analyzer: FAILED"
    assert lines[2] == "- item 0 (year=1990) FAILED: exit code 3"
    assert len([line for line in lines if line.startswith("- item")]) == 10
    assert lines[-2] == "and 3 more (fanout items r1 --status FAILED)"
    assert lines[-1] == "Run: https://console/r1"
    assert body_of("generic", MESSAGE) == MESSAGE


@pytest.mark.parametrize(("url", "kind"), [
    ("https://hooks.slack.com/services/T/B/X", "slack"),
    ("https://acme.webhook.office.com/webhookb2/x", "teams"),
    ("https://prod-01.westeurope.logic.azure.com/workflows/x", "teams"),
    ("https://example.com/hook", "generic"),
])
def test_a_webhook_url_says_its_kind(url: str, kind: str) -> None:
    assert kind_of_url(url) == kind


def test_a_post_that_fails_says_why_without_the_url() -> None:
    import socket

    from fanout.runtime.webhooks import WebhookFailed, post

    # Given a port nothing listens on (bound, then closed)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T1/B2/s3cr3t"
    # When a message is posted there / Then the failure names no part of the URL
    with pytest.raises(WebhookFailed) as exc:
        post(url, {"text": "x"}, timeout=2)
    assert str(exc.value).startswith("could not be reached")
    assert "s3cr3t" not in str(exc.value) and str(port) not in str(exc.value)
    with pytest.raises(WebhookFailed, match="not an http"):
        post("ftp://example.com/s3cr3t", {"text": "x"})
