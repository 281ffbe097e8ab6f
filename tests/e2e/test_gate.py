"""The launch gate in whole runs: items wait for their turn or for capacity, never abandoned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def items_spec(tmp_path: Path, count: int, *, concurrency: int) -> Path:
    spec = {"job": "prog", "params": {"n": {"range": {"start": 0, "stop": count}}},
            "command": ["--exit", "0"], "max_concurrency": concurrency,
            "retry": {"max_attempts": 1}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_a_capacity_outage_longer_than_any_retry_budget_loses_nothing(
        e2e_stack, fanout_local, tmp_path):
    # Given 5 items, one attempt each, and Fargate refusing every launch for capacity
    # during the run's first 180 s (longer than the 2.5 minutes launches used to be retried)
    spec = items_spec(tmp_path, 5, concurrency=5)
    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack, "--faults", "capacity_outage=180",
                           timeout=600)
    # Then every item succeeded, on its first attempt, with one task
    summary = outcome.summary
    assert summary is not None, outcome.stderr[-3000:]
    assert summary["status"] == "SUCCEEDED" and summary["succeeded"] == 5
    assert all(i["attempts"] == 1 and len(i["tasks"]) == 1 for i in summary["items"])
    # And they waited for capacity: refused launches were counted, every attempt waited
    launch = summary["launch"]
    assert launch["capacity_refused"] > 0 and launch["waits"] == 5
    # And a capacity probe is a backoff, not a storm: few RunTask calls over 180 s
    assert launch["run_task_calls"] < 5 + 180 / 4


def test_a_launch_storm_is_paced_to_the_bucket(e2e_stack, fanout_local, tmp_path):
    # Given 200 items all at once against a Fargate bucket of 10, then 5 a second
    spec = items_spec(tmp_path, 200, concurrency=200)
    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack, "--launch-rate", "10,5", timeout=600)
    # Then every item succeeded with exactly one task
    summary = outcome.summary
    assert summary is not None, outcome.stderr[-3000:]
    assert summary["status"] == "SUCCEEDED" and summary["succeeded"] == 200
    assert all(len(i["tasks"]) == 1 and i["attempts"] == 1 for i in summary["items"])
    # And RunTask was hardly ever throttled: the gate paced the launches
    launch = summary["launch"]
    assert launch["throttled"] <= 0.05 * launch["run_task_calls"], launch
    assert launch["run_task_calls"] - launch["throttled"] == 200
    # And items waited for their turn (how many depends on how fast the emulation starts
    # the map's children on this machine: an attempt over a second in the queue waited,
    # which with moto's speed-ups off can be every one of them)
    assert 0 < launch["waits"] <= 200


def test_a_bad_launch_rate_is_a_usage_error(e2e_stack, fanout_local, tmp_path):
    # Given a launch rate that is not BURST,PER_SECOND
    spec = items_spec(tmp_path, 1, concurrency=1)
    # When fanout local is asked for it, Then it exits 2 naming the option
    outcome = fanout_local(spec, "--config", e2e_stack, "--launch-rate", "ten")
    assert outcome.code == 2 and "--launch-rate" in outcome.stderr
