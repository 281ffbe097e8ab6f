"""A load test on real AWS: N no-op items through a deployed stack, and what AWS saw.

Deploys nothing: give it a stack deployed with ``cdk deploy`` whose config has a no-op
job (docs/benchmarks.md says what to add and what a run costs). It starts one run of N
items, follows it to its end, then reports from the records and CloudWatch:

- ``items_lost``: items not in a terminal state when the run ended (must be 0),
  ``items_run_twice``: items that started more than one task (the no-op never fails, so
  each is one too many) and ``items_settled_lost``: attempts Reconcile settled as lost;
- ``launches_per_second``: tasks started over the launch span, and the peak over 10 s;
- ``launch_throttles``: RunTask refusals the dispatcher counted (metric ``Fanout /
  LaunchThrottled``) and attempts that waited in the launch queue;
- ``dynamodb``: ``TransactionConflict`` and ``ThrottledRequests`` of the records table
  (namespace ``AWS/DynamoDB``, every operation);
- ``reconcile``: the Reconcile function's ``Duration`` (average, maximum, invocations);
- ``cost``: the run's estimate (fanout.cost, as ``fanout status`` shows it) and per 1,000.

    python bench/aws_load.py --stack Fanout --region eu-west-1 --job noop --items 10000
    python bench/aws_load.py --stack Fanout --region eu-west-1 --report RUN_ID

Not part of ``make test`` nor ``make bench``: it needs AWS credentials and spends money.
CloudWatch metrics arrive minutes late: the report waits ``--settle`` seconds (300) after
the run before it reads them, or read them again later with ``--report``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fanout.cli.deployment import Deployment
from fanout.names import new_run_id
from fanout.records.model import TERMINAL, AttemptRecord
from fanout.runs.stack import StackRuns, start_execution

#: CloudWatch's period for the metrics read (one minute: DynamoDB's and Lambda's own).
PERIOD = 60


class Deployed(Deployment):
    """A deployed stack as the CLI reads it (outputs, clients, records), found by name."""

    @classmethod
    def read(cls, stack: str, region: str, session: Any = None) -> Deployed:
        import boto3

        session = session or boto3.Session(region_name=region)
        found = session.client("cloudformation", region_name=region).describe_stacks(
            StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
        return cls(stack, region, outputs, session)

    def function(self, prefix: str) -> str | None:
        """The physical name of the stack's Lambda function whose logical id starts with
        ``prefix`` (``FunctionsReconcile`` for Reconcile)."""
        pages = self.client("cloudformation").get_paginator("list_stack_resources")
        for page in pages.paginate(StackName=self.stack):
            for resource in page.get("StackResourceSummaries", []):
                if resource["ResourceType"] == "AWS::Lambda::Function" \
                        and resource["LogicalResourceId"].startswith(prefix):
                    return str(resource["PhysicalResourceId"])
        return None


# --- the run ---------------------------------------------------------------------------------


def start(deployed: Deployed, job: str, items: int, concurrency: int) -> str:
    run_id = new_run_id(f"load-{job}")
    spec = {"job": job, "params": {"n": {"range": {"start": 0, "stop": items}}},
            "max_concurrency": concurrency, "retry": {"max_attempts": 1}, "trigger": "cli"}
    start_execution(deployed, run_id, spec)
    return run_id


def follow(runs: StackRuns, run_id: str, *, timeout: float, every: float = 15.0) -> str:
    """Poll the run record until the run ends (or ``timeout``); returns its status."""
    deadline = time.monotonic() + timeout
    status = "PENDING"
    while time.monotonic() < deadline:
        run = runs.record(run_id)
        status = run.status if run is not None else "PENDING"
        if run is not None and status != "RUNNING":
            return status
        counts = f"{run.total} items" if run is not None else "not recorded yet"
        print(f"  {run_id}: {status}, {counts}", file=sys.stderr, flush=True)
        time.sleep(every)  # a real run on AWS: nothing to await but its record
    return status


# --- the report --------------------------------------------------------------------------------


def metric(cloudwatch: Any, namespace: str, name: str, dimension: tuple[str, str],
           start: datetime, end: datetime, statistic: str = "Sum") -> list[float]:
    """Every datapoint's ``statistic`` of metric ``name`` over each dimension set that
    includes ``dimension`` (e.g. every Operation of one table)."""
    listed = cloudwatch.list_metrics(Namespace=namespace, MetricName=name, Dimensions=[
        {"Name": dimension[0], "Value": dimension[1]}]).get("Metrics", [])
    values: list[float] = []
    for found in listed:
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=found["Dimensions"],
            StartTime=start, EndTime=end, Period=PERIOD, Statistics=[statistic])
        values.extend(float(p[statistic]) for p in points.get("Datapoints", []))
    return values


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def launch_rates(attempts: list[AttemptRecord]) -> dict[str, float | int]:
    started = sorted(m for a in attempts if a.task_arn and (m := _moment(a.started_at)))
    if not started:
        return {"launched": 0, "span_seconds": 0.0, "per_second": 0.0, "peak_10s": 0.0}
    span = (started[-1] - started[0]).total_seconds()
    windows = Counter(int(m.timestamp() // 10) for m in started)
    return {"launched": len(started), "span_seconds": round(span, 3),
            "per_second": round(len(started) / span, 2) if span > 0 else float(len(started)),
            "peak_10s": round(max(windows.values()) / 10, 2)}


def report(deployed: Deployed, run_id: str, *, reconcile: str | None,
           start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """What the run did and what AWS saw of it (records + CloudWatch)."""
    runs = StackRuns(deployed)
    run = runs.record(run_id)
    if run is None:
        raise SystemExit(f"aws_load: no run {run_id} in {deployed.output('RecordsTable')}")
    store = runs.store
    items = {i.index: i for i in store.items(run_id)}
    attempts = store.attempts(run_id)
    # The no-op job never fails: every task after an item's first is one too many (a
    # succeeded attempt settled lost and run again, a duplicate launch...).
    tasks = Counter(a.index for a in attempts if a.task_arn)
    lost = {a.index for a in attempts if (a.stop_class or "").startswith("lost")}
    begun = start or _moment(run.started_at) or datetime.now(UTC)
    ended = end or (_moment(run.finished_at) or datetime.now(UTC)) + timedelta(minutes=5)
    cloudwatch = deployed.client("cloudwatch")
    table = ("TableName", deployed.output("RecordsTable"))
    durations = metric(cloudwatch, "AWS/Lambda", "Duration", ("FunctionName", reconcile),
                       begun, ended, "Maximum") if reconcile else []
    averages = metric(cloudwatch, "AWS/Lambda", "Duration", ("FunctionName", reconcile),
                      begun, ended, "Average") if reconcile else []
    view = runs.view(run)
    cost = view.get("cost") or {}
    total = run.total or len(items)
    return {
        "run_id": run_id, "status": run.status, "items": total,
        "items_lost": sum(1 for i in range(total)
                          if i not in items or items[i].status not in TERMINAL),
        "items_run_twice": sum(1 for n in tasks.values() if n > 1),
        "items_settled_lost": len(lost),
        "succeeded": sum(1 for i in items.values() if i.status == "SUCCEEDED"),
        "launches": launch_rates(attempts),
        "launch_throttles": {
            "dispatcher_counted": sum(metric(cloudwatch, "Fanout", "LaunchThrottled",
                                             ("service", "fanout"), begun, ended)),
            "attempts_waited": sum(1 for a in attempts if a.waited)},
        "dynamodb": {name: sum(metric(cloudwatch, "AWS/DynamoDB", name, table, begun, ended))
                     for name in ("TransactionConflict", "ThrottledRequests")},
        "reconcile": {"function": reconcile, "invocations": len(durations),
                      "max_ms": max(durations, default=0.0),
                      "average_ms": round(sum(averages) / len(averages), 1) if averages
                      else 0.0},
        "cost": {**cost, "usd_per_1000_items": round(cost.get("total_usd", 0.0) / total * 1000,
                                                    6) if total else 0.0},
        "window": [begun.isoformat(), ended.isoformat()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the deployed stack's name")
    parser.add_argument("--region", required=True)
    parser.add_argument("--job", default="noop", help="a no-op job of the stack's config")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1000,
                        help="the run's max_concurrency (tasks at once)")
    parser.add_argument("--timeout-minutes", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=300.0,
                        help="seconds to wait after the run for CloudWatch's metrics")
    parser.add_argument("--report", metavar="RUN_ID", help="only report on a run done before")
    parser.add_argument("--out", type=Path, help="also write the report here (JSON)")
    args = parser.parse_args(argv)
    if not 1 <= args.items <= 1_000_000:
        parser.error("--items: give 1 to 1,000,000")
    deployed = Deployed.read(args.stack, args.region)
    reconcile = deployed.function("FunctionsReconcile")
    run_id = args.report
    if run_id is None:
        run_id = start(deployed, args.job, args.items, args.concurrency)
        print(f"started {run_id}", file=sys.stderr)
        follow(StackRuns(deployed), run_id, timeout=args.timeout_minutes * 60)
        time.sleep(args.settle)  # CloudWatch publishes minutes late; nothing to await
    result = report(deployed, run_id, reconcile=reconcile)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["items_lost"] == 0 and result["items_run_twice"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
