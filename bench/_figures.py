"""The documented figures: one machine-readable place, docs/benchmarks.json.

Each benchmark records what it measured there (value, unit, which way is better, target,
the commit and date it was measured at, the command); bench/report.py prints them in
docs/benchmarks.md, and tests/bench/test_figures.py re-runs the cheap ones and compares.

A run with ``FANOUT_BENCH_OUT`` set (a test's, a quick look) writes its results there and
leaves the documented figures alone: only a real benchmark run documents a figure.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIGURES = REPO / "docs" / "benchmarks.json"
#: How much worse than documented a re-measured figure may be before the check fails: the
#: check runs beside another test worker (``pytest -n 2``) on a shared machine.
SLACK = 2.0


def documented() -> dict[str, dict[str, Any]]:
    """Every documented figure by name."""
    if not FIGURES.exists():
        return {}
    figures: dict[str, dict[str, Any]] = json.loads(FIGURES.read_text())["figures"]
    return figures


def figure(value: float, unit: str, *, better: str, command: str, what: str,
           target: float | None = None) -> dict[str, Any]:
    """One figure; ``better`` is ``lower`` or ``higher``."""
    assert better in ("lower", "higher"), better
    return {"value": value, "unit": unit, "better": better, "target": target,
            "command": command, "what": what}


def record(figures: dict[str, dict[str, Any]], machine: dict[str, Any]) -> Path | None:
    """Document ``figures`` (measured on ``machine``: its commit and date go with each)."""
    if os.environ.get("FANOUT_BENCH_OUT"):
        return None
    current = documented()
    for name, entry in figures.items():
        current[name] = {**entry, "commit": machine["commit"], "date": machine["date"],
                         "cpus": machine.get("cpus"), "python": machine.get("python")}
    FIGURES.write_text(json.dumps({
        "about": "Written by the benchmarks in bench/ (each figure with the commit and the "
                 "date it was measured at); read by bench/report.py and tests/bench.",
        "figures": dict(sorted(current.items())),
    }, indent=2) + "\n")
    return FIGURES


def problem(name: str, measured: float, entry: dict[str, Any], slack: float = SLACK) -> str | None:
    """Why ``measured`` fails the documented ``entry``: more than ``slack`` times worse than
    documented, or past its target. None when it passes."""
    value, target, unit = float(entry["value"]), entry.get("target"), entry["unit"]
    where = f"(documented {value:g} {unit} at {entry['commit']}, {entry['date']})"
    if entry["better"] == "lower":
        if measured > value * slack:
            return f"{name}: {measured:g} {unit} is over {slack:g}x the documented {where}"
        if target is not None and measured > float(target):
            return f"{name}: {measured:g} {unit} misses its target <= {target:g} {where}"
    else:
        if measured < value / slack:
            return f"{name}: {measured:g} {unit} is under 1/{slack:g} of the documented {where}"
        if target is not None and measured < float(target):
            return f"{name}: {measured:g} {unit} misses its target >= {target:g} {where}"
    return None


def reference_ms(samples: int = 5) -> float:
    """Median time of a fixed pure-Python workload (parsing and walking JSON, the local
    mode's and the dashboard's kind of work): what this machine's one core gives right
    now. The quick checks divide their times by it, so a loaded machine (make test's other
    worker) slows both sides of the ratio."""
    text = json.dumps([{"index": i, "params": {"year": 1999 + i % 21}, "status": "RUNNING",
                        "attempts": [{"n": n, "exit_code": 0} for n in range(3)]}
                       for i in range(2000)])
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        for _ in range(10):
            sum(len(str(record)) for record in json.loads(text))
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000
