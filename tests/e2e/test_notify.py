"""``fanout local --notify``: the message a deployed run's notifications carry, printed or
posted to a webhook."""

from __future__ import annotations

import subprocess

import pytest

from fanout.testing.webhooks import WebhookReceiver
from tests.e2e.conftest import SPECS, fanout_command

pytestmark = pytest.mark.slow


def test_notify_prints_the_message_ending_with_the_failed_items_reasons(e2e_stack,
                                                                          fanout_local):
    # Given a run whose second item fails
    # When it runs locally with --notify (and --json: the message goes to stderr)
    outcome = fanout_local(SPECS / "retry.json", "--config", e2e_stack, "--notify")
    # Then the message says the ending, the failed item and why, and how to see the run
    assert outcome.code == 1, outcome.stderr[-3000:]
    run_id = outcome.summary["run_id"]
    lines = outcome.stderr.splitlines()
    start = lines.index(f"fanout run {run_id} of job prog: FAILED")
    assert lines[start + 1] == "1 of 2 items succeeded, 1 failed, 0 timed out, 0 aborted"
    assert lines[start + 2] == "- item 1 (code=1, fail=0, sleep=0) FAILED: exit code 1"
    assert lines[start + 3] == f"Run: fanout status {run_id} --local"


def test_notify_url_posts_the_json_message_and_never_prints_the_url(e2e_stack, fanout_local):
    # Given a webhook endpoint
    receiver = WebhookReceiver()
    try:
        # When a failing run is given its URL
        url = f"{receiver.base}/hook/t0k3n"
        outcome = fanout_local(SPECS / "retry.json", "--config", e2e_stack, "--notify", url)
    finally:
        receiver.close()
    # Then it got the notification's JSON message, once
    assert outcome.code == 1, outcome.stderr[-3000:]
    [(path, message)] = receiver.posts
    assert path == "/hook/t0k3n"
    assert (message["run_id"], message["status"]) == (outcome.summary["run_id"], "FAILED")
    [failed] = message["failed_items"]
    assert (failed["index"], failed["reason"]) == (1, "exit code 1")
    assert "notification posted to the generic webhook" in outcome.stderr
    assert "t0k3n" not in outcome.stderr + outcome.stdout


def test_notify_refuses_what_is_not_a_url_before_running(tmp_path):
    # When --notify is given something that is not a URL
    result = subprocess.run(fanout_command(SPECS / "retry.json", "--notify", "slack-channel"),
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    # Then one line says so, exit 2, nothing ran
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "--notify: takes a webhook's http(s) URL, or nothing to print the message")
    assert not (tmp_path / ".fanout").exists()
