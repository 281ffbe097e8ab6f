"""``fanout start`` (a run on the deployed stack), and following a run to its end.

The stack is found by name (``--stack``, default the config's ``stack_name``):
:mod:`fanout.cli.deployment`. Bad input (unknown stack, run, item; a bad spec) exits 2
with one line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.cli.args import (
    add_spec_arguments,
    add_stack_arguments,
    check_run_id,
    load_config_path,
    spec_document,
)
from fanout.cli.deployment import Deployment, deployment
from fanout.cli.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, exit_for
from fanout.cli.render import print_json, progress_line, run_text, with_totals
from fanout.errors import Problem, UsageError
from fanout.names import console_url, new_run_id
from fanout.policy import EXECUTION_INPUT_LIMIT

if TYPE_CHECKING:
    from fanout.records.model import RunRecord

POLL_SECONDS = 2.0


def follow(deploy: Deployment, run_id: str, execution_arn: str, as_json: bool) -> int:
    """Show progress until the run ends; Ctrl-C stops following, never the run."""
    store = deploy.records()
    sfn = deploy.client("stepfunctions")
    began = time.monotonic()
    tty = sys.stderr.isatty()
    run: RunRecord | None = None
    try:
        while True:
            run = store.get_run(run_id)
            if run is not None and run.status != "RUNNING":
                break
            if run is None:
                state = sfn.describe_execution(executionArn=execution_arn)["status"]
                if state != "RUNNING":
                    print(f"fanout: the execution ended {state} before the run was recorded: "
                          f"{console_url(execution_arn)}", file=sys.stderr)
                    return EXIT_RUN_FAILED
            line = progress_line(run, time.monotonic() - began)
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr,
                  flush=True)
            time.sleep(POLL_SECONDS)  # a remote run: nothing to await but its record
    except KeyboardInterrupt:
        print(f"\nstopped following; run {run_id} goes on. To stop it:\n"
              f"  fanout stop {run_id}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if tty:
        print(file=sys.stderr)
    from fanout.runs.stack import StackRuns

    view = StackRuns(deploy).view(run)  # what fanout status prints of it, cost included
    if as_json:
        print_json(with_totals(view))
    else:
        print(run_text(view))
    return exit_for(run.status)


def announce(run_id: str, execution_arn: str, as_json: bool, waiting: bool) -> None:
    if as_json and not waiting:
        print_json({"run_id": run_id, "execution_arn": execution_arn,
                    "console_url": console_url(execution_arn)})
        return
    out = sys.stderr if as_json else sys.stdout
    print(f"started run {run_id}", file=out)
    link = console_url(execution_arn)
    if link:
        print(f"console: {link}", file=out)


def run_start(args: argparse.Namespace) -> int:
    check_run_id(args.run_id)
    document = spec_document(args)
    from fanout.pipelines.model import is_pipeline_document

    if is_pipeline_document(document):  # a pipeline run (docs/pipelines.md)
        from fanout.cli.pipeline_aws import start_pipeline

        return start_pipeline(args, document)
    if isinstance(document, dict) and Path(args.config).exists():
        from fanout.spec.model import resolve
        from fanout.spec.validate import parse_spec

        config = load_config_path(args.config)
        spec = parse_spec(document, config)  # bad spec: exit 2, nothing sent
        if resolve(spec, config.jobs[spec.job]).items_per_task != 1:
            print(f"fanout: items_per_task: the dispatcher runs the items in tasks of the "
                  f"job's {spec.job}-packed task definition; a stack deployed before it had "
                  "one (deploy this version) runs one item per task (docs/decisions/0021)",
                  file=sys.stderr)
    if not isinstance(document, dict) or not isinstance(document.get("job"), str):
        raise UsageError([Problem("spec", "must be a JSON object naming a job")])
    document = {**document, "trigger": "cli"}
    size = len(json.dumps(document).encode())
    if size > EXECUTION_INPUT_LIMIT:  # StartExecution would refuse it
        raise UsageError([Problem("spec", f"is {size:,} bytes, over Step Functions' limit of "
                                          f"{EXECUTION_INPUT_LIMIT:,} for an execution's "
                                          "input; put the items in S3 and name them with "
                                          "items_from")])
    from fanout.runs.stack import start_execution

    deploy = deployment(args)
    run_id = args.run_id or new_run_id(document["job"])
    arn = start_execution(deploy, run_id, document)
    announce(run_id, arn, args.json, args.wait)
    return follow(deploy, run_id, arn, args.json) if args.wait else EXIT_OK


def add(subparsers: Any) -> None:
    start = subparsers.add_parser(
        "start", help="start a run on the deployed stack",
        description="Start a run: SPEC (a file, or - for stdin) or --job/--param.")
    add_spec_arguments(start)
    start.add_argument("--run-id", metavar="ID", help="the run id (default: made up)")
    start.add_argument("--wait", action="store_true", help="follow the run to its end")
    add_stack_arguments(start, config=False)  # SPEC's arguments carry --config
    start.set_defaults(func=run_start)
