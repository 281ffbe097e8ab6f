"""Control-plane cost per 1,000 items, measured from a local run of the synthesized stack.

Two runs of the ``noop`` job: the happy path, and one where every 10th item fails its
first attempt and is retried once. For each: billed state transitions (parent execution
and the map's children), Lambda requests and GB-seconds (memory sizes from the template,
durations measured in process), DynamoDB write units (counted at the boto3 level), S3
requests and events, priced at the list prices in ``bench/_prices.py``.
Targets: at most 2 transitions per item on the happy path; at most $0.06 per 1,000 items.

    .venv/bin/python bench/cost.py [--quick]      # writes bench/out/cost.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _local import OUT, machine, measured_run, noop_spec, write_out
from _prices import ALTERNATIVES, PRICES, RETRIEVED

TARGET_TRANSITIONS = 2.0
TARGET_USD_PER_1000 = 0.06


def price(figures: dict[str, Any], items: int) -> dict[str, Any]:
    """Per-item counts and the cost per 1,000 items, line by line."""
    meter = figures["meter"]
    transitions = figures["transitions"]
    billed = transitions["parent_transitions"] + transitions["child_transitions"]
    requests = sum(meter.invocations.values())
    gb_seconds = sum(meter.gb_seconds.values())
    wru = sum(meter.ddb_write_units.values())
    reads = sum(meter.ddb_read_calls.values())
    per = 1000 / items
    lines = {
        "step_functions": billed * PRICES["sfn_transition"]["usd"] * per,
        "lambda_requests": requests * PRICES["lambda_request"]["usd"] * per,
        "lambda_duration": gb_seconds * PRICES["lambda_gb_second_arm"]["usd"] * per,
        "dynamodb_writes": wru * PRICES["ddb_write_request_unit"]["usd"] * per,
        # Reads are counted per call (each at least one read unit): a lower bound.
        "dynamodb_reads": reads * PRICES["ddb_read_request_unit"]["usd"] * per,
        "eventbridge": 0.0,
    }
    return {
        "items": items,
        "status": figures["summary"]["status"],
        "succeeded": figures["summary"]["succeeded"],
        "launches": figures["launches"],
        "attempts": sum(i["attempts"] for i in figures["summary"]["items"]),
        "elapsed_seconds": figures["elapsed_seconds"],
        "per_item": {
            "transitions": round(billed / items, 3),
            "parent_transitions": transitions["parent_transitions"],
            "child_transitions": round(transitions["child_transitions"] / items, 3),
            "lambda_invocations": round(requests / items, 3),
            "lambda_gb_seconds": round(gb_seconds / items, 5),
            "dynamodb_write_units": round(wru / items, 3),
            "dynamodb_read_calls": round(reads / items, 3),
            "s3_requests": round(sum(meter.s3_requests.values()) / items, 4),
            "events": round(sum(meter.events.values()) / items, 3),
        },
        "invocations": dict(meter.invocations),
        "memory_mb": dict(meter.memory_mb),
        "lambda_seconds": {k: round(v, 3) for k, v in meter.seconds.items()},
        "lambda_cpu_seconds": {k: round(v, 3) for k, v in meter.cpu_seconds.items()},
        "dynamodb_write_units": dict(meter.ddb_write_units),
        "dynamodb_write_calls": dict(meter.ddb_write_calls),
        "dynamodb_uncounted": meter.ddb_uncounted,
        "s3_requests": dict(meter.s3_requests),
        "events": dict(meter.events),
        "child_executions": transitions["child_executions"],
        "child_event_types": transitions["child_event_types"],
        "usd_per_1000": {k: round(v, 5) for k, v in lines.items()},
        "usd_per_1000_total": round(sum(lines.values()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 items per run")
    parser.add_argument("--items", type=int, help="items per run (default 1000)")
    args = parser.parse_args(argv)
    items = args.items or (20 if args.quick else 1000)
    runs = {}
    for name, fail_every in (("happy", 0), ("retry_10pct", 10)):
        print(f"cost: {name}, {items} items", flush=True)
        figures = measured_run(noop_spec(items, fail_every=fail_every, max_concurrency=100))
        runs[name] = price(figures, items)
        print(f"  {runs[name]['per_item']} -> ${runs[name]['usd_per_1000_total']}/1000",
              flush=True)
    happy = runs["happy"]
    # The launch storm's cost, measured by bench/launch.py in its own runs (before: the
    # commit before the launch gate; after: with it), beside the happy path.
    storms: dict[str, dict[str, Any]] = {}
    for label, name in (("after", "launch"), ("before", "launch-before")):
        path = OUT / f"{name}.json"
        if path.exists():
            storm = json.loads(path.read_text())
            storms[label] = {"commit": storm["machine"]["commit"], "runs": {
                n: {"usd_per_1000": r["usd_per_1000"],
                    "transitions_per_item": r["transitions_per_item"],
                    "lines": r["cost"]["usd_per_1000"]}
                for n, r in storm.get("runs", {}).items()}}
    result = {
        "benchmark": "cost", "quick": args.quick, "machine": machine(),
        "command": "bench/cost.py" + (" --quick" if args.quick else ""),
        "runs": runs, "storms": storms, "prices": PRICES, "prices_retrieved": RETRIEVED,
        "alternatives": ALTERNATIVES,
        "targets": {"transitions_per_item": TARGET_TRANSITIONS,
                    "usd_per_1000": TARGET_USD_PER_1000},
        "met": {
            "transitions_per_item": happy["per_item"]["transitions"] <= TARGET_TRANSITIONS,
            "usd_per_1000": all(r["usd_per_1000_total"] <= TARGET_USD_PER_1000
                                for r in runs.values()),
            "all_succeeded": all(r["status"] == "SUCCEEDED" and r["succeeded"] == items
                                 for r in runs.values()),
        },
    }
    write_out("cost", result)
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
