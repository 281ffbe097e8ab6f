"""``fanout local PIPELINE.json``: checks, then :class:`fanout.local.pipeline.LocalPipeline`.

A document with ``steps`` given to ``fanout local`` is a pipeline (docs/pipelines.md).
Everything is checked before the first step starts (exit 2, one line naming the step and
field): the spec, each step's run spec, the run ids, the records folder, each job's
``local_command``. Exit 0 when every step succeeded, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from fanout.cli.exits import EXIT_OK, EXIT_RUN_FAILED
from fanout.errors import Problem, UsageError

#: ``fanout local`` arguments that every step's run is given as they are.
PASSED_TO_STEPS = (("reconcile_seconds", "--reconcile-seconds"), ("faults", "--faults"),
                   ("launch_rate", "--launch-rate"), ("concurrency", "--concurrency"))


def new_pipeline_run_id(name: str) -> str:
    """``<pipeline>-<UTC time>-<random>``: room is left for ``.<step>`` in a run id."""
    from fanout.names import new_run_id
    from fanout.pipelines.model import MAX_PIPELINE_RUN_ID

    return new_run_id(name, limit=MAX_PIPELINE_RUN_ID)


def check_pipeline_run_id(run_id: str) -> None:
    from fanout.names import run_id_problem
    from fanout.pipelines.model import MAX_PIPELINE_RUN_ID

    problem = run_id_problem(run_id)
    if problem is None and len(run_id) > MAX_PIPELINE_RUN_ID:
        problem = Problem("--run-id", f"is {len(run_id)} characters; a pipeline run id has at "
                                      f"most {MAX_PIPELINE_RUN_ID} (its steps' run ids add "
                                      "'.<step>')")
    if problem:
        raise UsageError([problem])


def step_args(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for name, flag in PASSED_TO_STEPS:
        value = getattr(args, name, None)
        if value is not None:
            out += [flag, str(value)]
    if getattr(args, "docker", False):
        out.append("--docker")
    return out


def run_local_pipeline(args: argparse.Namespace, raw: dict[str, Any]) -> int:
    """Check the pipeline and everything it needs, then run it to its end."""
    from fanout.cli.args import load_config_path, logical_time_iso
    from fanout.local.checks import check_local_command, check_records_dir
    from fanout.local.fargate import user_environment
    from fanout.local.pipeline import LocalPipeline, PipelineOptions
    from fanout.pipelines.validate import parse_pipeline

    for name, flag in (("items", "--items"), ("notify", "--notify")):
        if getattr(args, name, None):
            raise UsageError([Problem(flag, "is for a run spec, not a pipeline (a step fed by "
                                            "another takes items_from: {\"step\": NAME})")])
    logical_time = logical_time_iso(getattr(args, "logical_time", None))
    if logical_time is not None:
        raw = {**raw, "logical_time": logical_time}
    config = load_config_path(args.config)
    pipeline = parse_pipeline(raw, config)
    run_id = args.run_id or new_pipeline_run_id(pipeline.name)
    check_pipeline_run_id(run_id)
    records_dir = Path(args.records_dir)
    check_records_dir(records_dir, run_id)
    for name in pipeline.steps:
        check_records_dir(records_dir, f"{run_id}.{name}")
    if not getattr(args, "docker", False):
        cwd = Path(args.config).resolve().parent
        for step in pipeline.steps.values():
            check_local_command(str(step.spec["job"]), config, cwd, user_environment(os.environ))
    options = PipelineOptions(config_path=Path(args.config).resolve(),
                              records_dir=records_dir.resolve(), run_id=run_id,
                              step_args=step_args(args))
    return run_pipeline(LocalPipeline(pipeline, raw, options, say=_say), args.json)


def run_pipeline(local: Any, as_json: bool) -> int:
    """Run ``local`` (a LocalPipeline) with the stop signals ending it cleanly; print its
    summary (JSON, or a table) on stdout; the exit code says how it ended."""
    previous = {sig: signal.signal(sig, lambda *_: local.interrupt())
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        summary = local.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    with contextlib.suppress(OSError):
        if as_json:
            from fanout.cli.render import print_json

            print_json(summary)
        else:
            print(summary_text(summary))
    return EXIT_OK if summary["status"] == "SUCCEEDED" else EXIT_RUN_FAILED


def summary_text(summary: dict[str, Any]) -> str:
    lines = [f"pipeline {summary['pipeline']}  run {summary['pipeline_run_id']}  "
             f"{summary['status']}" + (f"  ({summary['reason']})" if summary["reason"] else "")
             + (f"  rerun of {summary['parent_pipeline_run']}"
                if summary.get("parent_pipeline_run") else "")]
    width = max(len(n) for n in summary["steps"])
    for name, step in summary["steps"].items():
        counts = f"{step['succeeded']}/{step['total']} succeeded" \
            if step["total"] is not None else ""
        lines.append(f"  {name:<{width}}  {step['status']:<9}  {step['run_id'] or '-':<40}  "
                     f"{counts}" + (f"  {step['reason']}" if step["reason"] else ""))
    if summary.get("records"):
        lines.append(f"records: {summary['records']}")
    elif summary.get("execution_arn"):
        lines.append(f"execution: {summary['execution_arn']}")
    return "\n".join(line.rstrip() for line in lines)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(f"fanout local: {line}", file=sys.stderr)


def local_pipeline_record(records_dir: Path, run_id: str) -> dict[str, Any] | None:
    """The record of a local pipeline run, or None when ``run_id`` is none."""
    import json

    from fanout.local.pipeline import PIPELINE_RECORD

    if not run_id or "/" in run_id or run_id.startswith("."):
        return None
    path = records_dir / run_id / PIPELINE_RECORD
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def rerun_local_pipeline(args: argparse.Namespace, parent: dict[str, Any]) -> int:
    """``fanout rerun PIPELINE_RUN --failed|--all --local``: a new pipeline run linked to
    ``parent`` (docs/pipelines.md: which steps are carried over, rerun or run again)."""
    from fanout.cli.args import load_config_path
    from fanout.local.checks import check_records_dir
    from fanout.local.pipeline import LocalPipeline, PipelineOptions, StepState
    from fanout.pipelines.plan import rerun_start
    from fanout.pipelines.validate import parse_pipeline

    if args.item:
        raise UsageError([Problem("--item", "is for a run; a pipeline reruns --failed or --all")])
    if args.failed and args.all:
        raise UsageError([Problem("--all", "give --failed or --all, not both")])
    if parent["status"] == "RUNNING" and _alive(parent.get("pid")):
        raise UsageError([Problem("RUN", f"pipeline run {parent['pipeline_run_id']} is still "
                                         "running")])
    config_path = Path(parent.get("config") or args.config)
    pipeline = parse_pipeline(parent["spec"], load_config_path(config_path))
    start = {name: StepState(**fields) for name, fields in rerun_start(
        pipeline, parent["steps"], args.failed, parent["pipeline_run_id"]).items()}
    name = pipeline.name
    run_id = args.run_id or new_pipeline_run_id(name)
    check_pipeline_run_id(run_id)
    records_dir = Path(args.records_dir)
    for folder in [run_id, *(f"{run_id}.{n}" for n in pipeline.steps)]:
        check_records_dir(records_dir, folder)
    options = PipelineOptions(config_path=config_path.resolve(),
                              records_dir=records_dir.resolve(), run_id=run_id,
                              parent=parent["pipeline_run_id"], start_from=start)
    return run_pipeline(LocalPipeline(pipeline, parent["spec"], options, say=_say), args.json)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
