"""The local pipeline's loop (fanout.local.pipeline) over a stand-in for ``fanout local``:
what starts when, the timeout, a step that cannot run. No emulated AWS: each step's
process is a small script that ends as its spec's first item says."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from fanout.local.pipeline import LocalPipeline, PipelineOptions
from fanout.pipelines.model import Pipeline, Step

#: Stands in for ``python -m fanout.cli local SPEC ...``: sleeps ``sleep`` seconds (a
#: SIGTERM ends it as an interrupted ``fanout local`` ends: exit 1, no summary), then
#: prints a summary whose status is the item's ``status``.
STAND_IN = '''
import json, sys, time
args = sys.argv[sys.argv.index("local") + 1:]
item = json.load(open(args[0]))["items"][0]
time.sleep(item.get("sleep", 0))
print(json.dumps({"status": item["status"], "total": 1,
                  "succeeded": int(item["status"] == "SUCCEEDED")}))
'''


def run(tmp_path: Path, timeout: int | None = None, **steps: tuple[str, float, tuple[str, ...]],
        ) -> dict[str, Any]:
    script = tmp_path / "stand_in.sh"
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    # Called as ``<python> -m fanout.cli local ...``: the stand-in drops "-m fanout.cli".
    script.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {tmp_path}/stand_in.py "$@"\n')
    script.chmod(0o755)
    pipeline = Pipeline("p", {
        name: Step(name, {"job": "j", "items": [{"status": status, "sleep": sleep}],
                         "environment": {}}, needs,
                   "always" if name.startswith("always") else "on_success")
        for name, (status, sleep, needs) in steps.items()}, timeout_seconds=timeout)
    options = PipelineOptions(config_path=tmp_path / "cdk.json", records_dir=tmp_path / "runs",
                              run_id="p-1", python=str(script))
    return LocalPipeline(pipeline, {}, options).run()


def statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {name: step["status"] for name, step in summary["steps"].items()}


def test_steps_start_in_order_and_a_failure_skips_what_needs_it(tmp_path: Path) -> None:
    summary = run(tmp_path, A=("SUCCEEDED", 0, ()), B=("FAILED", 0, ("A",)),
                  C=("SUCCEEDED", 0, ()), D=("SUCCEEDED", 0, ("B",)),
                  always_E=("SUCCEEDED", 0, ("B",)))
    assert statuses(summary) == {"A": "SUCCEEDED", "B": "FAILED", "C": "SUCCEEDED",
                                 "D": "SKIPPED", "always_E": "SUCCEEDED"}
    assert summary["status"] == "FAILED"
    assert summary["steps"]["B"]["started_at"] >= summary["steps"]["A"]["finished_at"]
    record = json.loads((tmp_path / "runs" / "p-1" / "pipeline.json").read_text())
    assert record["status"] == "FAILED" and record["steps"]["D"]["reason"] == \
        "needs B (FAILED), which did not succeed"


def test_the_pipeline_timeout_stops_running_steps_and_skips_the_rest(tmp_path: Path) -> None:
    began = time.monotonic()
    summary = run(tmp_path, timeout=1, A=("SUCCEEDED", 30, ()), B=("SUCCEEDED", 0, ("A",)))
    assert time.monotonic() - began < 15  # A was stopped, not waited for
    assert summary["status"] == "TIMED_OUT"
    assert summary["reason"] == "the pipeline timed out after 1 s"
    assert statuses(summary) == {"A": "ABORTED", "B": "SKIPPED"}
    assert summary["steps"]["B"]["reason"] == "the pipeline timed out after 1 s"
