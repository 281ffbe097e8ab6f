"""Every ending of a run is announced: one message per run, Finalize's shape, any status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fanout.records.dynamo import DynamoRecords
from fanout.records.model import RunRecord
from fanout.runtime import context
from fanout.runtime.notify import announce
from fanout.testing.callbacks import MemoryCallbacks
from fanout.testing.records import MemoryRecords
from fanout.testing.webhooks import WebhookReceiver
from tests.integration.conftest import CLUSTER, EVENTS, TABLE, World
from tests.integration.helpers import call, launch, start_run, stopped

#: What a subscriber reads in every message, whatever the run's status.
SHAPE = {"run_id", "job", "status", "summary", "totals", "failed_items", "cost", "console_url"}


@pytest.fixture
def answers(world: World) -> MemoryCallbacks:
    fake = MemoryCallbacks()
    context.use(callbacks=fake)
    return fake


def published(world: World) -> list[tuple[str, dict[str, Any]]]:
    """(subject, message) of every notification sent so far."""
    got = world.sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in got.get("Messages", [])]
    return [(b["Subject"], json.loads(b["Message"])) for b in bodies]


def execution_ended(run_id: str, status: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / "execution-aborted.json").read_text())
    loaded["detail"].update({"name": run_id, "status": status})
    return loaded


def two_items(run_id: str, **spec: object) -> None:
    start_run(run_id, {"job": "analyzer", "params": {"year": [1999, 2000]}, **spec})


def finish_by_finalize(world: World, run_id: str, outcomes: list[str]) -> None:
    two_items(run_id, retry={"max_attempts": 1})
    for index, kind in enumerate(outcomes):
        arn = launch(world, run_id, index, f"{run_id}-{index}")["task_arn"]
        world.ecs.stop_task(cluster=CLUSTER, task=arn, reason="Essential container exited")
        stopped(kind, arn, run_id, index, 1)
    call("finalize", {"run_id": run_id, "outcome": {}})


def end_by_execution(world: World, run_id: str, status: str) -> None:
    two_items(run_id)
    launch(world, run_id, 0, f"{run_id}-0")
    call("abort", execution_ended(run_id, status))


def reject(world: World, run_id: str) -> None:
    with pytest.raises(Exception, match="nope"):
        start_run(run_id, {"job": "nope", "params": {"x": [1]}})
    call("abort", execution_ended(run_id, "FAILED"))  # a bad spec fails the execution


@pytest.mark.parametrize(("status", "end"), [
    ("SUCCEEDED", lambda w, r: finish_by_finalize(w, r, ["success", "success"])),
    ("FAILED", lambda w, r: finish_by_finalize(w, r, ["success", "exit-1"])),
    ("ABORTED", lambda w, r: end_by_execution(w, r, "ABORTED")),
    ("TIMED_OUT", lambda w, r: end_by_execution(w, r, "TIMED_OUT")),
    ("REJECTED", reject),
])
def test_each_ending_publishes_one_message_of_one_shape(world: World, answers: MemoryCallbacks,
                                                        status: str, end: Any) -> None:
    # Given a run that ends `status` (by Finalize, Abort, or Expand rejecting its spec)
    run_id = f"run-{status.lower().replace('_', '-')}"
    end(world, run_id)
    # When the ending event reaches Abort too (a failed or stopped execution), and again
    # (EventBridge delivers at least once)
    call("abort", execution_ended(run_id, "FAILED" if status != "ABORTED" else "ABORTED"))
    # Then exactly one message went out, Finalize's shape, naming the run's status
    [(subject, message)] = published(world)
    assert subject == f"fanout run {run_id} {status}"
    assert set(message) == SHAPE
    assert (message["run_id"], message["status"]) == (run_id, status)
    assert message["summary"]
    assert message["totals"]["total"] == (0 if status == "REJECTED" else 2)
    assert message["console_url"].startswith("https://us-east-1.console.aws.amazon.com/")
    assert all(set(i) == {"index", "status", "exit_code", "params", "reason", "log_tail"}
               for i in message["failed_items"])
    assert all(i["reason"] and isinstance(i["log_tail"], list) for i in message["failed_items"])
    expected_failed = {"SUCCEEDED": 0, "FAILED": 1, "ABORTED": 2, "TIMED_OUT": 2, "REJECTED": 0}
    assert len(message["failed_items"]) == expected_failed[status]
    if status == "REJECTED":  # nothing ran: nothing to price
        assert message["cost"] is None
    else:  # what the run cost, as `fanout status` estimates it (docs/cost.md)
        cost = message["cost"]
        assert {"total_usd", "compute_usd", "control_plane_usd", "prices_as_of"} <= set(cost)
        assert cost["control_plane_usd"] > 0
        assert cost["total_usd"] == pytest.approx(cost["compute_usd"]
                                                  + cost["control_plane_usd"], abs=2e-6)
        if status in ("SUCCEEDED", "FAILED"):  # two tasks ran, a minute billed each at least
            assert cost["compute_usd"] > 0
    if status == "FAILED":  # each failed item says why, in the records' words
        [item] = message["failed_items"]
        assert (item["index"], item["reason"]) == (1, "exit code 1")


def test_a_run_whose_execution_failed_is_closed_failed_and_announced(
        world: World, answers: MemoryCallbacks) -> None:
    # Given a running run whose execution failed (not through Finalize)
    two_items("run-broke")
    # When Abort takes the failed execution
    result = call("abort", execution_ended("run-broke", "FAILED"))
    # Then the run is FAILED and that is announced once
    assert (result["status"], result["announced"]) == ("FAILED", True)
    [(subject, message)] = published(world)
    assert message["status"] == "FAILED" and subject.endswith(" FAILED")


def test_a_retried_finalize_publishes_nothing_more(world: World,
                                                   answers: MemoryCallbacks) -> None:
    # Given a run Finalize closed and announced
    finish_by_finalize(world, "run-twice", ["success", "success"])
    # When Finalize is retried
    call("finalize", {"run_id": "run-twice", "outcome": {}})
    # Then one message only
    assert len(published(world)) == 1


class FailingOnce:
    """An SNS client whose first publish fails (a throttle, a timeout)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = True

    def publish(self, **kwargs: Any) -> None:
        if self.fail:
            self.fail = False
            raise RuntimeError("SNS throttled")
        self.sent.append(kwargs)


def test_an_announcement_that_failed_is_made_by_the_retry() -> None:
    # Given a finished run whose announcement raised
    store, sns = MemoryRecords(), FailingOnce()
    store.create_run(RunRecord("r", "analyzer", "RUNNING", "2026-11-20T10:00:00Z"))
    store.finish_run("r", "ABORTED", "2026-11-20T10:05:00Z", "run r aborted")
    run = store.get_run("r")
    assert run is not None
    with pytest.raises(RuntimeError):
        announce(store, sns, "arn:topic", run, [])
    # When the function is retried, Then it publishes, once
    again = store.get_run("r")
    assert again is not None and announce(store, sns, "arn:topic", again, [])
    last = store.get_run("r")
    assert last is not None and not announce(store, sns, "arn:topic", last, [])
    assert [json.loads(m["Message"])["status"] for m in sns.sent] == ["ABORTED"]


def test_a_run_stopped_before_expand_recorded_it_is_recorded_and_announced(
        world: World, answers: MemoryCallbacks) -> None:
    # Given an execution stopped while its Expand was still running (no run record yet)
    # When Abort handles its ending first
    result = call("abort", execution_ended("run-early", "ABORTED"))
    # Then the run is recorded ABORTED with no items, saying why, and announced once
    assert (result["status"], result["announced"]) == ("ABORTED", True)
    run = DynamoRecords(TABLE).get_run("run-early")
    assert run is not None and (run.status, run.job, run.total) == ("ABORTED", "analyzer", 0)
    assert run.summary == "the execution ended ABORTED before its items were expanded"
    assert run.expires_at is not None and run.finished_at is not None
    [(subject, message)] = published(world)
    assert subject == "fanout run run-early ABORTED" and set(message) == SHAPE
    # And the Expand that finishes afterwards leaves the run as it is
    start_run("run-early")
    after = DynamoRecords(TABLE).get_run("run-early")
    assert after is not None and (after.status, after.total) == ("ABORTED", 0)
    assert list(DynamoRecords(TABLE).items("run-early")) == []
    assert published(world) == []


@pytest.fixture
def hooks(world: World, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    made = WebhookReceiver()
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    # The URL's path is the credential, as Slack's and Teams' are.
    secrets.create_secret(Name="fanout/slack", SecretString=f"{made.base}/services/T1/B2/s3cr3t")
    secrets.create_secret(Name="fanout/teams",
                          SecretString=json.dumps({"url": f"{made.base}/teams/t0k3n"}))
    monkeypatch.setenv("FANOUT_WEBHOOKS", json.dumps([
        {"kind": "slack", "secret": "fanout/slack"}, {"kind": "teams", "secret": "fanout/teams"}]))
    context.use(callbacks=MemoryCallbacks())
    yield made
    made.close()


def test_a_failed_run_is_posted_once_to_slack_and_teams_with_reasons_and_link(
        world: World, hooks: WebhookReceiver) -> None:
    # Given Slack and Teams webhooks whose URLs are kept in Secrets Manager
    # When a run with a failing item is finalized, and its execution's ending reaches Abort
    finish_by_finalize(world, "run-chat", ["success", "exit-1"])
    call("abort", execution_ended("run-chat", "FAILED"))
    # Then each webhook got one message (the SNS one went out too)
    assert [path for path, _ in hooks.posts] == ["/services/T1/B2/s3cr3t", "/teams/t0k3n"]
    assert len(published(world)) == 1
    slack = hooks.posts[0][1]["text"].splitlines()
    # ending with the failed item's reason and a link to the run
    assert slack[0] == "fanout run run-chat of job analyzer: FAILED"
    assert slack[1] == "1 of 2 items succeeded, 1 failed, 0 timed out, 0 aborted"
    assert slack[2] == "- item 1 (year=2000) FAILED: exit code 1"
    assert slack[-1].startswith("Run: https://us-east-1.console.aws.amazon.com/states/")
    assert slack[-1].endswith(":run-chat")
    card = hooks.posts[1][1]["attachments"][0]["content"]
    assert [b["text"] for b in card["body"]] == slack
    assert card["actions"][0]["url"] == slack[-1].removeprefix("Run: ")


def test_a_webhook_that_fails_leaves_the_ending_to_the_others_and_says_so_without_its_url(
        world: World, hooks: WebhookReceiver, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # Given the chat endpoint answering 500, and a generic webhook whose secret is missing
    hooks.status = 500
    monkeypatch.setenv("FANOUT_WEBHOOKS", json.dumps([
        {"kind": "slack", "secret": "fanout/slack"},
        {"kind": "generic", "secret": "fanout/missing"}]))  # read at the first call
    # When a run is finalized
    finish_by_finalize(world, "run-hookfail", ["success", "success"])
    # Then Finalize succeeded: the run is closed and announced on the topic
    run = DynamoRecords(TABLE).get_run("run-hookfail")
    assert run is not None and run.status == "SUCCEEDED" and run.notified
    assert len(published(world)) == 1
    # And each failure is logged by webhook kind and secret, and counted
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err
    assert "slack webhook (secret fanout/slack): answered HTTP 500" in logged
    assert "generic webhook (secret fanout/missing): its secret could not be read " \
           "(ResourceNotFoundException)" in logged
    metrics = [json.loads(line) for line in out.out.splitlines()
               if line.startswith("{") and "NotificationsFailed" in line]
    assert [m["NotificationsFailed"] for m in metrics] == [[2.0]]
    # And no log line holds the URL or any part of the secret
    assert "s3cr3t" not in logged and hooks.base not in logged
