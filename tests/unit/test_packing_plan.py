"""Packing a run's items into tasks (fanout/spec/packing.py): "auto" and the plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fanout.spec.packing import LAUNCH_SPAN_TARGET_SECONDS, launch_span_seconds, plan_packing
from fanout.spec.plan import plan_run
from fanout.spec.validate import parse_spec

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUCKET = {"burst": 100, "per_second": 20.0}


def test_a_launch_span_is_the_burst_then_the_steady_rate() -> None:
    assert launch_span_seconds(100, 100, 20.0) == 0
    assert launch_span_seconds(1_000_100, 100, 20.0) == 50_000  # about 14 hours


def test_auto_packs_a_million_items_to_launch_within_the_target() -> None:
    # Given a million items, 1,000 at once, on Fargate's default bucket
    packing = plan_packing(count=1_000_000, items_per_task="auto", per_task_concurrency=1,
                           max_concurrency=1_000, **DEFAULT_BUCKET)
    # Then the smallest K of the ladder that launches within ten minutes: 100
    assert packing.items_per_task == 100 and packing.chosen_by == "auto"
    assert packing.tasks == 10_000
    assert packing.launch_span_seconds <= LAUNCH_SPAN_TARGET_SECONDS
    assert launch_span_seconds(20_000, 100, 20.0) > LAUNCH_SPAN_TARGET_SECONDS  # 50 is not
    assert "one item per task: 13.9 h" in packing.why


def test_auto_leaves_a_small_run_unpacked() -> None:
    packing = plan_packing(count=500, items_per_task="auto", per_task_concurrency=1,
                           max_concurrency=10, **DEFAULT_BUCKET)
    assert packing.items_per_task == 1 and not packing.packed
    assert "none are packed" in packing.why


def test_auto_never_leaves_task_slots_idle() -> None:
    # Given 100,000 items on a slow bucket but 10,000 at once: each slot gets 10 items
    packing = plan_packing(count=100_000, items_per_task="auto", per_task_concurrency=1,
                           max_concurrency=10_000, burst=1, per_second=1.0)
    # Then K stops at 10 though the launch still takes longer than the target
    assert packing.items_per_task == 10
    assert packing.launch_span_seconds > LAUNCH_SPAN_TARGET_SECONDS
    assert "capped" in packing.why


def test_auto_carries_at_least_the_items_a_task_runs_at_once() -> None:
    packing = plan_packing(count=30, items_per_task="auto", per_task_concurrency=3,
                           max_concurrency=30, **DEFAULT_BUCKET)
    assert packing.items_per_task == 3 and packing.task_slots == 10


def test_a_given_k_is_kept() -> None:
    packing = plan_packing(count=2_001, items_per_task=10, per_task_concurrency=2,
                           max_concurrency=100, **DEFAULT_BUCKET)
    assert (packing.items_per_task, packing.tasks, packing.task_slots) == (10, 201, 50)
    assert packing.chosen_by == "spec"


@pytest.mark.parametrize(("asked", "expected"), [(None, 1), (7, 7), ("auto", 1)])
def test_the_plan_carries_the_packing(config, asked, expected) -> None:
    raw = {"job": "analyzer", "params": {"year": {"range": {"start": 1999, "stop": 2020}}}}
    if asked is not None:
        raw["items_per_task"] = asked
    plan = plan_run(parse_spec(raw, config), config)
    assert plan.packing.items_per_task == expected


def test_a_job_default_packs_its_runs(make_config) -> None:
    config = make_config(defaults={"items_per_task": 4, "per_task_concurrency": 2})
    spec = parse_spec({"job": "analyzer", "items": [{"year": y} for y in range(9)]}, config)
    plan = plan_run(spec, config)
    assert (plan.packing.items_per_task, plan.packing.per_task_concurrency) == (4, 2)
    assert plan.packing.tasks == 3
    # And nothing is warned about: packed specs run packed (locally)
    assert not any("items_per_task" in w for w in plan.warnings())


def test_expand_plan_prints_the_choice_and_why(tmp_path) -> None:
    # Given a spec of 100,000 items asking for "auto"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"job": "analyzer", "items_per_task": "auto",
                                "max_concurrency": 1000,
                                "params": {"year": {"range": {"start": 0, "stop": 100_000}}}}))
    # When `fanout expand --plan` runs
    done = subprocess.run([sys.executable, "-m", "fanout.cli", "expand", str(spec), "--plan"],
                          capture_output=True, text=True, check=False)
    # Then one JSON object: 10 per task, 10,000 tasks, and why
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["items_per_task"], plan["tasks"], plan["items"]) == (10, 10_000, 100_000)
    assert plan["items_per_task_chosen_by"] == "auto"
    assert "launched in 8 min" in plan["why"] and "83 min" in plan["why"]
    assert "items_per_task 10 (auto)" in done.stderr


def test_start_says_a_packed_spec_runs_in_the_jobs_packed_tasks_on_aws(tmp_path) -> None:
    # Given a packed spec and no AWS region (nothing can be started)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"job": "analyzer", "items": [{"year": 1}],
                                "items_per_task": 5}))
    env = {"PATH": "/usr/bin:/bin", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", **_pythonpath()}
    # When `fanout start` checks it
    done = subprocess.run([sys.executable, "-m", "fanout.cli", "start", str(spec)],
                          capture_output=True, text=True, check=False, env=env, cwd=REPO)
    # Then the user is told which task definition runs the batches, and what a stack
    # deployed without it does, before the region is asked for
    assert "analyzer-packed task definition" in done.stderr
    assert "one item per task" in done.stderr
    assert done.returncode == 2 and "--region" in done.stderr


def _pythonpath() -> dict[str, str]:
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
