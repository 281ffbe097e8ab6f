"""The documented benchmark figures still hold: the cheap benchmarks re-run against them.

docs/benchmarks.json holds every documented figure (written by the benchmarks, with the
commit and date measured). Here the cheap ones run again (local mode overhead at 200 items,
expansion at 90,000 items, the dashboard's server times at 1,000 items and 100 runs) and a
figure more than 2x worse than documented, or past its target, fails the change that made
it so. The 2x is for the machine: ``make test`` runs two workers side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

from _figures import SLACK, documented, problem  # noqa: E402

#: script and flags -> (its results file, {documented figure: where it is in the results})
CHECKED: dict[tuple[str, ...], tuple[str, dict[str, tuple[str, ...]]]] = {
    ("local_overhead.py", "--quick"): (
        "local_overhead_quick.json",
        # Over a reference workload timed beside it: make test's other worker loads the
        # machine, and slows the reference as much as the run.
        {"local_overhead_200_per_reference": ("runs", "200", "overhead_per_reference")}),
    ("expand.py", "--quick"): ("expand_quick.json", {"expand_ratio_quick": ("ratio",)}),
    ("ui.py", "--quick", "--no-browser"): (
        "ui_quick.json", {"ui_run_page_quick_per_reference": ("run_page", "per_reference"),
                          "ui_runs_page_quick_per_reference": ("runs_page", "per_reference")}),
}


def dig(result: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = result
    for key in path:
        value = value[key]
    return float(value)


@pytest.mark.parametrize("command", list(CHECKED), ids=lambda c: " ".join(c))
def test_a_cheap_benchmark_is_within_2x_of_its_documented_figures_and_meets_its_target(
        command: tuple[str, ...], tmp_path: Path) -> None:
    # Given the figures documented for this benchmark
    results_file, figures = CHECKED[command]
    known = documented()
    missing = sorted(set(figures) - set(known))
    assert not missing, f"not documented in docs/benchmarks.json: {missing}; run make bench"
    # When the benchmark runs again (its results to a temporary folder: it documents nothing)
    env = {**os.environ, "FANOUT_BENCH_OUT": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *command], cwd=BENCH, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    path = tmp_path / results_file
    assert path.exists(), done.stderr[-3000:]
    result = json.loads(path.read_text())
    # Then each figure is within 2x of its documented value and meets its target
    problems = [p for name, where in figures.items()
                if (p := problem(name, dig(result, where), known[name])) is not None]
    assert problems == [], problems


def test_a_figure_fails_when_2x_worse_or_past_its_target() -> None:
    # Given a lower-is-better figure of 10 ms (target 15) and a higher-is-better one of 8x
    # (target 2)
    ms = {"value": 10.0, "unit": "ms", "better": "lower", "target": 15.0,
          "commit": "abc1234", "date": "2026-12-04 16:00 UTC"}
    ratio = {**ms, "value": 8.0, "unit": "x", "better": "higher", "target": 2.0}
    # Then a figure within its slack and target passes
    assert problem("ms", 14.9, ms) is None and problem("ratio", 4.1, ratio) is None
    # And one past its target fails, naming the target and the documented commit
    past = problem("ms", 15.5, ms)
    assert past is not None and "target <= 15" in past and "abc1234" in past
    # And one more than 2x worse than documented fails, target or not
    assert "over 2x" in str(problem("ms", 21.0, {**ms, "target": None}))
    assert "under 1/2" in str(problem("ratio", 3.9, ratio))
    assert problem("ratio", 1.9, {**ratio, "value": 3.0}) is not None  # past the target
    assert SLACK == 2.0
