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


def test_a_capacity_outage_in_a_whole_run_loses_nothing(e2e_stack, fanout_local, tmp_path):
    # Given 5 items, one attempt each, and the emulated Fargate refusing every launch for
    # capacity during the run's first 15 s (the local mode's capacity_outage fault; an
    # outage of minutes, and how capacity is probed meanwhile, run in fake time in
    # tests/unit/test_dispatch.py)
    spec = items_spec(tmp_path, 5, concurrency=5)
    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack, "--faults", "capacity_outage=15",
                           timeout=300)
    # Then every item succeeded, on its first attempt, with one task
    summary = outcome.summary
    assert summary is not None, outcome.stderr[-3000:]
    assert summary["status"] == "SUCCEEDED" and summary["succeeded"] == 5
    assert all(i["attempts"] == 1 and len(i["tasks"]) == 1 for i in summary["items"])
    # And they waited for capacity: refused launches were counted, every attempt waited
    launch = summary["launch"]
    assert launch["capacity_refused"] > 0 and launch["waits"] == 5


def test_a_launch_storm_is_paced_to_the_bucket(e2e_stack, fanout_local, tmp_path):
    # Given 100 items all at once against a Fargate bucket of 10, then 5 a second (enough
    # items that most must wait for the refill: the run takes some 100 / 5 = 20 s)
    items, burst, per_second = 100, 10, 5
    spec = items_spec(tmp_path, items, concurrency=items)
    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack, "--launch-rate",
                           f"{burst},{per_second}", timeout=600)
    # Then every item succeeded with exactly one task
    summary = outcome.summary
    assert summary is not None, outcome.stderr[-3000:]
    assert summary["status"] == "SUCCEEDED" and summary["succeeded"] == items
    assert all(len(i["tasks"]) == 1 and i["attempts"] == 1 for i in summary["items"])
    # And RunTask was hardly ever throttled: the gate paced the launches
    launch = summary["launch"]
    assert launch["throttled"] <= 0.05 * launch["run_task_calls"], launch
    assert launch["run_task_calls"] - launch["throttled"] == items
    # And items waited for their turn. Queued all at once, all but burst - 1 would wait for
    # a permit (the gate keeps 1 of the burst of 10 in reserve; tests/unit/test_dispatch.py
    # counts exactly that in fake time). Here the map's children queue over a few seconds
    # (2.7 s measured on a loaded 2-core machine), and by then + 1 s at most burst - 1 and
    # 5 a second have launched: allowing 5 s for that, at least
    # items - (burst - 1) - 5 * (5 + 1) wait. All may count: an attempt over a second in
    # the queue waited, which is every one of them when the emulation is slow to run the
    # dispatcher.
    assert items - (burst - 1) - per_second * (5 + 1) <= launch["waits"] <= items


def test_a_bad_launch_rate_is_a_usage_error(e2e_stack, fanout_local, tmp_path):
    # Given a launch rate that is not BURST,PER_SECOND
    spec = items_spec(tmp_path, 1, concurrency=1)
    # When fanout local is asked for it, Then it exits 2 naming the option
    outcome = fanout_local(spec, "--config", e2e_stack, "--launch-rate", "ten")
    assert outcome.code == 2 and "--launch-rate" in outcome.stderr


def test_items_over_the_vcpu_quota_wait_then_succeed(e2e_stack, fanout_local, tmp_path):
    # Given 6 items of 0.25 vCPU at once, each running 2 s, against a vCPU quota of 0.5
    # (two tasks at a time): before, RunTask's quota answer failed the item for good
    spec = {"job": "prog", "params": {"n": {"range": {"start": 0, "stop": 6}}},
            "command": ["--exit", "0", "--sleep", "2"], "max_concurrency": 6,
            "retry": {"max_attempts": 1}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    # When the run ends
    outcome = fanout_local(path, "--config", e2e_stack, "--faults", "vcpu_quota=0.5",
                           timeout=600)
    # Then every item succeeded on its one attempt, with one task
    summary = outcome.summary
    assert summary is not None, outcome.stderr[-3000:]
    assert summary["status"] == "SUCCEEDED" and summary["succeeded"] == 6, summary
    assert all(i["attempts"] == 1 and len(i["tasks"]) == 1 for i in summary["items"])
    # And launches over the quota were refused, so some items waited for it
    launch = summary["launch"]
    assert launch["quota_refused"] > 0 and launch["waits"] >= 4, launch
