"""Local runs as runs: why an item failed, every attempt, reruns, cost, stop (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, alive, fanout_command, pids, records_dir, wait_for

pytestmark = pytest.mark.slow

#: Item 1 exits 3 after printing its last words on stderr; 2 attempts each.
FATAL_SPEC = {
    "job": "prog",
    "items": [{"code": 0}, {"code": 3}, {"code": 0}],
    "command": ["--exit", "{code}", "--say", "FATAL: giving up"],
    "retry": {"max_attempts": 2, "delay_seconds": 0},
}


def fanout(*args: str | Path, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fanout.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def as_json(done: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    assert done.returncode == code, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_local_run_is_a_run_with_reasons_attempts_reruns_and_cost(
        e2e_stack: Path, tmp_path: Path) -> None:
    runs = records_dir(tmp_path)
    where = ("--local", "--records-dir", runs, "--config", e2e_stack)
    spec = tmp_path / "fatal.json"
    spec.write_text(json.dumps(FATAL_SPEC))

    # Given a local run where item 1 exits 3 after printing "FATAL: giving up" on stderr
    table = fanout("local", spec, "--config", e2e_stack, "--records-dir", runs)
    assert table.returncode == 1, table.stderr[-3000:]
    run_id = next(p.name for p in runs.iterdir())
    # Then the summary table has a reason column that says it
    assert "reason" in table.stdout and "exit code 3" in table.stdout
    assert "estimated cost on AWS" in table.stdout

    # And `fanout items --local --json` carries the reason and the log's last lines
    items = as_json(fanout("items", run_id, "--json", *where))
    assert [(i["status"], i["reason"]) for i in items] == [
        ("SUCCEEDED", None), ("FAILED", "exit code 3"), ("SUCCEEDED", None)]
    assert items[1]["log_tail"][-1] == "FATAL: giving up"
    assert items[0]["log_tail"] == []

    # And `fanout items RUN 1 --local` shows every attempt
    detail = as_json(fanout("items", run_id, "1", "--json", *where))
    assert [(a["attempt"], a["exit_code"], a["reason"], a["capacity"])
            for a in detail["attempts"]] == [(1, 3, "exit code 3", "FARGATE"),
                                                 (2, 3, "exit code 3", "FARGATE")]
    text = fanout("items", run_id, "1", *where)
    assert text.returncode == 0 and "attempt" in text.stdout and "FATAL: giving up" in text.stdout

    # And its cost: 4 attempts (each under a minute: billed 60 s) of 0.25 vCPU, 0.5 GB ARM
    status = as_json(fanout("status", run_id, "--json", *where))
    attempts = sum(i["attempt_count"] for i in items)
    assert attempts == 4
    per_second = (0.25 * 0.03238 + 0.5 * 0.00356) / 3600
    assert status["cost"]["compute_usd"] == round(attempts * 60 * per_second, 6)
    assert status["cost"]["total_usd"] == round(
        status["cost"]["compute_usd"] + status["cost"]["control_plane_usd"], 6)
    assert (status["status"], status["counts"]["FAILED"], status["trigger"]) == (
        "FAILED", 1, "local")

    # When the failed items are rerun locally
    rerun = as_json(fanout("rerun", run_id, "--failed", "--json", *where), code=1)
    # Then only item 1 ran, linked to its parent
    assert [i["params"] for i in rerun["items"]] == [{"code": 3}]
    child = as_json(fanout("status", rerun["run_id"], "--json", *where))
    assert (child["parent_run_id"], child["total"]) == (run_id, 1)

    # And `fanout runs --local` lists both, newest first
    listed = as_json(fanout("runs", "--json", *where))
    assert [r["run_id"] for r in listed] == [rerun["run_id"], run_id]

    # And item 2 alone can be rerun; an index the run lacks is exit 2
    alone = as_json(fanout("rerun", run_id, "--item", "2", "--json", *where))
    assert [i["params"] for i in alone["items"]] == [{"code": 0}]
    assert alone["status"] == "SUCCEEDED"
    bad = fanout("rerun", run_id, "--item", "7", *where)
    assert bad.returncode == 2 and "has no item 7" in bad.stderr
    unknown = fanout("status", "no-such-run", *where)
    assert unknown.returncode == 2 and "no run 'no-such-run'" in unknown.stderr

    # And `fanout logs --local` heads each attempt with its reason
    logs = fanout("logs", run_id, "1", *where)
    assert logs.returncode == 0
    assert "== attempt 1: exit code 3" in logs.stdout and "[attempt 2] FATAL: giving up" \
        in logs.stdout


def test_an_items_from_spec_runs_locally_with_a_local_copy_of_its_object(
        e2e_stack: Path, tmp_path: Path) -> None:
    # Given an items_from spec and a local copy of its object (JSON Lines)
    objects = tmp_path / "items.jsonl"
    objects.write_text('{"code": 0}\n{"code": 0}\n')
    spec = tmp_path / "from.json"
    spec.write_text(json.dumps({"job": "prog", "items_from": "s3://my-inputs/todo.jsonl",
                                "command": ["--exit", "{code}"]}))
    # When it runs locally with --items
    done = fanout("local", spec, "--items", objects, "--json", "--config", e2e_stack,
                  "--records-dir", records_dir(tmp_path))
    # Then its items are the object's
    summary = as_json(done)
    assert (summary["status"], summary["total"]) == ("SUCCEEDED", 2)


def test_stop_local_aborts_a_running_local_run(e2e_stack: Path, tmp_path: Path) -> None:
    runs = records_dir(tmp_path)
    where = ("--local", "--records-dir", runs, "--config", e2e_stack)
    spec = tmp_path / "slow.json"
    spec.write_text(json.dumps({"job": "prog", "items": [{"code": 0}, {"code": 0}],
                                "command": ["--exit", "{code}", "--sleep", "120"]}))
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    # Given a local run whose two tasks run for two minutes, both started
    with open(tmp_path / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            fanout_command(spec, "--config", e2e_stack, "--records-dir", runs, "--json",
                           "--run-id", "slow-run"),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
            env={**os.environ, "PROG_PID_DIR": str(pid_dir)})
    try:
        wait_for(lambda: len(pids(pid_dir)) == 2, 120, "both tasks to start")
        status = as_json(fanout("status", "slow-run", "--json", *where))
        assert status["status"] == "RUNNING"
        # When it is stopped, waiting for it
        stopped = fanout("stop", "slow-run", "--wait", *where)
        # Then it ended ABORTED well before its tasks would have, every item ABORTED
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped: ABORTED" in stopped.stdout
        items = as_json(fanout("items", "slow-run", "--json", *where))
        assert {i["status"] for i in items} == {"ABORTED"}
        assert not [pid for pid in pids(pid_dir) if alive(pid)]
        process.wait(timeout=60)
    finally:
        process.kill()
    # And stopping it again is exit 0 (it has ended); an unknown run is exit 2
    assert fanout("stop", "slow-run", *where).returncode == 0
    assert fanout("stop", "nope", *where).returncode == 2
