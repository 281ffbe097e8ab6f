"""Benchmark: expanding a 1,000,000-item run spec to JSON Lines.

fanout's expansion (``Plan.json_lines``) against the straightforward loop
(``itertools.product``, ``str.format`` per argument, ``json.dumps`` per item), each in its
own process so that each one's peak RSS is measured alone: a fresh measuring process
runs one worker and reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss``. Both write the same
file (checked by hash). Prints items/s, the ratio and peak RSS; writes bench/out/expand.json.

    .venv/bin/python bench/expand.py [--size 1000]   # size x size items
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = Path(os.environ.get("FANOUT_BENCH_OUT", HERE / "out")) / "expand.json"

COMMAND = ["--year", "{year}", "--region", "{region}", "--out", "s3://results/{run_id}/{year}"]
ENVIRONMENT = {"REGION": "{region}", "ITEM": "{index}", "TAG": "{year}-{region}"}
RUN_ID = "bench-run"
TARGET_RATIO = 2.0
TARGET_RSS_MB = 150.0
QUICK_SIZE = 300


def spec(size: int) -> dict[str, Any]:
    return {
        "job": "analyzer",
        "params": {
            "year": {"range": {"start": 1000, "stop": 1000 + size}},
            "region": [f"region-{i:04d}" for i in range(size)],
        },
        "command": COMMAND,
        "environment": ENVIRONMENT,
    }


# --- workers (each runs in its own process) --------------------------------------------------


def work_fanout(size: int, path: Path) -> tuple[int, float]:
    sys.path.insert(0, str(REPO))
    from fanout.config import load_config
    from fanout.spec.plan import plan_run
    from fanout.spec.validate import parse_spec

    context = json.loads((REPO / "cdk.json").read_text())["context"]["fanout"]
    context["limits"]["max_items_per_run"] = max(size * size, 1)
    config = load_config(context)
    started = time.perf_counter()
    plan = plan_run(parse_spec(spec(size), config), config, run_id=RUN_ID)
    count = 0
    with path.open("w") as out:
        batch: list[str] = []
        for line in plan.json_lines():
            batch.append(line)
            if len(batch) == 4096:
                batch.append("")
                out.write("\n".join(batch))
                count += len(batch) - 1
                batch.clear()
        if batch:
            count += len(batch)
            batch.append("")
            out.write("\n".join(batch))
    return count, time.perf_counter() - started


def work_straightforward(size: int, path: Path) -> tuple[int, float]:
    import itertools

    raw = spec(size)
    year = raw["params"]["year"]["range"]
    years = range(year["start"], year["stop"])
    regions = raw["params"]["region"]
    started = time.perf_counter()
    count = 0
    with path.open("w") as out:
        for index, (y, r) in enumerate(itertools.product(years, regions)):
            values = {"year": y, "region": r, "index": index, "run_id": RUN_ID}
            item = {
                "index": index,
                "params": {"year": y, "region": r},
                "command": [arg.format(**values) for arg in COMMAND],
                "environment": {k: v.format(**values) for k, v in ENVIRONMENT.items()},
            }
            out.write(json.dumps(item, separators=(",", ":")) + "\n")
            count += 1
    return count, time.perf_counter() - started


WORKERS = {"fanout": work_fanout, "straightforward": work_straightforward}


def measure(name: str, size: int, path: Path) -> dict[str, Any]:
    """Run one worker as this process's only child; its peak RSS is RUSAGE_CHILDREN's."""
    done = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--size", str(size), "--path", str(path)],
        capture_output=True, text=True, check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    # ru_maxrss is in KiB on Linux.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    result["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    result["bytes"] = path.stat().st_size
    return result


def _machine() -> dict[str, object]:
    sys.path.insert(0, str(HERE))
    from _local import machine

    return machine()


def _document(summary: dict[str, Any], size: int) -> None:
    """The figures into docs/benchmarks.json (a full or a quick run of the default sizes)."""
    if size not in (1000, QUICK_SIZE):
        return
    sys.path.insert(0, str(HERE))
    from _figures import figure, record

    quick = size == QUICK_SIZE
    suffix, command = ("_quick", "bench/expand.py --quick") if quick else ("", "bench/expand.py")
    items = f"{summary['items']:,} items"
    figures = {f"expand_ratio{suffix}": figure(
        summary["ratio"], "x", better="higher", target=TARGET_RATIO, command=command,
        what=f"expansion speed vs the straightforward loop, {items}")}
    if not quick:
        figures["expand_peak_rss_mb"] = figure(
            summary["fanout"]["peak_rss_mb"], "MB", better="lower", target=TARGET_RSS_MB,
            command=command, what=f"expansion peak RSS, {items}")
    record(figures, summary["machine"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None,
                        help="items per axis (default 1000; --quick: 300)")
    parser.add_argument("--quick", action="store_true",
                        help="300 x 300 items (what make test re-runs: tests/bench)")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--measure", choices=sorted(WORKERS))
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else 1000
    if args.worker:
        count, seconds = WORKERS[args.worker](args.size, args.path)
        print(json.dumps({"items": count, "seconds": round(seconds, 3),
                          "items_per_second": round(count / seconds)}))
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure, args.size, args.path)))
        return 0

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("straightforward", "fanout"):
            path = Path(tmp) / f"{name}.jsonl"
            done = subprocess.run(
                [sys.executable, __file__, "--measure", name, "--size", str(args.size),
                 "--path", str(path)],
                capture_output=True, text=True, check=True,
            )
            results[name] = json.loads(done.stdout)
    fast, slow = results["fanout"], results["straightforward"]
    ratio = fast["items_per_second"] / slow["items_per_second"]
    summary = {
        "benchmark": "expand",
        "items": fast["items"],
        "python": platform.python_version(),
        "machine": _machine(),
        "fanout": fast,
        "straightforward": slow,
        "ratio": round(ratio, 2),
        "same_output": fast["sha256"] == slow["sha256"],
        "targets": {"ratio_at_least": TARGET_RATIO, "peak_rss_mb_under": TARGET_RSS_MB},
        "met": ratio >= TARGET_RATIO and fast["peak_rss_mb"] < TARGET_RSS_MB
        and fast["sha256"] == slow["sha256"],
    }
    summary["quick"] = args.quick
    out = OUT.with_name("expand_quick.json") if args.quick else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    _document(summary, args.size)
    print(f"items:            {fast['items']:,} ({fast['bytes'] / 1e6:.0f} MB of JSON Lines)")
    for name, r in (("fanout", fast), ("straightforward", slow)):
        print(f"{name:16s}  {r['items_per_second']:>10,} items/s  {r['seconds']:6.2f} s  "
              f"peak RSS {r['peak_rss_mb']:6.1f} MB")
    print(f"ratio:            {ratio:.2f}x (target >= {TARGET_RATIO}x)")
    print(f"same output:      {summary['same_output']}")
    print(f"targets met:      {summary['met']}  -> {out}")
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
