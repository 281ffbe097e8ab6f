"""Benchmark: what the live records of a local run cost (fanout/local/live.py).

1. One snapshot of a run's records, read from the emulated table as the local mode reads
   it, for runs of 500 and 5,000 items (each with one attempt): the first (every record
   turned into lines), one where nothing changed (nothing written), and one where a
   concurrency's worth of items (50) changed; each with the file's write.
2. A local run of the bench deployment's ``noop`` job with the live records on, then off
   (the writer replaced by nothing), side by side: the execution's wall time per item.

Writes bench/out/live_records.json.

    .venv/bin/python bench/live_records.py [--items 300] [--concurrency 50] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _local import CONFIG, machine, noop_spec, write_out  # noqa: E402

CHANGED = 50


def snapshot_costs(items: int) -> dict[str, float]:
    import boto3

    from fanout.config import load_config_file
    from fanout.local.aws import ACCOUNT, REGION, emulated_aws
    from fanout.local.live import Snapshots, _replace, partition, plain_attrs
    from fanout.records.layout import attempt_sk, item_sk, run_pk, to_attrs
    from fanout.records.model import AttemptRecord, ItemRecord, RunRecord

    config = load_config_file(CONFIG)
    run = RunRecord("bench-live", "noop", "RUNNING", "2026-12-04T12:00:00.000000Z",
                    total=items, counts={"SUCCEEDED": items})
    with emulated_aws(), tempfile.TemporaryDirectory() as folder:
        from moto.dynamodb.models import dynamodb_backends

        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}])
        from boto3.dynamodb.types import TypeSerializer

        ser = TypeSerializer()

        def put(sk: str, record: Any) -> dict[str, Any]:
            attrs = {"pk": run_pk("bench-live"), "sk": sk, **to_attrs(record)}
            return {"PutRequest": {"Item": {k: ser.serialize(v) for k, v in attrs.items()}}}

        requests = []
        for i in range(items):
            requests.append(put(item_sk(i), ItemRecord(
                "bench-live", i, "SUCCEEDED", params={"n": i}, command=[str(i)], attempts=1,
                exit_code=0)))
            requests.append(put(attempt_sk(i, 1), AttemptRecord(
                "bench-live", i, 1, f"c{i}", f"t{i}", status="SUCCEEDED",
                task_arn=f"arn:aws:ecs:us-east-1:123456789012:task/c/{i:032x}",
                created_at="2026-12-04T12:00:00.100000Z",
                started_at="2026-12-04T12:00:00.200000Z",
                stopped_at="2026-12-04T12:00:01.300000Z", duration_seconds=1.1, exit_code=0,
                log_stream=f"fanout/noop/{i:032x}")))
        for start in range(0, len(requests), 25):
            ddb.batch_write_item(RequestItems={"t": requests[start:start + 25]})
        table = dynamodb_backends[ACCOUNT][REGION].get_table("t")
        snapshots = Snapshots("bench-live", config, REGION, plain=plain_attrs)
        path = Path(folder) / "records.jsonl"

        def one() -> float:
            """The snapshot's CPU time (this thread's: the machine is shared), in ms."""
            began = time.thread_time()
            lines = snapshots.lines(run, None, partition(table, "bench-live"), 1)
            if lines is not None:
                _replace(path, lines)
            return (time.thread_time() - began) * 1000

        first = one()
        unchanged = min(one() for _ in range(3))
        changed = []
        for round_ in range(3):
            for i in range(CHANGED):
                ddb.update_item(TableName="t", Key={"pk": {"S": run_pk("bench-live")},
                                                    "sk": {"S": item_sk(i)}},
                                UpdateExpression="SET attempts = :n",
                                ExpressionAttributeValues={":n": {"N": str(round_ + 2)}})
            changed.append(one())
        return {"first_cpu_ms": round(first, 1), "unchanged_cpu_ms": round(unchanged, 1),
                f"{CHANGED}_changed_cpu_ms": round(min(changed), 1),
                "file_bytes": path.stat().st_size}


def run_seconds(items: int, concurrency: int, live: bool) -> tuple[float, dict[str, Any]]:
    """The execution's wall time (StartExecution until settled) of one noop run, and what
    its live records cost (snapshots taken and written, their CPU and wall seconds)."""
    import fanout.local.live as live_module
    from fanout.local.runner import LocalOptions, LocalRun

    spent: dict[str, float] = {}

    class Timed(LocalRun):
        def _execute(self, stack: Any, document: dict[str, Any], run_id: str,
                     started: float) -> dict[str, Any]:
            began, cpu = time.monotonic(), time.process_time()
            try:
                return super()._execute(stack, document, run_id, started)
            finally:
                spent["execution"] = time.monotonic() - began
                spent["cpu"] = time.process_time() - cpu

    cls = live_module.LiveRecords
    originals = (cls.__enter__, cls.__exit__)
    seen: dict[str, Any] = {}
    if not live:
        cls.__enter__ = lambda self: self  # type: ignore[method-assign]
        cls.__exit__ = lambda self, *exc: None  # type: ignore[method-assign]
    else:
        def leave(self: Any, *exc: object) -> None:
            originals[1](self, *exc)
            seen.update(snapshots=self.snapshots_taken, written=self.written,
                        cpu_seconds=round(self.cpu_seconds, 3),
                        wall_seconds=round(self.busy_seconds, 3), failures=self.failures)

        cls.__exit__ = leave  # type: ignore[method-assign]
    try:
        options = LocalOptions(config_path=CONFIG, records_dir=HERE / "out" / "runs")
        summary = Timed(options).run(noop_spec(items, max_concurrency=concurrency))
        assert summary.status == "SUCCEEDED", summary.problems
    finally:
        cls.__enter__, cls.__exit__ = originals  # type: ignore[method-assign]
    return spent["execution"], {**seen, "process_cpu_seconds": round(spent["cpu"], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100 items, one pair of runs")
    args = parser.parse_args()
    items = 100 if args.quick else args.items
    result: dict[str, Any] = {"benchmark": "live_records", "machine": machine(),
                              "snapshot": {str(n): snapshot_costs(n) for n in (500, 5000)}}
    runs: dict[str, list[float]] = {"on": [], "off": []}
    cpus: dict[str, list[float]] = {"on": [], "off": []}
    writers: list[dict[str, Any]] = []
    with contextlib.redirect_stdout(sys.stderr):  # the handlers' metrics lines
        for round_ in range(1 if args.quick else 2):
            # Alternated, so that a change in the machine's load favours neither.
            for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
                seconds, writer = run_seconds(items, args.concurrency, mode == "on")
                runs[mode].append(seconds)
                cpus[mode].append(writer.pop("process_cpu_seconds"))
                if mode == "on":
                    writers.append(writer)
    best = {mode: min(times) for mode, times in runs.items()}
    cpu = min(w["cpu_seconds"] for w in writers)
    result.update(items=items, concurrency=args.concurrency,
                  execution_seconds={k: [round(t, 2) for t in v] for k, v in runs.items()},
                  process_cpu_seconds=cpus,
                  wall_ms_per_item_on_minus_off=round(
                      (best["on"] - best["off"]) / items * 1000, 2),
                  cpu_ms_per_item_on_minus_off=round(
                      (min(cpus["on"]) - min(cpus["off"])) / items * 1000, 2),
                  live_writer=writers, live_cpu_ms_per_item=round(cpu / items * 1000, 3))
    path = write_out("live_records", result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
