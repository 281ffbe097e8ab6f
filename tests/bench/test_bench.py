"""The benchmarks' quick modes: the report's structure and the invariants, not timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def bench_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Quick results go to a temporary folder: bench/out keeps the figures of full runs.
    out = tmp_path / "bench-out"
    monkeypatch.setenv("FANOUT_BENCH_OUT", str(out))
    return out


def run_quick(script: str, out: Path) -> dict[str, Any]:
    import os

    result = subprocess.run([sys.executable, script, "--quick"], cwd=BENCH,
                            capture_output=True, text=True, timeout=300, check=False)
    written = json.loads((Path(os.environ["FANOUT_BENCH_OUT"]) / out).read_text())
    assert written["quick"] is True, result.stderr[-2000:]
    return {"code": result.returncode, "result": written}


def test_cost_quick_counts_every_billed_thing_and_meets_the_transition_target() -> None:
    # Given the quick cost benchmark (20 items, happy path and 10% retried once)
    # When it runs
    outcome = run_quick("cost.py", Path("cost.json"))
    runs = outcome["result"]["runs"]
    # Then both runs succeeded with every item, and the retried one used more attempts
    for run in runs.values():
        assert run["status"] == "SUCCEEDED" and run["succeeded"] == run["items"]
    assert runs["happy"]["attempts"] == runs["happy"]["items"]
    assert runs["retry_10pct"]["attempts"] == runs["retry_10pct"]["items"] * 11 // 10
    # And each billed thing was counted: Launch and Record once per attempt, writes, events
    for run in runs.values():
        assert run["invocations"]["launch"] == run["attempts"] == run["launches"]
        assert run["invocations"]["record"] >= run["attempts"]
        assert run["per_item"]["dynamodb_write_units"] >= 1
        assert run["dynamodb_uncounted"] == 0
        assert run["per_item"]["events"] >= 2
        assert set(run["usd_per_1000"]) >= {"step_functions", "lambda_requests",
                                            "lambda_duration", "dynamodb_writes"}
    # And a retry costs transitions: the retried run has more per item
    assert runs["retry_10pct"]["per_item"]["transitions"] > runs["happy"]["per_item"][
        "transitions"]
    assert runs["happy"]["per_item"]["transitions"] <= 2
    # And every price names its source
    assert all(p["source"] for p in outcome["result"]["prices"].values())


def test_launch_quick_paces_a_storm_without_losing_an_item() -> None:
    # Given the quick launch benchmark (60 items at once against a scaled-down bucket)
    # When it runs
    result = run_quick("launch.py", Path("launch.json"))["result"]
    [run] = result["runs"].values()
    # Then every item succeeded on its first attempt with exactly one task
    assert run["status"] == "SUCCEEDED" and run["lost"] == 0
    assert run["max_attempts"] == 1 and run["launches"] == run["items"]
    # And the gate paced RunTask: fewer throttles than items (without it, several per
    # item), about one transition per item
    assert run["run_task"]["throttled"] < run["items"]
    assert run["transitions_per_item"] <= 1.3
    # And the bucket set the pace (the storm took at least the ideal time)
    assert run["ideal_seconds"] > 0 and run["launch_span_seconds"] >= 0.9 * run["ideal_seconds"]


def test_scale_quick_runs_every_item_to_the_end_and_expands_within_budget() -> None:
    # Given the quick scale benchmark (200 items locally, a 10,000-item matrix expanded)
    # When it runs
    outcome = run_quick("scale.py", Path("scale.json"))
    local, expand = outcome["result"]["local_run"], outcome["result"]["expand"]
    # Then the local run went to the end: every item SUCCEEDED, one task each
    assert local["status"] == "SUCCEEDED" and local["succeeded"] == local["items"] == 200
    assert local["most_tasks_per_item"] == 1 and local["launches"] == 200
    assert local["seconds"] > 0 and local["peak_rss_mb"] > 0
    # And Expand wrote every item's line within the Lambda's memory
    assert expand["total"] == expand["items"] == 10_000
    assert expand["manifest_bytes"] > 10_000 and expand["peak_rss_mb"] <= expand["budget_mb"]
    assert outcome["code"] == 0


def test_report_renders_every_result(tmp_path: Path) -> None:
    # Given results in an output folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "other.json").write_text(json.dumps({"machine": {"cpus": 2}, "figure": 1.5}))
    doc = tmp_path / "benchmarks.md"
    # When the report is written
    subprocess.run([sys.executable, "report.py", str(out), str(doc)], cwd=BENCH, check=True,
                   capture_output=True)
    # Then it names each benchmark and its figures
    text = doc.read_text()
    assert "# Benchmarks" in text and "## other" in text and '"figure": 1.5' in text


def test_dispatcher_quick_launches_every_item_and_prices_its_cpu() -> None:
    # Given the dispatcher draining 60 queued items against moto's server with latency
    outcome = run_quick("dispatcher.py", Path("dispatcher.json"))
    result = outcome["result"]
    # Then every item launched once, and the CPU a launch costs gives a rate per memory size
    assert outcome["code"] == 0 and result["launched"] == result["items"] == 60
    assert result["result"]["gone"] == 0 and result["cpu_ms_per_launch"] > 0
    rates = result["sustained_per_second_by_memory_mb"]
    assert rates["256"] < rates["512"] < rates["1024"] < rates["1769"]


def test_close_quick_closes_both_endings_over_several_invocations() -> None:
    # Given the quick closing benchmark (1,000 items, one page of 200 per invocation)
    # When it runs
    outcome = run_quick("close.py", Path("close.json"))
    result = outcome["result"]
    # Then both endings closed right, in more than one Finalize invocation each
    assert outcome["code"] == 0 and result["met"] is True
    for run in result["runs"].values():
        assert run["closed_right"] and run["invocations"] >= 1000 // 200
        assert run["totals"]["pending"] == 0 and run["totals"]["running"] == 0
    # And the run whose last task still ran had that task stopped
    assert result["runs"]["all_but_one/1000"]["stopped"] == 1
    # And the 1,000,000-item figures say they are extrapolated, within the history limit
    for projected in result["extrapolated"].values():
        assert projected["items"] == 1_000_000 and projected["from_items"] == 1000
        assert projected["history_share"] < 1
