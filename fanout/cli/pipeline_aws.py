"""Pipelines on the deployed stack: ``fanout start PIPELINE.json``, ``fanout status
PIPELINE_RUN``, ``fanout rerun PIPELINE_RUN --failed|--all`` and ``fanout stop
PIPELINE_RUN``.

A pipeline run is one execution of the stack's pipeline state machine (output
``PipelineStateMachineArn``), named by the pipeline run id; its records are read with
:class:`fanout.records.pipelines.PipelineRecords` (docs/decisions/0018-pipelines-on-aws.md).
Bad input exits 2 with one line, nothing started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from fanout.cli.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED
from fanout.errors import Problem, UsageError
from fanout.policy import EXECUTION_INPUT_LIMIT
from fanout.runs.stack_pipelines import (
    PIPELINE_MACHINE_OUTPUT,
    pipeline_records,
    start_pipeline_execution,
)

POLL_SECONDS = 2.0




def stack_pipeline_run(stack: Any, pipeline_run_id: str) -> dict[str, Any] | None:
    """The pipeline run on the stack as users read it, or None when there is none."""
    from fanout.records.pipelines import pipeline_view

    record = pipeline_records(stack).get_pipeline_run(pipeline_run_id)
    return pipeline_view(record) if record is not None else None


def resolve_document(document: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline document to start, checked against the config when there is one: a
    ``{"pipeline": NAME}`` of the config's ``pipelines`` becomes its document."""
    from fanout.cli.args import load_config_path
    from fanout.pipelines.validate import parse_pipeline

    if not Path(args.config).exists():
        return document
    config = load_config_path(args.config)
    if "steps" not in document:
        name = document.get("pipeline")
        if name not in config.pipelines:
            known = ", ".join(sorted(config.pipelines)) or "none"
            raise UsageError([Problem("pipeline", f"no pipeline {name!r} in {args.config} "
                                                  f"(pipelines: {known}); give its steps")])
        document = {**config.pipelines[str(name)], **document}
    parse_pipeline(document, config)  # a bad pipeline: exit 2, nothing started
    return document


def start_pipeline(args: argparse.Namespace, document: dict[str, Any]) -> int:
    """``fanout start PIPELINE.json``: one execution of the pipeline state machine."""
    from fanout.cli.deployment import deployment
    from fanout.cli.pipeline import check_pipeline_run_id, new_pipeline_run_id

    document = {**resolve_document(document, args), "trigger": "cli"}
    name = str(document.get("pipeline"))
    run_id = args.run_id or new_pipeline_run_id(name)
    check_pipeline_run_id(run_id)
    size = len(json.dumps(document).encode())
    if size > EXECUTION_INPUT_LIMIT:
        raise UsageError([Problem("spec", f"is {size:,} bytes, over Step Functions' limit of "
                                          f"{EXECUTION_INPUT_LIMIT:,} for an execution's "
                                          "input; name it in the config (pipelines) and "
                                          "start it by name")])
    deploy = deployment(args)
    arn = start_pipeline_execution(deploy, run_id, document)
    steps = list(document.get("steps") or {})
    return _announce(deploy, run_id, arn, steps, args)


def rerun_pipeline(args: argparse.Namespace, stack: Any, parent: dict[str, Any]) -> int:
    """``fanout rerun PIPELINE_RUN --failed|--all``: a new pipeline run that Decide plans
    as the local rerun does (:func:`fanout.pipelines.plan.rerun_start`)."""
    from fanout.cli.pipeline import check_pipeline_run_id, new_pipeline_run_id

    if args.item:
        raise UsageError([Problem("--item", "is for a run; a pipeline reruns --failed or --all")])
    if args.failed and args.all:
        raise UsageError([Problem("--all", "give --failed or --all, not both")])
    if parent["status"] == "RUNNING":
        raise UsageError([Problem("RUN", f"pipeline run {parent['pipeline_run_id']} is still "
                                         "running")])
    run_id = args.run_id or new_pipeline_run_id(str(parent["pipeline"]))
    check_pipeline_run_id(run_id)
    select = "failed" if args.failed else "all"
    arn = start_pipeline_execution(stack, run_id, {"rerun_of": parent["pipeline_run_id"],
                                                   "select": select, "trigger": "cli"})
    return _announce(stack, run_id, arn, list(parent["steps"]), args)


def _announce(stack: Any, run_id: str, arn: str, steps: list[str],
              args: argparse.Namespace) -> int:
    from fanout.cli.render import print_json
    from fanout.names import console_url

    if args.json and not args.wait:
        print_json({"pipeline_run_id": run_id, "status": "RUNNING", "execution_arn": arn,
                    "console_url": console_url(arn),
                    "steps": {s: {"status": "PENDING", "run_id": f"{run_id}.{s}"}
                              for s in steps}})
        return EXIT_OK
    out = sys.stderr if args.json else sys.stdout
    print(f"started pipeline run {run_id}", file=out)
    link = console_url(arn)
    if link:
        print(f"console: {link}", file=out)
    return follow_pipeline(stack, run_id, arn, args.json) if args.wait else EXIT_OK


def follow_pipeline(stack: Any, run_id: str, arn: str, as_json: bool) -> int:
    """Poll the pipeline run's record until it ends (a remote run: nothing to await but
    its record); Ctrl-C stops following, never the pipeline."""
    from fanout.names import console_url

    seen: dict[str, str] = {}
    try:
        while True:
            view = stack_pipeline_run(stack, run_id)
            if view is None:  # not recorded yet, or refused by Decide (a bad input)
                state = stack.client("stepfunctions").describe_execution(executionArn=arn)
                if state["status"] != "RUNNING":
                    print(f"fanout: the pipeline's execution ended {state['status']} before "
                          f"it was recorded ({state.get('cause') or state.get('error') or ''})"
                          f": {console_url(arn)}", file=sys.stderr)
                    return EXIT_RUN_FAILED
            else:
                for name, step in view["steps"].items():
                    if seen.get(name) != step["status"]:
                        seen[name] = step["status"]
                        print(f"fanout: step {name}: {step['status']}"
                              + (f" ({step['reason']})" if step["reason"] else ""),
                              file=sys.stderr)
                if view["status"] != "RUNNING":
                    break
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        print(f"\nstopped following; pipeline run {run_id} goes on", file=sys.stderr)
        return EXIT_INTERRUPTED
    show_pipeline(view, as_json)
    return EXIT_OK if view["status"] == "SUCCEEDED" else EXIT_RUN_FAILED


def show_pipeline(view: dict[str, Any], as_json: bool) -> None:
    from fanout.cli.pipeline import summary_text
    from fanout.cli.render import print_json

    if as_json:
        print_json(view)
    else:
        print(summary_text(view))


def stop_pipeline(stack: Any, view: dict[str, Any]) -> int:
    """``fanout stop PIPELINE_RUN``: stop its execution; StepEnded, on that ending, stops
    the running steps' runs (their items settle ABORTED) and skips the others."""
    from fanout.runs.stack import STOP_CAUSE, STOP_ERROR

    run_id = view["pipeline_run_id"]
    if view["status"] != "RUNNING":
        print(f"pipeline run {run_id} has already ended: {view['status']}")
        return EXIT_OK
    arn = view.get("execution_arn") or stack.output(PIPELINE_MACHINE_OUTPUT).replace(
        ":stateMachine:", ":execution:", 1) + f":{run_id}"
    stack.client("stepfunctions").stop_execution(executionArn=arn, error=STOP_ERROR,
                                                 cause=STOP_CAUSE)
    print(f"stopping pipeline run {run_id}: its running steps are stopped (their items "
          "settle ABORTED), the steps not started are SKIPPED")
    return EXIT_OK
