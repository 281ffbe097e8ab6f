"""``fanout local PIPELINE.json``: steps that wait on each other, each an ordinary run.

One small pipeline shows the seed's case and what follows a failure: A, then B (one of
its two items fails); C at any time; D needs B (SKIPPED); E takes its items from B's
succeeded items and runs ``when: always``. Then ``fanout rerun PIPELINE --failed``
reruns B's failed item (now passing) and the steps skipped because of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow

ZERO = {"sleep": 0, "fail": 0}
PIPELINE = {
    "pipeline": "seed",
    "timeout_seconds": 600,
    "steps": {
        "A": {"job": "prog", "items": [{"code": 0, **ZERO}]},
        "B": {"job": "prog", "items": [{"code": 0, **ZERO}, {"code": 1, **ZERO}],
              "needs": ["A"], "retry": {"max_attempts": 1}},
        "C": {"job": "prog", "items": [{"code": 0, **ZERO}]},
        "D": {"job": "prog", "items": [{"code": 0, **ZERO}], "needs": ["B"]},
        "E": {"job": "prog", "items_from": {"step": "B"}, "needs": ["B"], "when": "always"},
    },
}


def fanout(*args: str | Path, records: Path, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fanout.cli", *map(str, args), "--records-dir", str(records)],
        cwd=ROOT, capture_output=True, text=True, timeout=400, check=False,
        env={**os.environ, **(env or {})})


def summary_of(done: subprocess.CompletedProcess[str], code: int) -> Any:
    assert done.returncode == code, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_pipeline_runs_its_steps_in_order_skips_after_a_failure_and_fans_in(
    e2e_stack: Path, tmp_path: Path
) -> None:
    # Given the pipeline, and a test program that saves each task's environment
    spec = tmp_path / "pipeline.json"
    spec.write_text(json.dumps(PIPELINE))
    records, env_dir = tmp_path / "runs", tmp_path / "env"
    env_dir.mkdir()
    passing = tmp_path / "pass"
    env = {"PROG_ENV_DIR": str(env_dir), "PROG_PASS_FILE": str(passing)}

    # When it runs locally
    done = fanout("local", spec, "--config", e2e_stack, "--json", "--run-id", "seed-1",
                  "--reconcile-seconds", "0.2", records=records, env=env)

    # Then it failed because of B, and each step says how it ended and why
    summary = summary_of(done, 1)
    steps = summary["steps"]
    assert summary["status"] == "FAILED"
    assert {n: s["status"] for n, s in steps.items()} == {
        "A": "SUCCEEDED", "B": "FAILED", "C": "SUCCEEDED", "D": "SKIPPED", "E": "SUCCEEDED"}
    assert steps["D"]["reason"] == "needs B (FAILED), which did not succeed"
    assert steps["D"]["run_id"] is None
    # B started only after A succeeded; C did not wait for A
    assert steps["B"]["started_at"] >= steps["A"]["finished_at"]
    assert steps["C"]["started_at"] < steps["A"]["finished_at"]
    # Each step is an ordinary run, linked to its pipeline run
    status = summary_of(fanout("status", "seed-1.B", "--local", "--json", records=records), 0)
    assert status["status"] == "FAILED"
    assert status["spec"]["pipeline_run"] == {"run_id": "seed-1", "step": "B"}
    record = json.loads((records / "seed-1" / "pipeline.json").read_text())
    assert record["steps"]["B"]["run_id"] == "seed-1.B" and record["status"] == "FAILED"
    # E has one item per succeeded item of B: its params and B's output location
    items = summary_of(fanout("items", "seed-1.E", "--local", "--json", records=records), 0)
    assert [i["params"] for i in items] == [{
        "code": 0, **ZERO, "input": str(records.resolve() / "seed-1.B" / "outputs" / "0") + "/"}]
    # ... and a manifest of what the steps it needs wrote, in FANOUT_INPUTS
    (seen,) = [json.loads(p.read_text()) for p in env_dir.glob("seed-1.E-*.json")]
    assert Path(seen["FANOUT_INPUTS"]).is_file()

    # When B's failing item is fixed and the pipeline is rerun for what failed
    passing.write_text("fixed")
    rerun = fanout("rerun", "seed-1", "--failed", "--local", "--json", "--run-id", "seed-2",
                   records=records, env=env)

    # Then only B's failed item ran again, and the steps after B ran; A and C are carried
    again = summary_of(rerun, 0)
    assert again["parent_pipeline_run"] == "seed-1"
    assert again["status"] == "SUCCEEDED"
    assert {n: s["status"] for n, s in again["steps"].items()} == dict.fromkeys(
        "ABCDE", "SUCCEEDED")
    assert again["steps"]["A"]["run_id"] is None and again["steps"]["A"]["runs"] == ["seed-1.A"]
    assert again["steps"]["B"]["runs"] == ["seed-1.B", "seed-2.B"]
    rerun_b = summary_of(fanout("items", "seed-2.B", "--local", "--json", records=records), 0)
    assert [i["params"]["code"] for i in rerun_b] == [1]
    assert summary_of(fanout("status", "seed-2.B", "--local", "--json", records=records),
                      0)["spec"]["pipeline_run"] == {"run_id": "seed-2", "step": "B"}
    # E now takes both of B's succeeded items, from the run each succeeded in
    items = summary_of(fanout("items", "seed-2.E", "--local", "--json", records=records), 0)
    assert sorted(i["params"]["input"] for i in items) == [
        str(records.resolve() / run / "outputs" / index) + "/"
        for run, index in (("seed-1.B", "0"), ("seed-2.B", "0"))]
