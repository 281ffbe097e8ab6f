"""StepEnded: a run or a pipeline's execution ended (docs/decisions/0018-pipelines-on-aws.md).

- A run that is a pipeline's step (its execution ``<pipeline run>.<step>``): its ending is
  recorded on the step, conditionally on its run id and RUNNING (a duplicate or late event
  is a no-op), the pipeline's ``changes`` counted and AwaitStep's token answered
  (:func:`end_step`). Decide calls the same when it finds an execution whose event was lost
  (:func:`reconcile_steps`).
- A pipeline's own execution stopped, crashed or timed out: its running steps' executions
  are stopped, the others SKIPPED (:func:`stop_steps`; Decide's timeout uses it too).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.stepfunctions import Executions, TaskCallbacks
from fanout.pipelines.plan import skip_all_pending
from fanout.records.pipelines import PipelineRecords
from fanout.records.store import RecordsStore
from fanout.runtime.clock import Clock, iso, utcnow

#: Error given to a step's execution stopped because its pipeline stopped or timed out.
STEP_STOPPED = "Fanout.PipelineStopped"
#: Execution statuses of a pipeline that end it without Decide (stopped, crashed, timed out).
PIPELINE_STOPPED = ("ABORTED", "FAILED", "TIMED_OUT")
#: The statuses an ended execution has.
EXECUTION_ENDED = ("SUCCEEDED", *PIPELINE_STOPPED)


def run_ending(run: Any, execution_status: str) -> tuple[str, str | None, dict[str, Any]]:
    """A step's status, reason and counts from its run's record (when the run is closed)
    or, failing that, its execution's status."""
    if run is not None and run.status != "RUNNING":
        totals = run.totals()
        counts = {"total": run.total, "succeeded": totals.get("succeeded", 0)}
        if run.status == "SUCCEEDED":
            return "SUCCEEDED", None, counts
        if run.status == "REJECTED":
            return "REJECTED", run.summary or "the step's run spec was rejected", counts
        return str(run.status), (f"{totals.get('failed', 0)} failed, "
                                 f"{totals.get('timed_out', 0)} timed out, "
                                 f"{totals.get('aborted', 0)} aborted of {run.total}"), counts
    status = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED"}.get(execution_status, "ABORTED")
    return status, None if status == "SUCCEEDED" else \
        f"its run's execution ended {execution_status}", {}


def end_step(pipeline_run_id: str, step: str, run_id: str, execution_status: str, *,
             pipelines: PipelineRecords, runs: RecordsStore, callbacks: TaskCallbacks,
             clock: Clock = utcnow) -> bool:
    """Record that step ``step``'s run ``run_id`` ended (once: False for a duplicate, a
    late event or a run that is no step), then wake the pipeline's loop."""
    status, reason, counts = run_ending(runs.get_run(run_id), execution_status)
    fields = {"status": status, "reason": reason, "finished_at": iso(clock()), **counts}
    if not pipelines.update_step(pipeline_run_id, step, fields, expect_status="RUNNING",
                                 expect_run=run_id):
        return False
    wake(pipeline_run_id, pipelines=pipelines, callbacks=callbacks, by=run_id)
    return True


def wake(pipeline_run_id: str, *, pipelines: PipelineRecords, callbacks: TaskCallbacks,
         by: str) -> None:
    """Count a change, and answer the token AwaitStep left, if it left one."""
    record = pipelines.count_change(pipeline_run_id)
    token = (record or {}).get("wait_token")
    if token and pipelines.take_token(pipeline_run_id, token):
        callbacks.succeed(token, {"woken_by": by})


def reconcile_steps(record: dict[str, Any], *, pipelines: PipelineRecords, runs: RecordsStore,
                    executions: Executions, callbacks: TaskCallbacks,
                    clock: Clock = utcnow) -> bool:
    """The RUNNING steps whose execution ended without its event reaching StepEnded
    (lost): recorded from DescribeExecution. True when one was."""
    ended = False
    for name, state in record["steps"].items():
        if state["status"] != "RUNNING" or state.get("starting") or not state.get("run_id"):
            continue
        found = executions.status(state["run_id"])
        if found is not None and found != "RUNNING":
            ended |= end_step(record["pipeline_run_id"], name, state["run_id"], found,
                              pipelines=pipelines, runs=runs, callbacks=callbacks,
                              clock=clock)
    return ended


def stop_steps(record: dict[str, Any], status: str, reason: str, *,
               pipelines: PipelineRecords, executions: Executions,
               clock: Clock = utcnow) -> None:
    """End a pipeline run that is stopped or timed out: its running steps' executions are
    stopped (their Abort path settles their items ABORTED) and recorded ABORTED, the steps
    not started SKIPPED, the pipeline ``status``, all with ``reason``."""
    pid = record["pipeline_run_id"]
    now = iso(clock())
    statuses = {n: s["status"] for n, s in record["steps"].items()}
    for name, why in skip_all_pending(statuses, reason).items():
        pipelines.update_step(pid, name, {"status": "SKIPPED", "reason": why,
                                          "finished_at": now}, expect_status="PENDING")
    for name, state in record["steps"].items():
        if state["status"] == "RUNNING" and state.get("run_id"):
            executions.stop(state["run_id"], STEP_STOPPED, reason)
            pipelines.update_step(pid, name, {"status": "ABORTED", "reason": reason,
                                              "finished_at": now},
                                  expect_status="RUNNING", expect_run=state["run_id"])
    pipelines.update_pipeline(pid, {"status": status, "reason": reason, "finished_at": now},
                              expect_status="RUNNING")


class ExecutionEnded(BaseModel):
    """A "Step Functions Execution Status Change" event (of the run state machine: a step
    may have ended; of the pipeline state machine: a pipeline may have stopped)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    detail: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.detail.get("name", ""))

    @property
    def status(self) -> str:
        return str(self.detail.get("status", ""))

    @property
    def state_machine(self) -> str:
        return str(self.detail.get("stateMachineArn", ""))


def step_ended(event: ExecutionEnded, *, pipeline_machine: str, pipelines: PipelineRecords,
               runs: RecordsStore, executions: Executions, callbacks: TaskCallbacks,
               clock: Clock = utcnow) -> dict[str, Any]:
    """StepEnded: a run that is a pipeline's step ended (record it, wake the loop), or a
    pipeline's own execution stopped, crashed or timed out (stop its steps)."""
    if event.status not in EXECUTION_ENDED:
        return {"ignored": f"status {event.status}"}
    if event.state_machine.endswith(f":{pipeline_machine}"):
        record = pipelines.get_pipeline_run(event.name)
        if record is None or record["status"] != "RUNNING" \
                or event.status not in PIPELINE_STOPPED:
            return {"ignored": "the pipeline run has ended"}
        stop_steps(record, "TIMED_OUT" if event.status == "TIMED_OUT" else "ABORTED",
                   f"the pipeline's execution ended {event.status}", pipelines=pipelines,
                   executions=executions, clock=clock)
        return {"pipeline_run_id": event.name, "stopped": True}
    if "." not in event.name:
        return {"ignored": "not a pipeline's step"}
    pipeline_run_id, step = event.name.rsplit(".", 1)
    recorded = end_step(pipeline_run_id, step, event.name, event.status, pipelines=pipelines,
                        runs=runs, callbacks=callbacks, clock=clock)
    return {"pipeline_run_id": pipeline_run_id, "step": step, "recorded": recorded}
