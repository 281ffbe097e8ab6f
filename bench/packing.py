"""Benchmark: many items per task (docs/decisions/0020).

Three parts:

1. **Measured**: the batch runner's own cost per item (fanout/local/packed.py): N no-op
   items (``true``) in one packed task, wall time per item over the items' own time.
2. **Measured locally, side by side**: the same short items (the bench deployment's
   ``noop``) run by ``fanout local`` at K = 1, 10 and 50 in one invocation: launch span
   (first to last task started), wall time, tasks, Step Functions transitions and the run's
   estimated cost per 1,000 items (``--local-items``, default 2,000; ``--quick``: 200;
   ``--no-local`` skips it).
3. **Modelled**: 1,000,000 five-second items at 1,000 at once, on Fargate's default
   launch bucket (burst 100, then 20 launches/s), at K = 1 and at ``"auto"``: each task
   starts when both a launch permit and a task slot are free and runs
   ``startup + K x (item + runner overhead)``; compute priced by fanout/cost.py (0.25 vCPU,
   0.5 GB, ARM64, per second with the one-minute minimum), control plane by its usage
   model (transitions and Lambda per task, DynamoDB writes per item).

    .venv/bin/python bench/packing.py [--items 1000000] [--item-seconds 5] [--quick]

Writes bench/out/packing.json and the documented figures (docs/benchmarks.json).
"""

from __future__ import annotations

import argparse
import heapq
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]
OUT = Path(os.environ.get("FANOUT_BENCH_OUT", HERE / "out")) / "packing.json"

from _figures import figure, record  # noqa: E402

from fanout.cost import PRICES, USAGE, attempt_compute_usd  # noqa: E402
from fanout.local.packed import BatchItem, BatchRunner  # noqa: E402
from fanout.spec.packing import launch_span_seconds, plan_packing  # noqa: E402

COMMAND = "bench/packing.py"
TARGET_HOURS = 2.0
TARGET_COST_SHARE = 0.2


def runner_overhead(items: int) -> dict[str, Any]:
    """Seconds the runner adds per item: a packed task of ``items`` no-op items."""
    true = shutil.which("true") or "/bin/true"
    with tempfile.TemporaryDirectory() as folder:
        batch = [BatchItem(i, 1, [true]) for i in range(items)]
        runner = BatchRunner(batch, results=Path(folder), out=io.StringIO())
        start = time.perf_counter()
        runner.run()
        wall = time.perf_counter() - start
        ran = len(list(Path(folder).glob("*.json")))
    return {"items": items, "results": ran, "wall_seconds": round(wall, 3),
            "seconds_per_item": round(wall / items, 5)}


def local_run(items: int, k: int, concurrency: int) -> dict[str, Any]:
    """One local run of ``items`` no-op items packed ``k`` to a task, measured."""
    import contextlib

    from _local import measured_run, noop_spec

    spec = {**noop_spec(items, max_concurrency=concurrency), "items_per_task": k}
    with contextlib.redirect_stdout(sys.stderr):  # the handlers' metrics lines
        run = measured_run(spec, settle_seconds=300.0)
    summary = run["summary"]
    launched = run.get("launch_times") or [0.0]
    counted = run.get("transitions") or {}
    transitions = counted.get("parent_transitions", 0) + counted.get("child_transitions", 0)
    cost = summary.get("cost") or {}
    return {"items_per_task": k, "status": summary["status"],
            "succeeded": summary["succeeded"], "tasks": run.get("launches"),
            "launch_span_seconds": round(max(launched) - min(launched), 2),
            "wall_seconds": run["elapsed_seconds"],
            "transitions": transitions, "transitions_per_item": round(transitions / items, 3),
            "compute_usd_per_1000_items": round(cost.get("compute_usd", 0) / items * 1000, 5),
            "usd_per_1000_items": round(cost.get("total_usd", 0) / items * 1000, 5)}


def local_side_by_side(items: int, ks: list[int], concurrency: int) -> dict[str, Any]:
    local_run(2, 2, concurrency)  # the synthesis, once, outside the measured runs
    runs = [local_run(items, k, concurrency) for k in ks]
    for run in runs:
        print(json.dumps(run), file=sys.stderr, flush=True)
    return {"items": items, "max_concurrency": concurrency, "runs": runs}


def local_figures(local: dict[str, Any]) -> dict[str, dict[str, Any]]:
    figures = {}
    items = local["items"]
    for run in local["runs"]:
        k = run["items_per_task"]
        what = f"{items:,} no-op items run by fanout local at items_per_task {k}: "
        figures[f"packing_local_k{k}_wall_seconds"] = figure(
            run["wall_seconds"], "s", better="lower", command=COMMAND,
            what=what + "wall time")
        figures[f"packing_local_k{k}_launch_span_seconds"] = figure(
            run["launch_span_seconds"], "s", better="lower", command=COMMAND,
            what=what + "first to last task started")
        figures[f"packing_local_k{k}_usd_per_1000_items"] = figure(
            run["usd_per_1000_items"], "$ per 1,000 items", better="lower", command=COMMAND,
            what=what + "estimated AWS cost (compute and control plane)")
    return figures


def local_only(local: dict[str, Any], *, quick: bool) -> int:
    """``--local-only``: write the local runs' results and document their figures."""
    from _local import machine

    made = machine()
    result = {"command": COMMAND + " --local-only", "local": local, "machine": made}
    path = OUT.with_name("packing_local.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    if not quick:
        record(local_figures(local), {**made, "date": made["date"][:10]})
    print(json.dumps(local, indent=2))
    return 0 if all(r["status"] == "SUCCEEDED" for r in local["runs"]) else 1


def makespan(tasks: int, task_seconds: float, slots: int, burst: int, rate: float) -> float:
    """When the last of ``tasks`` ends: each starts at its launch permit (the burst, then
    ``rate`` a second) or when a slot frees, whichever is later."""
    free = [0.0] * min(slots, tasks)
    end = 0.0
    for i in range(tasks):
        permit = 0.0 if i < burst else (i - burst + 1) / rate
        start = max(permit, heapq.heappop(free))
        end = start + task_seconds
        heapq.heappush(free, end)
    return max(free) if free else end


def model(*, items: int, item_seconds: float, k: int, concurrency: int, startup: float,
          overhead: float, burst: int = 100, rate: float = 20.0) -> dict[str, Any]:
    prices = PRICES["us-east-1"]
    tasks = math.ceil(items / k)
    task_seconds = startup + k * (item_seconds + overhead)
    span = makespan(tasks, task_seconds, concurrency, burst, rate)
    compute = tasks * attempt_compute_usd(cpu=256, memory=512, architecture="ARM64",
                                          capacity="FARGATE", seconds=task_seconds,
                                          prices=prices)
    # Per task: its transitions, Launch and Record, the dispatcher's launch; per item: the
    # item's and its attempt's records (fanout.cost.Usage).
    transitions = USAGE.transitions_per_run + USAGE.transitions_per_item * tasks
    invocations = (USAGE.lambda_invocations_per_run + USAGE.dispatcher_invocations_per_run
                   + USAGE.lambda_invocations_per_attempt * tasks)
    gb_seconds = ((USAGE.lambda_invocations_per_run + USAGE.lambda_invocations_per_attempt * tasks)
                  * USAGE.lambda_gb_seconds_per_invocation
                  + USAGE.dispatcher_gb_seconds_per_attempt * tasks)
    writes = ((USAGE.dynamodb_writes_per_item + USAGE.dynamodb_writes_per_attempt) * items
              + USAGE.dispatcher_writes_per_attempt * tasks)
    reads = ((USAGE.dynamodb_reads_per_item + USAGE.dynamodb_reads_per_attempt) * items
             + USAGE.dispatcher_reads_per_attempt * tasks)
    control = (transitions * prices.transition + invocations * prices.lambda_request
               + gb_seconds * prices.lambda_gb_second
               + writes * prices.dynamodb_write + reads * prices.dynamodb_read)
    return {"items_per_task": k, "tasks": tasks, "task_seconds": round(task_seconds, 1),
            "launch_span_seconds": round(launch_span_seconds(tasks, burst, rate), 1),
            "hours": round(span / 3600, 2), "transitions": transitions,
            "compute_usd": round(compute, 2), "control_plane_usd": round(control, 2),
            "total_usd": round(compute + control, 2),
            "usd_per_1000_items": round((compute + control) / items * 1000, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--item-seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=1_000)
    parser.add_argument("--startup-seconds", type=float, default=30.0,
                        help="a task's billed start (image pull, provisioning): assumed")
    parser.add_argument("--runner-items", type=int, default=500)
    parser.add_argument("--local-items", type=int, default=2_000)
    parser.add_argument("--local-k", default="1,10,50", help="K values run locally")
    parser.add_argument("--local-concurrency", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="200 items locally")
    parser.add_argument("--no-local", action="store_true", help="skip the local runs")
    parser.add_argument("--local-only", action="store_true",
                        help="only the local runs (documents only their figures)")
    args = parser.parse_args(argv)
    local_items = 200 if args.quick else args.local_items
    local = None if args.no_local else local_side_by_side(
        local_items, [int(k) for k in args.local_k.split(",")], args.local_concurrency)
    if local is not None and args.local_only:
        return local_only(local, quick=args.quick)

    measured = runner_overhead(args.runner_items)
    overhead = measured["seconds_per_item"]
    auto = plan_packing(count=args.items, items_per_task="auto", per_task_concurrency=1,
                        max_concurrency=args.concurrency, burst=100, per_second=20.0)
    common = {"items": args.items, "item_seconds": args.item_seconds,
              "concurrency": args.concurrency, "startup": args.startup_seconds,
              "overhead": overhead}
    one = model(k=1, **common)
    packed = model(k=auto.items_per_task, **common)
    share = packed["total_usd"] / one["total_usd"]
    met = packed["hours"] < TARGET_HOURS and share < TARGET_COST_SHARE
    result = {
        "command": COMMAND, "runner": measured, "local": local,
        "assumptions": {"items": args.items, "item_seconds": args.item_seconds,
                        "max_concurrency": args.concurrency,
                        "startup_seconds": args.startup_seconds,
                        "bucket": "burst 100, then 20 launches/s (Fargate's published default)",
                        "task": "0.25 vCPU, 0.5 GB, ARM64, on-demand, us-east-1"},
        "auto": {"items_per_task": auto.items_per_task, "why": auto.why},
        "k1": one, "auto_model": packed, "cost_share": round(share, 4),
        "targets": {"hours": TARGET_HOURS, "cost_share": TARGET_COST_SHARE}, "met": met,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "date": datetime.now(UTC).date().isoformat(),
                    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True, cwd=REPO,
                                             check=False).stdout.strip()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    figures = local_figures(local) if local is not None and not args.quick else {}
    record({**figures,
        "packing_million_hours_auto": figure(
            packed["hours"], "hours", better="lower", command=COMMAND, target=TARGET_HOURS,
            what="modelled time to finish 1,000,000 five-second items at items_per_task auto"),
        "packing_million_cost_share_auto": figure(
            round(share, 4), "x the cost at one item per task", better="lower",
            command=COMMAND, target=TARGET_COST_SHARE,
            what="modelled cost of the million-item run at auto over its cost at K = 1"),
        "packing_runner_seconds_per_item": figure(
            overhead, "s per item", better="lower", command=COMMAND,
            what="the batch runner's own time per no-op item (measured)"),
    }, result["machine"])
    print(json.dumps({k: result[k] for k in ("runner", "local", "auto", "k1", "auto_model",
                                             "cost_share", "met")}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
