"""What the benchmarks share: the bench deployment, a local run that is measured as it goes.

The bench deployment (``bench/cdk.json``) has one job, ``noop``, whose task is a shell that
exits 0 (or 1 on an item's first attempt when its ``fail`` parameter is 1), so a run
measures the control plane, not a program. :class:`MeasuredRun` is the local mode's
:class:`~fanout.local.runner.LocalRun` with counters attached: every Lambda invocation
(function, duration), every DynamoDB write and S3 request made through boto3 (counted by
botocore event hooks), every event put on the emulated bus, and, before the emulation is
torn down, the Step Functions history of the parent execution and of every child
execution of the Distributed Map (found through its map run).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: Where results go; tests point it at a temporary folder so full-run figures stay.
OUT = Path(os.environ.get("FANOUT_BENCH_OUT", HERE / "out"))
CONFIG = HERE / "cdk.json"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: DynamoDB bills a write per started 1 KB of the item; a transactional write twice that.
WRITE_UNIT_BYTES = 1024
S3_PUT_CLASS = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                "CopyObject", "ListObjectsV2", "ListObjects"}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    # FANOUT_BENCH_COMMIT names the code measured when it is not this checkout's HEAD
    # (an exported tree of an older commit, measured for a before/after comparison).
    commit = os.environ.get("FANOUT_BENCH_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
        check=False).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": commit,
    }


def write_out(name: str, result: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def noop_spec(count: int, *, fail_every: int = 0, max_concurrency: int = 100) -> dict[str, Any]:
    """``count`` items of the ``noop`` job; every ``fail_every``-th fails its first attempt."""
    items = [{"n": i, "fail": 1 if fail_every and i % fail_every == 0 else 0}
             for i in range(count)]
    return {"job": "noop", "items": items, "max_concurrency": max_concurrency,
            "retry": {"max_attempts": 2, "delay_seconds": 0, "backoff_rate": 1.0}}


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Meter:
    """Counters filled while a run goes (thread-safe: handlers run on many threads)."""

    invocations: Counter[str] = field(default_factory=Counter)
    #: function kind -> summed in-process duration (wall seconds)
    seconds: Counter[str] = field(default_factory=Counter)
    #: function kind -> summed CPU seconds of the invoking thread (the handler and the
    #: emulated AWS answering it in-process), without waits for other threads
    cpu_seconds: Counter[str] = field(default_factory=Counter)
    #: function kind -> billed GB-seconds (duration rounded up to 1 ms, times memory)
    gb_seconds: Counter[str] = field(default_factory=Counter)
    memory_mb: dict[str, int] = field(default_factory=dict)
    ddb_write_units: Counter[str] = field(default_factory=Counter)
    ddb_write_calls: Counter[str] = field(default_factory=Counter)
    ddb_read_calls: Counter[str] = field(default_factory=Counter)
    s3_requests: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    ddb_uncounted: int = 0
    #: RunTask calls made to the emulated Fargate, by outcome (launched, throttled, capacity).
    run_task: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoked(self, kind: str, memory_mb: int, seconds: float, cpu_seconds: float) -> None:
        """One invocation. Billed: its CPU time, but the dispatcher's wall time (it waits
        for permits on purpose, and Lambda bills that). Under a storm thousands of handlers
        share this process's two cores and the emulator's locks: their wall time is mostly
        waiting for each other, which Lambda, one sandbox per invocation, would not bill."""
        billed_ms = math.ceil((seconds if kind == "dispatch" else cpu_seconds) * 1000)
        with self.lock:
            self.invocations[kind] += 1
            self.seconds[kind] += seconds
            self.cpu_seconds[kind] += cpu_seconds
            self.gb_seconds[kind] += billed_ms / 1000 * memory_mb / 1024
            self.memory_mb[kind] = memory_mb


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (typed JSON, close enough)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode()) + _value_bytes(value)
    return size


def _value_bytes(value: Any) -> int:
    if isinstance(value, dict) and len(value) == 1:
        (kind, inner), = value.items()
        if kind in ("S", "B"):
            return len(inner.encode() if isinstance(inner, str) else inner)
        if kind == "N":
            return len(str(inner)) // 2 + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + _item_bytes(inner)
        if kind == "L":
            return 3 + sum(_value_bytes(v) + 1 for v in inner)
        if kind in ("SS", "NS", "BS"):
            return sum(len(str(v)) for v in inner)
    return len(json.dumps(value, default=str))


def _units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def _stored_size(table: str, key: dict[str, Any]) -> int | None:
    """The size of the item as stored now (after an update), as moto's DynamoDB counts it."""
    from moto.dynamodb.models import dynamodb_backends

    from fanout.local.aws import ACCOUNT, REGION

    try:
        stored = dynamodb_backends[ACCOUNT][REGION].get_item(table, key)
    except Exception:
        return None
    return None if stored is None else int(stored.size())


def install_hooks(meter: Meter) -> None:
    """Count DynamoDB writes (in 1 KB write units) and S3 requests made through boto3."""
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None

    def before_dynamodb(params: dict[str, Any], model: Any, context: dict[str, Any],
                        **_: Any) -> None:
        context["fanout_bench_params"] = params

    def after_dynamodb(http_response: Any, parsed: dict[str, Any], model: Any,
                       context: dict[str, Any], **_: Any) -> None:
        try:
            count_dynamodb(model.name, context.get("fanout_bench_params") or {})
        except Exception:
            with meter.lock:
                meter.ddb_uncounted += 1

    def count_dynamodb(op: str, params: dict[str, Any]) -> None:
        units = 0
        if op == "PutItem":
            units = _units(_item_bytes(params["Item"]))
        elif op in ("UpdateItem", "DeleteItem"):
            stored = _stored_size(params["TableName"], params["Key"])
            units = _units(stored if stored is not None else _item_bytes(params["Key"]))
        elif op == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                for request in requests:
                    put = request.get("PutRequest")
                    units += _units(_item_bytes(put["Item"])) if put else 1
        elif op == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                if "Put" in entry:
                    units += 2 * _units(_item_bytes(entry["Put"]["Item"]))
                elif "Update" in entry or "Delete" in entry:
                    body = entry.get("Update") or entry["Delete"]
                    stored = _stored_size(body["TableName"], body["Key"])
                    units += 2 * _units(stored if stored is not None
                                        else _item_bytes(body["Key"]))
                elif "ConditionCheck" in entry:
                    units += 0  # billed as a read
        elif op in ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"):
            with meter.lock:
                meter.ddb_read_calls[op] += 1
            return
        else:
            return
        with meter.lock:
            meter.ddb_write_calls[op] += 1
            meter.ddb_write_units[op] += units

    def after_s3(model: Any, **_: Any) -> None:
        with meter.lock:
            meter.s3_requests[model.name] += 1

    # A failed conditional write is billed too: count on "after-call" whatever the answer.
    session.events.register("before-parameter-build.dynamodb", before_dynamodb)
    session.events.register("after-call.dynamodb", after_dynamodb)
    session.events.register("after-call.s3", after_s3)


def _transitions(history: list[dict[str, Any]]) -> int:
    """Billed state transitions in one execution's history.

    Every state entered is one transition, and so is every retry of a task (a second
    ``...Scheduled`` within one entry of the state).
    """
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    scheduled = sum(1 for e in history if e["type"] in ("LambdaFunctionScheduled",
                                                          "TaskScheduled"))
    task_entries = sum(1 for e in history if e["type"] == "TaskStateEntered")
    return entered + max(0, scheduled - task_entries)


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def execution_transitions(region: str, execution_arn: str,
                          all_events: Counter[str]) -> dict[str, Any]:
    """Transitions of the parent execution and of the map run's child executions.

    On AWS each child of the Distributed Map is its own execution, found through the map
    run. moto runs the children in the parent's interpreter and writes their events to an
    event log of the map run that no API returns, so the children's figures are every
    event the interpreter recorded (``all_events``) less the parent's history.
    """
    import boto3

    sfn = boto3.client("stepfunctions", region_name=region)
    parent = _history(sfn, execution_arn)
    parent_types = Counter(e["type"] for e in parent)
    child_types = all_events - parent_types
    child_history = [{"type": t} for t, n in child_types.items() for _ in range(n)]
    map_runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    counts: dict[str, Any] = {}
    if map_runs:
        counts = sfn.describe_map_run(mapRunArn=map_runs[0]["mapRunArn"]).get(
            "executionCounts", {})
    return {
        "parent_transitions": _transitions(parent),
        "parent_event_types": dict(parent_types),
        "child_executions": int(counts.get("total", 0)),
        "child_transitions": _transitions(child_history),
        "child_event_types": dict(child_types),
    }


def count_interpreter_events(counter: Counter[str]) -> Any:
    """Count every event moto's interpreter records (parent and children); returns an undo."""
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    original = EventManager.add_event
    lock = threading.Lock()

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        with lock:
            counter[str(getattr(event_type, "value", event_type))] += 1
        return original(self, context, event_type, *args, **kwargs)

    EventManager.add_event = add_event  # type: ignore[method-assign]

    def undo() -> None:
        EventManager.add_event = original  # type: ignore[method-assign]

    return undo


def measured_run(spec: dict[str, Any], *, meter: Meter | None = None,
                 launch_rate: Any = None, history: bool = True,
                 settle_seconds: float = 120.0,
                 stop_after_seconds: float | None = None) -> dict[str, Any]:
    """One local run of ``spec`` on the bench deployment, measured; returns the figures.

    ``stop_after_seconds``: interrupt the run (as Ctrl-C does) when it has not ended by then.
    """
    from fanout.local import fargate as local_fargate
    from fanout.local import functions as local_functions
    from fanout.local.events import EventBus
    from fanout.local.runner import LocalOptions, LocalRun
    from fanout.local.tasks import EcsError

    meter = meter or Meter()
    original_invoke = local_functions.Functions.invoke
    original_put = EventBus.put
    original_run_task = local_fargate.EmulatedFargate.run_task

    def counted_run_task(self: Any, params: Any) -> Any:
        try:
            answer = original_run_task(self, params)
        except EcsError as exc:
            with meter.lock:
                meter.run_task["throttled" if "Throttl" in exc.code else "refused"] += 1
            raise
        with meter.lock:
            meter.run_task["launched" if answer.get("tasks") else "capacity"] += 1
        return answer

    def timed_invoke(self: Any, ref: str, payload: Any) -> Any:
        fn = self.find(ref)
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return original_invoke(self, ref, payload)
        finally:
            meter.invoked(fn.kind, fn.memory_mb, time.perf_counter() - started,
                          time.thread_time() - cpu)

    def counted_put(self: Any, event: dict[str, Any]) -> Any:
        with meter.lock:
            meter.events[str(event.get("detail-type"))] += 1
        return original_put(self, event)

    extra: dict[str, Any] = {}

    class Run(LocalRun):
        def _run(self, template: Any, *args: Any) -> Any:
            extra["template"] = template  # what the run's state machine was built from
            return super()._run(template, *args)

        def _execute(self, stack: Any, document: dict[str, Any], run_id: str,
                     started: float) -> dict[str, Any]:
            # moto replaces boto3's default session when it starts: hook the one in use,
            # and make the handlers' clients anew from it.
            from fanout.runtime.context import reset as reset_clients

            reset_clients()
            install_hooks(meter)
            return super()._execute(stack, document, run_id, started)

        def _summary(self, stack: Any, run_id: str, document: dict[str, Any],
                     execution: Any, started: float, *rest: Any) -> Any:
            extra["launch_times"] = sorted(
                t.created_at.timestamp() for t in (self.fargate.tasks.values()
                                                    if self.fargate else []))
            extra["launches"] = self.fargate.launches if self.fargate else 0
            if history:
                extra["transitions"] = execution_transitions(
                    stack.region, execution["executionArn"], interpreter_events)
            return super()._summary(stack, run_id, document, execution, started, *rest)

    interpreter_events: Counter[str] = Counter()
    undo_events = count_interpreter_events(interpreter_events)
    local_functions.Functions.invoke = timed_invoke  # type: ignore[method-assign]
    EventBus.put = counted_put  # type: ignore[method-assign]
    local_fargate.EmulatedFargate.run_task = counted_run_task  # type: ignore[method-assign]
    records = OUT / "runs"
    timer: threading.Timer | None = None
    try:
        options = LocalOptions(config_path=CONFIG, launch_rate=launch_rate,
                               records_dir=records, settle_seconds=settle_seconds,
                               stop_grace_seconds=0.5)
        run = Run(options)
        if stop_after_seconds is not None:
            timer = threading.Timer(stop_after_seconds, run.interrupt)
            timer.daemon = True
            timer.start()
        started = time.monotonic()
        summary = run.run(spec)
        elapsed = time.monotonic() - started
        # (``finished`` is set once the timer fired; it is cancelled only below)
        extra["stopped_by_bench"] = bool(timer is not None and timer.finished.is_set())
    finally:
        if timer is not None:
            timer.cancel()
        undo_events()
        local_functions.Functions.invoke = original_invoke  # type: ignore[method-assign]
        EventBus.put = original_put  # type: ignore[method-assign]
        local_fargate.EmulatedFargate.run_task = original_run_task  # type: ignore[method-assign]
    return {"summary": summary.to_json(), "elapsed_seconds": round(elapsed, 2),
            "meter": meter, **extra}
