"""How runs end in the local mode: the Spot fallback, and a stop with launches in flight."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    SPECS,
    alive,
    parse,
    pids,
    records_dir,
    signalled_run,
)

pytestmark = pytest.mark.slow


def records(where: str) -> list[dict[str, object]]:
    lines = (Path(where) / "records.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def attempt_records(where: str) -> list[dict[str, object]]:
    return sorted((r for r in records(where) if r["record"] == "attempt"),
                  key=lambda r: (int(str(r["index"])), int(str(r["attempt"]))))


def test_spot_interruption_with_one_attempt_succeeds_on_demand(e2e_stack, fanout_local):
    # Given one item on Spot then on-demand, one attempt allowed and no retry of
    # infrastructure failures, and every Spot task interrupted
    spec = SPECS / "spot_once.json"

    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack, "--faults", "spot=1.0,seed=3")

    # Then the item SUCCEEDED on FARGATE after its Spot attempt was interrupted
    assert outcome.code == 0, outcome.stderr[-3000:]
    assert outcome.summary["status"] == "SUCCEEDED"
    assert outcome.summary["faults"] == {"spot": 1}
    [item] = outcome.items()
    assert (item["status"], item["attempts"], item["exit_code"]) == ("SUCCEEDED", 2, 0)
    assert len(item["tasks"]) == 2
    first, second = attempt_records(outcome.summary["records"])
    assert (first["capacity"], first["reason"]) == ("FARGATE_SPOT", "Spot interruption")
    assert (second["capacity"], second["status"]) == ("FARGATE", "SUCCEEDED")


def test_ctrl_c_with_launches_in_flight_leaves_no_orphan(e2e_stack, pid_dir, tmp_path):
    # Given a run of four long items whose RunTask calls answer 3 s after their tasks start
    env = {**os.environ, "PROG_PID_DIR": str(pid_dir)}
    # When Ctrl-C comes as soon as a task runs (its launch still in flight)
    code, stdout, stderr = signalled_run(
        [SPECS / "inflight.json", "--config", e2e_stack, "--json", "--faults", "launch_latency=3",
         "--records-dir", records_dir(tmp_path)],
        signal.SIGINT, lambda: len(pids(pid_dir)) >= 1, "a running task", env=env,
        end_timeout=90,
    )
    outcome = parse(code, stdout, stderr)

    # Then the run is ABORTED, every item too, and the control plane stopped every task
    # it started: none was left for the local mode to stop on its way out
    assert outcome.code == 1, stderr[-3000:]
    summary = outcome.summary
    assert summary["status"] == "ABORTED"
    assert {i["status"] for i in outcome.items()} == {"ABORTED"}
    assert summary["orphans"] == 0
    started = pids(pid_dir)
    assert started and sum(len(i["tasks"]) for i in outcome.items()) == len(started)
    assert [p for p in started if alive(p)] == []
    # And the ending was announced (by Abort)
    [run] = [r for r in records(summary["records"]) if r["record"] == "run"]
    assert (run["status"], run["notified"]) == ("ABORTED", True)
