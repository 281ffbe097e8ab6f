"""Pipelines on AWS: Decide and AwaitStep (docs/decisions/0018-pipelines-on-aws.md).

One pipeline run is one execution of the pipeline state machine, a loop:

- :func:`decide` (Decide) reads the pipeline run's records, applies
  :func:`fanout.pipelines.plan.decide` (the very function the local mode uses), records the
  steps SKIPPED with their reason, writes the fan-in objects a step needs and starts the
  runs of the steps that can start (execution ``<pipeline run>.<step>`` of the run state
  machine: a retried Decide never starts a step twice), and says whether the pipeline has
  ended, with the ``changes`` it read;
- :func:`await_step` (AwaitStep, ``.waitForTaskToken``) keeps its token on the pipeline
  record only while ``changes`` is what Decide read, else answers it at once;
- StepEnded (:mod:`fanout.runtime.step_ended`, on the execution-status events) records a
  step's ending, conditionally on its run id and RUNNING (a duplicate event is a no-op), counts the
  change and answers the waiting token. A lost event is made good when AwaitStep times
  out: Decide then reads the RUNNING steps' executions (:func:`reconcile_steps`).

A step is an ordinary run whose spec carries ``pipeline_run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.stepfunctions import Executions, TaskCallbacks
from fanout.config import FanoutConfig
from fanout.errors import FanoutInputError
from fanout.pipelines.model import Pipeline
from fanout.pipelines.plan import decide as decide_steps
from fanout.pipelines.plan import pipeline_status, rerun_start
from fanout.pipelines.validate import MAX_TIMEOUT_SECONDS, parse_pipeline
from fanout.records.pipelines import PipelineRecords
from fanout.records.store import RecordsStore
from fanout.runtime.clock import Clock, iso, utcnow
from fanout.runtime.closing import Budget
from fanout.runtime.errors import InvalidPipelineSpec
from fanout.runtime.fanin import FaninCursor, Kind, fanin_key, write_fanin
from fanout.runtime.slots import DuplicateScheduledRun, claim_slot
from fanout.runtime.step_ended import reconcile_steps, stop_steps

#: AwaitStep waits at most this long for a step's end: a lost execution-status event is
#: noticed within it (Decide then reads the steps' executions). 15 minutes keeps a 14-day
#: pipeline's history under 25,000 events (about 13 events per wake-up).
WAKE_SECONDS = 900
#: The environment value that names a step's inputs manifest (as locally).
INPUTS_ENV = "FANOUT_INPUTS"


class DecideInput(BaseModel):
    """What the pipeline state machine gives Decide: the execution's name, id and start
    time, and ``input``: the execution's input (the pipeline document, a name, or a rerun)
    on the first call, Decide's own last output after (with ``timed_out`` when AwaitStep
    gave up waiting)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    pipeline_run_id: str
    execution_arn: str = ""
    start_time: str = ""
    input: Any = None


class AwaitInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str
    pipeline_run_id: str
    changes: int


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def document_of(given: Any, named: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline document an execution's input stands for: the document itself, or
    ``{"pipeline": NAME}`` (plus pipeline-wide fields) naming one of the config's."""
    if not isinstance(given, dict):
        raise InvalidPipelineSpec("the input must be a pipeline document (\"pipeline\", "
                                  "\"steps\"), {\"pipeline\": NAME} or a rerun "
                                  "({\"rerun_of\": PIPELINE_RUN, \"select\": \"failed\"})")
    if "steps" in given:
        return given
    name = given.get("pipeline")
    if isinstance(name, str) and name in named:
        return {**named[name], **given}  # a configured pipeline is named by its key
    known = ", ".join(sorted(named)) or "none"
    raise InvalidPipelineSpec(f"pipeline: no pipeline {name!r} in the config (pipelines: "
                              f"{known}); give its steps, or a configured name")


def begin(request: DecideInput, *, pipelines: PipelineRecords, runs: RecordsStore,
          config: FanoutConfig, named: Mapping[str, Any], clock: Clock = utcnow
          ) -> dict[str, Any]:
    """Record a new pipeline run from the execution's input (checked as locally: a bad
    one fails the execution with ``Fanout.InvalidPipelineSpec``, nothing started)."""
    given = request.input
    parent: dict[str, Any] | None = None
    failed_only = True
    if isinstance(given, dict) and "rerun_of" in given:
        parent = pipelines.get_pipeline_run(str(given["rerun_of"]))
        if parent is None:
            raise InvalidPipelineSpec(f"rerun_of: no pipeline run {given['rerun_of']!r}")
        if parent["status"] == "RUNNING":
            raise InvalidPipelineSpec(f"rerun_of: pipeline run {given['rerun_of']} is still "
                                      "running")
        select = given.get("select", "failed")
        if select not in ("failed", "all"):
            raise InvalidPipelineSpec(f"select: a pipeline reruns \"failed\" or \"all\", not "
                                      f"{select!r}")
        failed_only = select == "failed"
        # Started anew: by whoever starts the rerun (the console by default), not by the
        # parent's schedule, whose slot the parent holds.
        document = {**{k: v for k, v in parent["spec"].items() if k != "trigger"},
                    **{k: v for k, v in given.items() if k not in ("rerun_of", "select")}}
    else:
        document = document_of(given, named)
    try:
        pipeline = parse_pipeline(document, config)
    except FanoutInputError as exc:
        raise InvalidPipelineSpec(str(exc)) from None
    started = _when(request.start_time) if request.start_time else clock()
    shared = pipeline.shared
    if shared.get("trigger") == "schedule" and shared.get("schedule") \
            and shared.get("logical_time"):
        # A retried delivery of the schedule (another execution) starts nothing.
        owner = claim_slot(runs, str(shared["schedule"]), str(shared["logical_time"]),
                           request.pipeline_run_id, started)
        if owner != request.pipeline_run_id:
            raise DuplicateScheduledRun(f"schedule {shared['schedule']} at "
                                        f"{shared['logical_time']} already started pipeline "
                                        f"run {owner}; this duplicate delivery starts nothing")
    timeout = pipeline.timeout_seconds or MAX_TIMEOUT_SECONDS
    steps: dict[str, dict[str, Any]] = {n: {"status": "PENDING", "runs": []}
                                        for n in pipeline.steps}
    if parent is not None:
        for name, fields in rerun_start(pipeline, parent["steps"], failed_only,
                                        parent["pipeline_run_id"]).items():
            steps[name].update({k: v for k, v in fields.items() if v is not None})
            if steps[name]["status"] == "SUCCEEDED":
                steps[name]["finished_at"] = iso(started)
    record = {"pipeline_run_id": request.pipeline_run_id, "pipeline": pipeline.name,
              "spec": document, "status": "RUNNING", "trigger": document.get("trigger",
                                                                             "console"),
              "started_at": iso(started), "timeout_seconds": pipeline.timeout_seconds,
              "deadline": iso(started + timedelta(seconds=timeout)),
              "execution_arn": request.execution_arn or None,
              "parent_pipeline_run": parent["pipeline_run_id"] if parent else None}
    expires = int((started + timedelta(seconds=MAX_TIMEOUT_SECONDS,
                                       days=config.limits.record_ttl_days)).timestamp())
    pipelines.create(record, steps, expires)
    found = pipelines.get_pipeline_run(request.pipeline_run_id)
    assert found is not None
    return found


class Decider:
    """One Decide invocation over one pipeline run."""

    def __init__(self, *, pipelines: PipelineRecords, runs: RecordsStore,
                 executions: Executions, callbacks: TaskCallbacks, s3: Any, bucket: str,
                 config: FanoutConfig, named: Mapping[str, Any] | None = None,
                 clock: Clock = utcnow, budget: Budget | None = None,
                 page_records: int | None = None) -> None:
        self.pipelines, self.runs, self.executions = pipelines, runs, executions
        self.callbacks, self.s3, self.bucket, self.config = callbacks, s3, bucket, config
        self.named = named or {}
        self.clock, self.budget = clock, budget or Budget()
        self.page_records = page_records

    def __call__(self, request: DecideInput) -> dict[str, Any]:
        pid = request.pipeline_run_id
        record = self.pipelines.get_pipeline_run(pid)
        if record is None:
            record = begin(request, pipelines=self.pipelines, runs=self.runs, config=self.config,
                           named=self.named, clock=self.clock)
        if record["status"] != "RUNNING":
            return output(record, ended=True)
        pipeline = parse_pipeline(record["spec"], self.config, check_plans=False)
        self._resume_starts(pipeline, record)
        woken_by_timeout = isinstance(request.input, dict) and "timed_out" in request.input
        if woken_by_timeout and reconcile_steps(record, pipelines=self.pipelines,
                                                runs=self.runs, executions=self.executions,
                                                callbacks=self.callbacks, clock=self.clock):
            record = self.pipelines.get_pipeline_run(pid) or record
        now = self.clock()
        if now >= _when(record["deadline"]):
            reason = (f"the pipeline timed out after {record['timeout_seconds']} s"
                      if record.get("timeout_seconds") else
                      f"the pipeline ran past its longest life ({MAX_TIMEOUT_SECONDS} s)")
            stop_steps(record, "TIMED_OUT", reason, pipelines=self.pipelines,
                       executions=self.executions, clock=self.clock)
            return output(self.pipelines.get_pipeline_run(pid) or record, ended=True)
        again = self._advance(pipeline, record)
        status = {n: s["status"] for n, s in record["steps"].items()}
        final = pipeline_status(status)
        if final != "RUNNING" and not again:
            self.pipelines.update_pipeline(pid, {"status": final, "finished_at": iso(now)},
                                           expect_status="RUNNING")
            return output(self.pipelines.get_pipeline_run(pid) or record, ended=True)
        wait = max(1, min(WAKE_SECONDS, int((_when(record["deadline"]) - now).total_seconds())))
        return {**output(record, ended=False), "again": again, "wait_seconds": wait}

    def _advance(self, pipeline: Pipeline, record: dict[str, Any]) -> bool:
        """Skip and start steps until nothing changes (``record``'s steps updated in
        place); True when a fan-in is not written yet (Decide is called again at once)."""
        steps = record["steps"]
        later: set[str] = set()
        while True:
            status = {n: s["status"] for n, s in steps.items()}
            decision = decide_steps(pipeline, status)
            moved = False
            for name, reason in decision.skip.items():
                self._skip(record, name, reason)
                moved = True
            for name in decision.start:
                if name in later:
                    continue
                if self._start(pipeline, record, name):
                    moved = True
                else:
                    later.add(name)
            if not moved:
                return bool(later)

    def _skip(self, record: dict[str, Any], name: str, reason: str) -> None:
        now = iso(self.clock())
        self.pipelines.update_step(record["pipeline_run_id"], name,
                                   {"status": "SKIPPED", "reason": reason, "finished_at": now},
                                   expect_status="PENDING")
        record["steps"][name].update(status="SKIPPED", reason=reason, finished_at=now)

    def _start(self, pipeline: Pipeline, record: dict[str, Any], name: str) -> bool:
        """Start the step's run; False when its fan-in needs another invocation. A step fed
        by a step with no succeeded item is SKIPPED, as locally."""
        pid = record["pipeline_run_id"]
        state = record["steps"][name]
        document = self._document(pipeline, record, name)
        if document is None:
            return bool(state["status"] == "SKIPPED")
        run_id = f"{pid}.{name}"
        runs = [*state["runs"], run_id]
        fields = {"status": "RUNNING", "run_id": run_id, "runs": runs,
                  "started_at": iso(self.clock()), "starting": True}
        # Recorded before the execution starts: its end event always finds the step
        # RUNNING with its run id. ``starting`` is cleared once StartExecution answered.
        if not self.pipelines.update_step(pid, name, fields, expect_status="PENDING"):
            # Another Decide got there (a retried invocation): take the step as it is now.
            fresh = self.pipelines.get_pipeline_run(pid)
            state.update(fresh["steps"][name] if fresh else {"status": "RUNNING"})
            return True
        self.executions.start(run_id, document)
        self.pipelines.update_step(pid, name, {}, removes=("starting",))
        state.update(status="RUNNING", run_id=run_id, runs=runs)
        return True

    def _resume_starts(self, pipeline: Pipeline, record: dict[str, Any]) -> None:
        """Steps a crashed Decide recorded RUNNING but may not have started: start them
        (StartExecution by name: the one that started, if it did, is kept)."""
        for name, state in record["steps"].items():
            if state["status"] == "RUNNING" and state.get("starting"):
                document = self._document(pipeline, record, name, resuming=True)
                if document is not None:
                    self.executions.start(f"{record['pipeline_run_id']}.{name}", document)
                self.pipelines.update_step(record["pipeline_run_id"], name, {},
                                           removes=("starting",))

    def _document(self, pipeline: Pipeline, record: dict[str, Any], name: str,
                  resuming: bool = False) -> dict[str, Any] | None:
        """The run spec of a step's run; None while its fan-in is being written (or when
        it was SKIPPED for want of items)."""
        pid = record["pipeline_run_id"]
        state = record["steps"][name]
        step = pipeline.steps[name]
        link = {"run_id": pid, "step": name}
        if state.get("rerun_of"):  # its failed items, as its last run ran them
            shared = {k: v for k, v in pipeline.shared.items() if k != "schedule"}
            return {**shared, "rerun_of": state["rerun_of"], "select": "failed",
                    "pipeline_run": link}
        document: dict[str, Any] = {**step.spec, **pipeline.shared, "pipeline_run": link}
        if "schedule" in document:  # each step's run its own slot of the schedule's time
            document["schedule"] = f"{document['schedule']}.{name}"[:64]
        fanin = dict(state.get("fanin") or {})
        if step.items_from_step is not None:
            source = step.items_from_step
            cursor = self._fanin(record, name, "items", fanin,
                                 [(source, r) for r in record["steps"][source]["runs"]])
            if cursor is None:
                return None
            if cursor.items == 0 and not resuming:
                self._skip(record, name, f"step {source} has no succeeded item to take "
                                         "items from")
                return None
            document["items_from"] = f"s3://{self.bucket}/{fanin_key(pid, name, 'items')}"
            document["items_format"] = "jsonl"
        if step.needs:
            sources = [(n, r) for n in step.needs for r in record["steps"][n]["runs"]]
            if self._fanin(record, name, "inputs", fanin, sources) is None:
                return None
            environment = document.get("environment")
            if not isinstance(environment, dict):
                environment = dict(self.config.jobs[str(document["job"])].environment)
            document["environment"] = {
                **environment, INPUTS_ENV: f"s3://{self.bucket}/{fanin_key(pid, name, 'inputs')}"}
        return document

    def _fanin(self, record: dict[str, Any], name: str, kind: Kind, fanin: dict[str, Any],
               sources: list[tuple[str, str]]) -> FaninCursor | None:
        pid = record["pipeline_run_id"]
        cursor = FaninCursor.of(fanin.get(kind))
        if cursor.done:
            return cursor

        def save(c: FaninCursor) -> None:
            fanin[kind] = c.to_json()
            self.pipelines.update_step(pid, name, {"fanin": fanin})

        done = write_fanin(kind, sources, pipeline_run_id=pid, step=name, store=self.runs,
                           s3=self.s3, bucket=self.bucket, cursor=cursor, budget=self.budget,
                           save=save, page_records=self.page_records)
        record["steps"][name]["fanin"] = fanin
        return cursor if done else None


def output(record: dict[str, Any], *, ended: bool) -> dict[str, Any]:
    """Decide's output: all that crosses the pipeline's state (never a step's items)."""
    steps = record["steps"]
    summary = f"pipeline {record['pipeline']} run {record['pipeline_run_id']} " \
        f"{record['status']}" + (f" ({record['reason']})" if record.get("reason") else "") \
        + ": " + ", ".join(f"{n} {s['status']}" for n, s in steps.items())
    return {"pipeline_run_id": record["pipeline_run_id"], "ended": ended,
            "status": record["status"], "changes": int(record.get("changes") or 0),
            "again": False, "wait_seconds": 1, "summary": summary[:4000]}


def await_step(request: AwaitInput, *, pipelines: PipelineRecords,
               callbacks: TaskCallbacks) -> dict[str, Any]:
    """Leave the token for StepEnded, unless a step ended since Decide read the records
    (or the pipeline ended): then answer it now, and Decide runs again at once."""
    if pipelines.store_token(request.pipeline_run_id, request.token, request.changes):
        return {"waiting": True}
    callbacks.succeed(request.token, {"woken_by": "a change since Decide read the records"})
    return {"waiting": False}
