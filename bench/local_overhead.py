"""Benchmark: what the local control plane adds per item, over the program's own run time.

500 items of the bench deployment's ``noop`` job at concurrency 50. The ideal wall time
is what 50 slots would take to run 500 such processes back to back (the measured
duration of one, times 500 / 50); the overhead per item is the execution's wall time
(StartExecution until every item is settled) less the ideal, over the item count.
Stack stand-up (moto resources, handler imports) is reported apart: it is paid once per
run, not per item. Writes bench/out/local_overhead.json.

    .venv/bin/python bench/local_overhead.py [--items 500] [--concurrency 50] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _local import CONFIG, machine, noop_spec, write_out  # noqa: E402

TARGET_MS_PER_ITEM = 25.0


def noop_seconds(samples: int = 30) -> float:
    """Median wall time of one run of the noop job's local command, item ``fail=0``."""
    from fanout.config import load_config_file

    command = [*load_config_file(CONFIG).jobs["noop"].local_command, "0"]
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        subprocess.run(command, env={"FANOUT_ATTEMPT": "1", "PATH": "/usr/bin:/bin"},
                       check=True)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def measure(items: int, concurrency: int) -> dict[str, Any]:
    from fanout.local.runner import LocalOptions, LocalRun

    phases: dict[str, float] = {}

    class Timed(LocalRun):
        def _execute(self, stack: Any, document: dict[str, Any], run_id: str,
                     started: float) -> dict[str, Any]:
            phases["stand_up_seconds"] = time.monotonic() - started
            began = time.monotonic()
            try:
                return super()._execute(stack, document, run_id, started)
            finally:
                phases["execution_seconds"] = time.monotonic() - began

    options = LocalOptions(config_path=CONFIG, records_dir=HERE / "out" / "runs")
    started = time.monotonic()
    summary = Timed(options).run(noop_spec(items, max_concurrency=concurrency))
    total = time.monotonic() - started
    return {"summary": summary, "total_seconds": total, **phases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100 items")
    args = parser.parse_args()
    items = 100 if args.quick else args.items

    one = noop_seconds()
    ideal = math.ceil(items / args.concurrency) * one
    with contextlib.redirect_stdout(sys.stderr):  # the handlers' metrics lines
        run = measure(items, args.concurrency)
    summary = run["summary"]
    execution = run["execution_seconds"]
    per_item_ms = (execution - ideal) / items * 1000
    result = {
        "benchmark": "local_overhead",
        "machine": machine(),
        "items": items,
        "concurrency": args.concurrency,
        "run_status": summary.status,
        "succeeded": summary.succeeded,
        "noop_process_ms": round(one * 1000, 2),
        "ideal_seconds": round(ideal, 3),
        "execution_seconds": round(execution, 3),
        "stand_up_seconds": round(run["stand_up_seconds"], 3),
        "total_seconds_with_synth_cache": round(run["total_seconds"], 3),
        "overhead_ms_per_item": round(per_item_ms, 2),
        "target_ms_per_item": TARGET_MS_PER_ITEM,
        "met": per_item_ms <= TARGET_MS_PER_ITEM and summary.status == "SUCCEEDED",
    }
    path = write_out("local_overhead", result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"overhead {per_item_ms:.1f} ms per item (target {TARGET_MS_PER_ITEM:.0f} ms); "
          f"written to {path}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
