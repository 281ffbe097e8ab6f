"""Benchmark: closing a run of N items a page at a time (docs/decisions/0009).

The emulated store in process: moto's DynamoDB and S3 with the local mode's patches (its
cheap transactions and queries, its speed-ups). A run's records are written straight into
the table, then Finalize is called as the state machine's loop calls it (its output is the
next call's outcome) until it says done, each call with a small time budget, so that a run
takes many invocations. Two endings per size:

- ``fails_early``: the map failed after 50 items (40 succeeded, 10 failed); every other
  item was never launched, so Finalize writes each one's record from the manifest.
- ``all_but_one``: every item succeeded (an item record and an attempt record each) but
  the last, whose task still runs: Finalize reads every page to find it, stops its task.

Per ending and size: wall time and Lambda invocations per 1,000 items, pages, the time of
one page; the 1,000,000-item figures are extrapolated from the largest size's per-page
time (said so in the output). Writes bench/out/close.json.

    .venv/bin/python bench/close.py [--sizes 10000,100000] [--budget 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from _local import machine, peak_rss_mb, write_out

from fanout.local.aws import emulated_aws
from fanout.local.moto import speedups
from fanout.local.moto.correctness import serialized_dynamodb
from fanout.local.moto.dynamodb import cheap_transactions
from fanout.records.layout import attempt_sk, item_sk, run_pk, to_attrs
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
from fanout.schema import INDEXES, MANIFEST_KEY, PARTITION_KEY, SORT_KEY

TABLE, BUCKET, REGION = "fanout-bench-close", "fanout-bench-close", "us-east-1"
#: What one Finalize invocation may take on AWS (BUDGET_SECONDS): the extrapolation's unit.
LAMBDA_BUDGET = 60.0
#: Per turn of the state machine's loop: the Finalize task and the Closed? choice.
TRANSITIONS_PER_TURN = 2
#: TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited,
#: ChoiceStateEntered, ChoiceStateExited.
HISTORY_EVENTS_PER_TURN = 7
HISTORY_LIMIT = 25_000
LAUNCHED_WHEN_FAILING = 50


class Launcher:
    """Stands in for ECS: the tasks Finalize stops."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop_task(self, task_arn: str, reason: str) -> None:
        self.stopped.append(task_arn)


class Callbacks:
    """Stands in for Step Functions' task tokens (the map is over: nothing waits)."""

    def succeed(self, token: str, output: Any) -> None:
        pass

    def fail(self, token: str, error: str, cause: str) -> None:
        pass


def create(ddb: Any, s3: Any) -> None:
    attributes = {PARTITION_KEY, SORT_KEY} | {k for pair in INDEXES.values() for k in pair}
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in sorted(attributes)],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                   {"AttributeName": SORT_KEY, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": name, "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                           {"AttributeName": sk, "KeyType": "RANGE"}]}
            for name, (pk, sk) in INDEXES.items()])
    s3.create_bucket(Bucket=BUCKET)


def line(index: int) -> dict[str, Any]:
    return {"index": index, "params": {"n": index, "region": "eu-west-1"},
            "command": ["--n", str(index), "--region", "eu-west-1"],
            "environment": {"ITEM": str(index)}}


def seed(ddb: Any, s3: Any, store: Any, run_id: str, n: int, ending: str) -> None:
    """The run's records as the map leaves them, and its manifest."""
    from boto3.dynamodb.types import TypeSerializer

    from fanout.aws.s3 import write_manifest

    write_manifest(s3, BUCKET, MANIFEST_KEY.format(run_id=run_id),
                   (json.dumps(line(i), separators=(",", ":")) for i in range(n)))
    recorded = LAUNCHED_WHEN_FAILING if ending == "fails_early" else n - 1
    failed = 10 if ending == "fails_early" else 0
    counts = {"SUCCEEDED": recorded - failed, "FAILED": failed}
    store.create_run(RunRecord(run_id, "noop", "RUNNING", "2026-12-04T10:00:00Z", total=n,
                               settings={"retry": {"max_attempts": 1}}, counts=counts))
    ser = TypeSerializer()
    batch: list[dict[str, Any]] = []

    def put(attrs: dict[str, Any]) -> None:
        batch.append({"PutRequest": {"Item": {k: ser.serialize(v) for k, v in attrs.items()}}})
        if len(batch) == 25:
            ddb.batch_write_item(RequestItems={TABLE: batch})
            batch.clear()

    for index in range(recorded):
        status = "FAILED" if index < failed else "SUCCEEDED"
        body = line(index)
        item = to_attrs(ItemRecord(run_id, index, status, params=body["params"],
                                   command=body["command"], environment=body["environment"],
                                   attempts=1, exit_code=1 if status == "FAILED" else 0))
        put({**item, PARTITION_KEY: run_pk(run_id), SORT_KEY: item_sk(index)})
        attempt = to_attrs(AttemptRecord(run_id, index, 1, f"{run_id}-{index}-1", "token",
                                         status=status, task_arn=f"arn:task/{index}",
                                         exit_code=1 if status == "FAILED" else 0,
                                         stop_class="exit_nonzero" if status == "FAILED"
                                         else "succeeded",
                                         answered=True))
        put({**attempt, PARTITION_KEY: run_pk(run_id), SORT_KEY: attempt_sk(index, 1)})
    if batch:
        ddb.batch_write_item(RequestItems={TABLE: batch})
    if ending == "all_but_one":  # the last item's task still runs
        last = ItemRecord(run_id, n - 1, "PENDING", params=line(n - 1)["params"])
        attempt = AttemptRecord(run_id, n - 1, 1, f"{run_id}-last", "token",
                                created_at="2026-12-04T10:00:00Z")
        assert store.begin_attempt(last, attempt)
        assert store.attach_task(run_id, n - 1, 1, "arn:task/last", "2026-12-04T10:01:00Z")
        assert store.get_attempt(run_id, n - 1, 1).is_open


def close(store: Any, s3: Any, run_id: str, budget_seconds: float) -> dict[str, Any]:
    """Finalize, called as the state machine's loop calls it, until done."""
    from fanout.runtime.closing import Budget
    from fanout.runtime.finalize import FinalizeInput, finalize

    launcher = Launcher()
    pages = 0
    read_page = store.items_page

    def counted(*args: Any) -> Any:
        nonlocal pages
        pages += 1
        return read_page(*args)

    store.items_page = counted
    outcome: dict[str, Any] = {"run_id": run_id, "map_error": {"Error": "States.Timeout"}}
    invocations, longest, largest_state = 0, 0.0, 0
    began = time.perf_counter()
    while True:
        started = time.perf_counter()
        result = finalize(FinalizeInput(run_id=run_id, outcome=outcome), store=store,
                          launcher=launcher, callbacks=Callbacks(),  # type: ignore[arg-type]
                          sns=None, topic_arn="", s3=s3, bucket=BUCKET,
                          budget=Budget(budget_seconds))
        invocations += 1
        longest = max(longest, time.perf_counter() - started)
        largest_state = max(largest_state, len(json.dumps(result)))
        if result["done"]:
            break
        outcome = result
    seconds = time.perf_counter() - began
    run = store.get_run(run_id)
    return {"seconds": round(seconds, 2), "invocations": invocations,
            "pages": pages,
            "longest_invocation_seconds": round(longest, 2),
            "largest_state_bytes": largest_state, "stopped": len(launcher.stopped),
            "status": run.status, "totals": run.totals()}


def measure(n: int, ending: str, budget: float) -> dict[str, Any]:
    import boto3

    from fanout.local.aws import ACCOUNT
    from fanout.local.direct import HOT_OPERATIONS, DirectClient
    from fanout.records.dynamo import DynamoRecords

    with emulated_aws():
        restores = [serialized_dynamodb(), cheap_transactions()]
        if speedups.enabled()[0]:
            restores += speedups.apply()
        try:
            ddb = boto3.client("dynamodb", region_name=REGION)
            s3 = boto3.client("s3", region_name=REGION)
            create(ddb, s3)
            # As the local mode's handlers call DynamoDB: straight into moto's service code.
            store = DynamoRecords(TABLE, DirectClient(ddb, tuple(HOT_OPERATIONS["dynamodb"]),
                                                      account=ACCOUNT, region=REGION))
            run_id = f"bench-{ending}-{n}"
            seeded = time.perf_counter()
            seed(ddb, s3, store, run_id, n, ending)
            seeded = time.perf_counter() - seeded
            result = close(store, s3, run_id, budget)
        finally:
            for restore in reversed(restores):
                restore()
    totals = result["totals"]
    ok = (totals["pending"] == 0 and totals["running"] == 0
          and totals["succeeded"] + totals["failed"] + totals["aborted"] == n
          and result["status"] == "FAILED")
    per_1000 = 1000 / n
    pages = max(result["pages"], 1)
    return {**result, "items": n, "seed_seconds": round(seeded, 1), "closed_right": ok,
            "seconds_per_1000_items": round(result["seconds"] * per_1000, 3),
            "invocations_per_1000_items": round(result["invocations"] * per_1000, 3),
            "pages_per_1000_items": round(pages * per_1000, 2),
            "seconds_per_page": round(result["seconds"] / pages, 4)}


def extrapolate(largest: dict[str, Any], items: int = 1_000_000) -> dict[str, Any]:
    """A run of ``items`` from the largest measured run's per-page time: on moto a page
    also scans the run's partition, so this overstates what a larger run costs per page."""
    pages = largest["pages_per_1000_items"] * items / 1000
    seconds = pages * largest["seconds_per_page"]
    invocations = max(1, math.ceil(seconds / LAMBDA_BUDGET))
    return {"items": items, "from_items": largest["items"], "pages": round(pages),
            "seconds": round(seconds), "invocations_at_60s": invocations,
            "transitions": invocations * TRANSITIONS_PER_TURN,
            "history_events": invocations * HISTORY_EVENTS_PER_TURN,
            "history_share": round(invocations * HISTORY_EVENTS_PER_TURN / HISTORY_LIMIT, 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds each Finalize invocation may start pages for")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 items, a 0 s budget: one page (200 items) per invocation")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    # --quick's 0 s budget makes each invocation read its one page (close_pages' floor), so
    # the loop's several invocations show on any machine, fast or slow.
    budget = 0.0 if args.quick else args.budget
    runs: dict[str, dict[str, Any]] = {}
    for ending in ("fails_early", "all_but_one"):
        for n in sizes:
            measured = measure(n, ending, budget)
            runs[f"{ending}/{n}"] = measured
            print(f"{ending:12} {n:>8,} items: {measured['seconds']:>8.1f} s, "
                  f"{measured['invocations']} invocations, "
                  f"{measured['seconds_per_1000_items']} s and "
                  f"{measured['invocations_per_1000_items']} invocations per 1,000 items, "
                  f"{measured['seconds_per_page']} s per page, closed right: "
                  f"{measured['closed_right']}", flush=True)
    largest = max(sizes)
    projected = {ending: extrapolate(runs[f"{ending}/{largest}"])
                 for ending in ("fails_early", "all_but_one")}
    met = all(r["closed_right"] for r in runs.values()) and all(
        p["history_share"] < 1 for p in projected.values())
    command = "bench/close.py" + (" --quick" if args.quick else
                                  f" --sizes {args.sizes} --budget {args.budget:g}")
    write_out("close", {"command": command, "quick": args.quick, "budget_seconds": budget,
                        "runs": runs, "extrapolated": projected,
                        "lambda_budget_seconds": LAMBDA_BUDGET,
                        "transitions_per_turn": TRANSITIONS_PER_TURN,
                        "history_events_per_turn": HISTORY_EVENTS_PER_TURN,
                        "peak_rss_mb": round(peak_rss_mb()), "met": met,
                        "machine": machine()})
    for ending, p in projected.items():
        print(f"extrapolated {ending}: {p}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
