"""Packed runs locally: many items per task, each item still alone (docs/decisions/0020).

``items_per_task`` K > 1 makes the dispatcher start one task per batch of K items (in index
order) and the batch runner (fanout/local/packed.py) run them in that task; every item keeps
its own record, attempts, retries, timeout, log and share of the task's cost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, records_dir

pytestmark = pytest.mark.slow

#: 0.25 vCPU and 0.5 GB on ARM, per second (the e2e config's job size, default prices).
PER_SECOND = (0.25 * 0.03238 + 0.5 * 0.00356) / 3600


def fanout(*args: str | Path, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fanout.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def run_spec(tmp_path: Path, config: Path, spec: dict[str, Any], *extra: str,
             code: int = 0) -> dict[str, Any]:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    done = fanout("local", path, "--config", config, "--json",
                  "--records-dir", records_dir(tmp_path), *extra)
    assert done.returncode == code, done.stderr[-3000:]
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def by_index(summary: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(i["index"]): i for i in summary["items"]}


def attempts_of(summary: dict[str, Any]) -> list[dict[str, Any]]:
    lines = (Path(summary["records"]) / "records.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["record"] == "attempt"]


def test_each_item_of_a_packed_run_has_its_record_log_retries_and_share(
        e2e_stack: Path, tmp_path: Path) -> None:
    # Given five items packed three to a task; item 1 fails its first attempt
    spec = {"job": "prog", "items_per_task": 3,
            "items": [{"code": 0, "sleep": 0.11 + i / 100, "fail": int(i == 1)}
                      for i in range(5)],
            "retry": {"max_attempts": 3, "delay_seconds": 0}}

    # When the run ends
    summary = run_spec(tmp_path, e2e_stack, spec)

    # Then every item SUCCEEDED and the totals count items, not tasks
    items = by_index(summary)
    assert summary["status"] == "SUCCEEDED"
    assert (summary["total"], summary["succeeded"]) == (5, 5)
    assert {i["status"] for i in items.values()} == {"SUCCEEDED"}
    # And items 0-2 went in one task, 3-4 in another: two launches, one more for the retry
    first = items[0]["tasks"][0]
    assert items[1]["tasks"][0] == first and items[2]["tasks"] == [first]
    assert items[3]["tasks"] == items[4]["tasks"] != [first]
    assert summary["launch"]["run_task_calls"] == 3
    # And the map ran one child execution per batch, not per item
    assert summary["child_executions"] == 2
    # And item 1 was retried alone: a task of its own; its batch-mates ran once
    assert items[1]["attempts"] == 2 and (items[0]["attempts"], items[2]["attempts"]) == (1, 1)
    retried_in = items[1]["tasks"][1]
    assert all(retried_in not in i["tasks"] for n, i in items.items() if n != 1)

    # And `fanout logs RUN 1` shows item 1's own lines, per attempt, none of its mates'
    where = ("--local", "--records-dir", records_dir(tmp_path), "--config", e2e_stack)
    logs = fanout("logs", summary["run_id"], "1", *where)
    assert logs.returncode == 0, logs.stderr
    assert "== attempt 1: exit code 1" in logs.stdout and "== attempt 2" in logs.stdout
    assert "[attempt 1] attempt 1: sleeping 0.12s" in logs.stdout
    assert "[attempt 2] attempt 2: exit 0" in logs.stdout
    assert "0.11s" not in logs.stdout and "0.13s" not in logs.stdout
    assert "[fanout item=" not in logs.stdout

    # And each attempt costs its share of its task: three tasks under a minute, each billed
    # 60 s, shared among the items it ran (not 60 s per attempt)
    assert summary["cost"]["compute_usd"] == round(3 * 60 * PER_SECOND, 6)
    shares = [a["cost_usd"] for a in attempts_of(summary)]
    assert len(shares) == 6
    assert sum(shares) == pytest.approx(3 * 60 * PER_SECOND, abs=1e-5)
    # (the retry alone paid a whole task; the others about a third or a half of one)
    assert sum(share > 31 * PER_SECOND for share in shares) == 1


def test_a_timed_out_item_is_stopped_alone_and_rerun_failed_reruns_it(
        e2e_stack: Path, tmp_path: Path) -> None:
    # Given three items in one task, a 2 s timeout, no retry; item 0 sleeps 60 s
    spec = {"job": "prog", "items_per_task": 3, "timeout_seconds": 2,
            "items": [{"code": 0, "sleep": s, "fail": 0} for s in (60, 0, 0)],
            "retry": {"max_attempts": 1, "on_timeout": False}}

    # When the run ends
    summary = run_spec(tmp_path, e2e_stack, spec, code=1)

    # Then item 0 TIMED_OUT after its own 2 s; its process was stopped, not the task:
    # items 1 and 2 ran after it in the same task and SUCCEEDED
    items = by_index(summary)
    assert summary["status"] == "FAILED" and summary["elapsed_seconds"] < 50
    assert (summary["timed_out"], summary["succeeded"]) == (1, 2)
    assert items[0]["status"] == "TIMED_OUT"
    assert items[0]["tasks"] == items[1]["tasks"] == items[2]["tasks"]
    assert summary["launch"]["run_task_calls"] == 1 and summary["child_executions"] == 1
    timed_out = [a for a in attempts_of(summary) if a["index"] == 0]
    assert timed_out[0]["reason"] == "timed out after 2 s"

    # When its failed items are rerun
    where = ("--local", "--records-dir", records_dir(tmp_path), "--config", e2e_stack)
    rerun = fanout("rerun", summary["run_id"], "--failed", "--json", *where)
    # Then only item 0 ran again (packed as its parent was), linked to its parent
    assert rerun.returncode == 1, rerun.stderr[-3000:]
    child = json.loads(rerun.stdout)
    assert [(i["params"]["sleep"], i["status"]) for i in child["items"]] == [(60, "TIMED_OUT")]
    status = json.loads(fanout("status", child["run_id"], "--json", *where).stdout)
    assert (status["parent_run_id"], status["total"]) == (summary["run_id"], 1)


def test_a_task_interrupted_mid_batch_sends_its_unstarted_items_back_unspent(
        e2e_stack: Path, tmp_path: Path) -> None:
    # Given three items in one Spot task (then on-demand); item 0 runs 6 s, and every Spot
    # task is interrupted 3 s after it starts
    spec = {"job": "prog", "items_per_task": 3, "capacity": "FARGATE_SPOT_THEN_FARGATE",
            "items": [{"code": 0, "sleep": s, "fail": 0} for s in (6, 0, 0)],
            "retry": {"max_attempts": 1, "on_infrastructure": False}}

    # When the run ends
    summary = run_spec(tmp_path, e2e_stack, spec, "--faults", "spot=1.0,spot_after=3,seed=1")

    # Then every item SUCCEEDED
    items = by_index(summary)
    assert summary["status"] == "SUCCEEDED", summary
    # And item 0, running when the task was interrupted, spent that attempt (Spot
    # interruption) and succeeded on-demand in a task of its own
    first = items[0]["tasks"][0]
    assert items[0]["attempts"] == 2
    interrupted = [a for a in attempts_of(summary) if a["task_arn"] == first]
    assert [(a["index"], a["reason"]) for a in interrupted] == [(0, "Spot interruption")]
    # And items 1 and 2, never started by that task, went back to the queue without
    # spending an attempt: their one attempt ran in a later task, together
    assert (items[1]["attempts"], items[2]["attempts"]) == (1, 1)
    assert items[1]["tasks"] == items[2]["tasks"] and first not in items[1]["tasks"]
    # And all of it was one child execution's turns
    assert summary["child_executions"] == 1


def test_a_packed_run_makes_one_task_and_one_child_execution_per_batch(
        e2e_stack: Path, tmp_path: Path) -> None:
    # Given twelve short items, four to a task, all at once
    spec = {"job": "prog", "items_per_task": 4,
            "items": [{"code": 0, "sleep": 0.05, "fail": 0} for _ in range(12)]}

    # When the run ends
    summary = run_spec(tmp_path, e2e_stack, spec)

    # Then its twelve items SUCCEEDED in exactly three tasks, each of four items in index
    # order, launched by exactly three child executions of the map
    items = by_index(summary)
    assert summary["status"] == "SUCCEEDED" and summary["succeeded"] == 12
    assert summary["launch"]["run_task_calls"] == 3
    assert summary["child_executions"] == 3
    tasks = [items[i]["tasks"] for i in range(12)]
    assert all(len(t) == 1 for t in tasks)
    assert [len({t[0] for t in tasks[b * 4:b * 4 + 4]}) for b in range(3)] == [1, 1, 1]
    assert len({t[0] for t in tasks}) == 3

    # When the same items run one to a task
    (tmp_path / "one").mkdir()
    single = run_spec(tmp_path / "one", e2e_stack, {**spec, "items_per_task": 1})
    # Then each item is a task and a child execution of its own, as before packing
    assert (single["launch"]["run_task_calls"], single["child_executions"]) == (12, 12)
