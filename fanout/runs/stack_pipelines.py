"""Pipeline runs of a deployed stack, as the dashboard reads them.

:class:`StackPipelineRuns` (a :class:`fanout.ui.source.PipelineRunsSource`) reads the
stack's pipeline records (:class:`fanout.records.pipelines.PipelineRecords`) in the shape
``fanout status PIPELINE_RUN --json`` prints, with ``duration_seconds`` as the local
reader gives it, and reruns one as ``fanout rerun PIPELINE_RUN --failed|--all`` does on
the stack: a new execution of the pipeline state machine, planned by Decide
(docs/decisions/0018-pipelines-on-aws.md).
"""

from __future__ import annotations

import json
from typing import Any

from fanout.pipelines.model import MAX_PIPELINE_RUN_ID
from fanout.records.views import RunsError, now, seconds_between

#: The stack output naming the pipeline state machine.
PIPELINE_MACHINE_OUTPUT = "PipelineStateMachineArn"


def pipeline_records(stack: Any) -> Any:
    """The stack's pipeline records (the CLI's and the dashboard's reader)."""
    from fanout.records.pipelines import PipelineRecords

    return PipelineRecords(stack.output("RecordsTable"), stack.client("dynamodb"))


def start_pipeline_execution(stack: Any, run_id: str, document: dict[str, Any]) -> str:
    """Start one execution of the stack's pipeline state machine named ``run_id``: its ARN."""
    started = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.output(PIPELINE_MACHINE_OUTPUT), name=run_id,
        input=json.dumps(document))
    return str(started["executionArn"])


def with_duration(view: dict[str, Any]) -> dict[str, Any]:
    ended = view.get("finished_at") if view.get("status") != "RUNNING" else None
    return {**view, "duration_seconds": seconds_between(view.get("started_at"), ended or now())}


class StackPipelineRuns:
    """The pipeline runs of a deployed stack (``stack``: a :class:`fanout.runs.stack.Stack`
    or the dashboard function's own view of it)."""

    kind = "stack"

    def __init__(self, stack: Any) -> None:
        self.stack = stack

    def list_pipeline_runs(self, limit: int = 200) -> list[dict[str, Any]]:
        from fanout.records.pipelines import pipeline_view

        return [with_duration(pipeline_view(record))
                for record in pipeline_records(self.stack).list_pipeline_runs(limit=limit)]

    def get_pipeline_run(self, pipeline_run_id: str) -> dict[str, Any] | None:
        from fanout.records.pipelines import pipeline_view

        record = pipeline_records(self.stack).get_pipeline_run(pipeline_run_id)
        return with_duration(pipeline_view(record)) if record is not None else None

    def rerun_pipeline(self, pipeline_run_id: str, failed_only: bool) -> str:
        from fanout.names import new_run_id

        parent = self.get_pipeline_run(pipeline_run_id)
        if parent is None:
            raise RunsError(f"no pipeline run {pipeline_run_id!r} in the stack")
        if parent["status"] == "RUNNING":
            raise RunsError(f"pipeline run {pipeline_run_id} is still running")
        run_id = new_run_id(str(parent["pipeline"]), limit=MAX_PIPELINE_RUN_ID)
        start_pipeline_execution(self.stack, run_id, {
            "rerun_of": pipeline_run_id, "select": "failed" if failed_only else "all",
            "trigger": "console"})
        return run_id
