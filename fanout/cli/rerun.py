"""``fanout rerun RUN``: a new run over the failed, chosen or all items of a run, linked to
it, that runs what the run ran: on the stack, the job as its record says (Expand refuses a
job whose definition changed, unless ``--current-config``); locally, the config and folder
the run was made with, kept in its records folder (:mod:`fanout.local.made_with`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fanout.cli.exits import EXIT_OK
from fanout.cli.runs import add_source_arguments, item_index, source, the_run
from fanout.errors import Problem, SpecError, UsageError


def run_rerun(args: argparse.Namespace) -> int:
    from fanout.cli.args import check_run_id

    check_run_id(args.run_id)  # first: before any read of a stack or a records folder
    if args.local:
        from fanout.cli.pipeline import local_pipeline_record, rerun_local_pipeline

        pipeline = local_pipeline_record(Path(args.records_dir), args.run)
        if pipeline is not None:  # a pipeline run: docs/pipelines.md
            return rerun_local_pipeline(args, pipeline)
    if args.all and (args.failed or args.item):
        raise UsageError([Problem("--all", "give --all, --failed or --item, one of them")])
    if args.item and args.failed:
        raise UsageError([Problem("--item", "give --failed or --item, not both")])
    runs = source(args)
    if not args.local and runs.get_run(args.run) is None:  # a pipeline run on the stack?
        from fanout.cli.pipeline_aws import rerun_pipeline, stack_pipeline_run
        from fanout.runs.stack import StackRuns

        assert isinstance(runs, StackRuns)
        parent = stack_pipeline_run(runs.stack, args.run)
        if parent is not None:
            return rerun_pipeline(args, runs.stack, parent)
    run = the_run(runs, args)
    indexes = sorted(set(args.item)) if args.item else None
    if args.local:
        from fanout.cli.local import execute
        from fanout.runs.local import LocalRuns

        assert isinstance(runs, LocalRuns)
        spec = _bad_input(lambda: runs.rerun_spec(run["run_id"], args.failed, indexes))
        if args.pipeline_run:  # a step of a pipeline's rerun (fanout.local.pipeline)
            spec["pipeline_run"] = {"run_id": args.pipeline_run, "step": args.pipeline_step}
        return execute(args, made_with(runs, run["run_id"], args, spec))
    from fanout.cli.deployment import deployment
    from fanout.cli.remote import announce, follow
    from fanout.runs.stack import StackRuns

    assert isinstance(runs, StackRuns)
    if run["status"] == "RUNNING":
        raise UsageError([Problem("RUN", f"run {run['run_id']} is still running")])
    if run["status"] == "REJECTED":
        raise UsageError([Problem("RUN", f"run {run['run_id']} was rejected: no items")])
    changed = _changed_job(runs, run["run_id"], args.config)
    if changed and not args.current_config:
        raise UsageError([Problem("RUN", (
            f"job {run['job']} changed since run {run['run_id']} ran ({'; '.join(changed)}, "
            f"in {args.config}): the rerun would run another program; add --current-config "
            "to run the job as deployed now"))])
    if args.current_config:
        print(f"fanout: rerun of {run['run_id']} with job {run['job']} as deployed now, not as "
              "the run recorded it" + (f": {'; '.join(changed)} (in {args.config})"
                                        if changed else ""), file=sys.stderr)
    run_id, arn = _bad_input(lambda: runs.start_rerun(
        run["run_id"], args.failed, indexes, new_run_id=args.run_id, trigger="cli",
        current_config=args.current_config))
    announce(run_id, arn, args.json, args.wait)
    return follow(deployment(args), run_id, arn, args.json) if args.wait else EXIT_OK


def made_with(runs: Any, run_id: str, args: argparse.Namespace,
              spec: dict[str, Any]) -> dict[str, Any]:
    """The local rerun's spec, pointed at the config and folder its run was made with
    (``args.config``, ``args.task_dir``). With ``--current-config``: the current config, said
    on stderr with how its job differs, and the job's current templates where the run took
    the job's. A run that kept no config is refused unless the current one is asked for."""
    from fanout.local.made_with import CONFIG_COPY, differences

    made = runs.made_with(run_id)
    if made is None and not args.current_config:
        raise UsageError([Problem("RUN", f"run {run_id} recorded no config (made by an older "
                                         "fanout): add --current-config to rerun it with "
                                         f"{args.config}")])
    current = _current_job(args.config, made["job"] if made else str(spec["job"]))
    changed = differences(made["definition"], current) if made and current else []
    if args.current_config:
        print(f"fanout: rerun of {run_id} with the current config {args.config}, not the one "
              f"it was made with" + (f" ({made['config']})" if made else ""), file=sys.stderr)
        said = changed or ["(its job is defined the same)" if made
                           else "(what it was made with was not recorded)"]
        for line in said:
            print(f"fanout:   {line}", file=sys.stderr)
        if made:  # templates the run took from its job are the job's as defined now
            spec = {k: v for k, v in spec.items()
                    if k not in ("command", "environment") or v != made["definition"].get(k)}
        return spec
    assert made is not None
    args.config = str(runs.records_dir / run_id / CONFIG_COPY)
    args.task_dir = Path(made["folder"])
    if changed:
        print(f"fanout: rerun of {run_id} with the config it was made with ({made['config']} "
              "as it was then); the current config differs (--current-config to use it):",
              file=sys.stderr)
        for line in changed:
            print(f"fanout:   {line}", file=sys.stderr)
    return spec


def _changed_job(runs: Any, run_id: str, config: str) -> list[str]:
    """How the config defines the run's job otherwise than the run recorded it (checked
    before starting anything; Expand checks it against the deployment itself)."""
    from fanout.config import load_config_file
    from fanout.errors import FanoutInputError
    from fanout.runtime.rerun import changed_definition

    record = runs.record(run_id)
    try:
        job = load_config_file(config).jobs.get(record.job) if Path(config).is_file() else None
    except FanoutInputError:
        return []
    return changed_definition(record.settings, job) if job is not None else []


def _current_job(config: str, job: str) -> dict[str, Any]:
    """The job as the current config defines it ({} when it cannot be read or lacks it:
    a faithful rerun does not need it)."""
    from fanout.config import load_config_file
    from fanout.errors import FanoutInputError

    try:
        found = load_config_file(config).jobs.get(job) if Path(config).is_file() else None
    except FanoutInputError:
        return {}
    return found.model_dump(mode="json") if found else {}


def _bad_input(call: Any) -> Any:
    """A rerun that cannot be (nothing to rerun, an unknown index): exit 2, one line."""
    try:
        return call()
    except SpecError as exc:
        raise UsageError(exc.problems) from None


# --- arguments ---------------------------------------------------------------------------------


def add(subparsers: Any) -> None:
    rerun = subparsers.add_parser(
        "rerun", help="a new run over the failed, chosen or all items of a run, linked to it; "
                      "for a pipeline run, its failed steps and what follows them")
    rerun.add_argument("run", metavar="RUN")
    rerun.add_argument("--failed", action="store_true",
                       help="only the items that did not succeed (default: all)")
    rerun.add_argument("--all", action="store_true",
                       help="every item (the default for a run); for a pipeline run, every "
                            "step")
    # Set by a pipeline's rerun on the rerun of one of its steps (docs/pipelines.md).
    rerun.add_argument("--pipeline-run", help=argparse.SUPPRESS)
    rerun.add_argument("--pipeline-step", help=argparse.SUPPRESS)
    rerun.add_argument("--item", action="append", type=item_index, default=[], metavar="INDEX",
                       help="only this item (repeat for more)")
    rerun.add_argument("--run-id", metavar="ID", help="the new run's id (default: made up)")
    rerun.add_argument("--wait", action="store_true", help="follow the run to its end")
    rerun.add_argument("--current-config", action="store_true",
                       help="run the job as the current config defines it (--config, or the "
                            "stack as deployed now), not as the run was made with; locally, "
                            "show how they differ")
    add_source_arguments(rerun)
    rerun.set_defaults(func=run_rerun)
