"""Expand: validate and expand the spec, write the items manifest and the run record.

A bad spec writes a REJECTED run record and raises ``Fanout.InvalidRunSpec`` whose message
names every bad field; nothing else is written and nothing is launched.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.s3 import write_manifest
from fanout.config import FanoutConfig
from fanout.errors import Problem, SpecError
from fanout.records.model import RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime import errors
from fanout.runtime.clock import Clock, iso, parse, utcnow
from fanout.runtime.packing import batch_lines
from fanout.runtime.rerun import resolve_rerun
from fanout.runtime.slots import guard_schedule
from fanout.schema import MANIFEST_KEY, RESULTS_PREFIX
from fanout.settings import ExpandEnv


class ExpandInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    spec: Any = None
    run_id: str
    execution_arn: str = ""
    start_time: str | None = None


class ExpandOutput(BaseModel):
    """The state the Distributed Map reads (docs/decisions/0001)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    job: str
    total: int
    bucket: str
    manifest_key: str
    #: Where the map writes its children's results (its ResultWriter), never the payload.
    results_prefix: str
    max_concurrency: int
    tolerated_failure_percent: float
    timeout_seconds: int
    callback_timeout_seconds: int


def config_of(env: ExpandEnv) -> FanoutConfig:
    return FanoutConfig(jobs=env.fanout_jobs, limits=env.fanout_limits)


def expand(request: ExpandInput, *, env: ExpandEnv, store: RecordsStore, s3: Any,
           clock: Clock = utcnow) -> ExpandOutput:
    from fanout.spec.items_from import ItemsSource
    from fanout.spec.plan import plan_run
    from fanout.spec.validate import parse_spec

    config = config_of(env)
    started = parse(request.start_time) if request.start_time else clock()
    raw = request.spec
    try:
        spec = parse_spec(resolve_rerun(raw, store=store, s3=s3, bucket=env.fanout_bucket,
                                        jobs=config.jobs), config)
        items = None
        if spec.items_from:
            fmt = spec.source_format()
            assert fmt is not None
            # Streamed from S3 at each walk: a million rows never sit in memory at once.
            items = ItemsSource(_s3_object(s3, spec.items_from), fmt)
        logical_time = spec.logical_time or started
        plan = plan_run(spec, config, run_id=request.run_id, logical_time=logical_time,
                        items=items)
    except SpecError as exc:
        _reject(store, request, raw, started, exc, env.fanout_limits.record_ttl_days)
        raise errors.InvalidRunSpec(exc.message) from None

    guard_schedule(store, spec, request.run_id, iso(plan.logical_time), clock())
    key = MANIFEST_KEY.format(run_id=request.run_id)
    k, c = plan.packing.items_per_task, plan.packing.per_task_concurrency
    lines = plan.json_lines()
    try:
        # Packed: one element (one child execution) per batch of K items (decisions/0020).
        write_manifest(s3, env.fanout_bucket, key, batch_lines(lines, k) if k > 1 else lines)
    except ValueError as exc:  # a batch over a child execution's input limit
        error = SpecError([Problem("items_per_task", str(exc))])
        _reject(store, request, raw, started, error, env.fanout_limits.record_ttl_days)
        raise errors.InvalidRunSpec(error.message) from None
    settings = plan.settings
    expires = env.fanout_limits.records_expire(started)
    run = RunRecord(
        run_id=request.run_id, job=spec.job, status="RUNNING", started_at=iso(started),
        total=plan.count,
        settings={**json.loads(settings.model_dump_json()), "expires_at": expires,
                  # "auto" resolved: how the dispatcher packs the items (decisions/0020)
                  "packing": {"items_per_task": plan.packing.items_per_task,
                              "per_task_concurrency": plan.packing.per_task_concurrency}},
        trigger=spec.trigger, logical_time=iso(plan.logical_time),
        execution_arn=request.execution_arn, parent_run=spec.parent_run, expires_at=expires,
    )
    # False on a retried Expand: the record is already the same run.
    store.create_run(run, spec=raw)
    return ExpandOutput(
        run_id=request.run_id, job=spec.job, total=plan.count, bucket=env.fanout_bucket,
        manifest_key=key, results_prefix=RESULTS_PREFIX.format(run_id=request.run_id),
        # Packed, the map's children are batches: max_concurrency // c tasks run
        # max_concurrency items at once. A batch child fails when any of its items did, so
        # the map tolerates them all and Finalize judges the run by its items' counts.
        max_concurrency=max(1, settings.max_concurrency // c) if k > 1
        else settings.max_concurrency,
        tolerated_failure_percent=100.0 if k > 1 else settings.tolerated_failure_percent,
        timeout_seconds=settings.timeout_seconds,
        # An item may wait for its launch as long as its run lives (the launch gate), and
        # Reconcile ends a task at its own timeout, counted from its launch: the callback
        # is given up on only when the run itself could no longer be running. A batch's
        # task runs its items ceil(K / c) rounds one after another.
        callback_timeout_seconds=max(env.fanout_limits.run_timeout_hours * 3600,
                                     math.ceil(k / c) * settings.timeout_seconds
                                     + env.fanout_limits.callback_grace_seconds),
    )


def _reject(store: RecordsStore, request: ExpandInput, raw: Any, started: datetime,
            exc: SpecError, ttl_days: int) -> None:
    job = raw.get("job") if isinstance(raw, dict) else None
    expires = int((started + timedelta(days=ttl_days)).timestamp())
    store.create_run(RunRecord(
        run_id=request.run_id, job=str(job) if isinstance(job, str) and job else "-",
        status="REJECTED", started_at=iso(started),
        trigger=str(raw.get("trigger", "console")) if isinstance(raw, dict) else "console",
        execution_arn=request.execution_arn, summary=exc.message,
        problems=[str(p) for p in exc.problems], finished_at=iso(started),
        expires_at=expires,
    ), spec=raw if raw is not None else {})


def _s3_object(s3: Any, uri: str) -> Callable[[], Any]:
    """Opens the object ``uri`` names (its body, read in chunks) each time it is called."""
    bucket, _, key = uri[len("s3://"):].partition("/")

    def open_body() -> Any:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:  # botocore's NoSuchKey/AccessDenied: the spec names a bad object
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise SpecError([Problem("items_from", f"cannot read {uri} ({code})")]) from None

    return open_body
