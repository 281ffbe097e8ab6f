"""The ``fanout`` commands that operate a deployed stack: start, status, items, runs, logs, rerun.

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
    new_run_id,
    spec_document,
)
from fanout.cli.deployment import Deployment, deployment, get_run, output_id, start_execution
from fanout.cli.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, exit_for
from fanout.cli.render import (
    console_url,
    item_dict,
    print_json,
    progress_line,
    run_dict,
    summary_table,
    table,
)
from fanout.errors import Problem, UsageError
from fanout.schema import log_stream_name

if TYPE_CHECKING:
    from fanout.records.model import RunRecord

ITEM_STATUSES = ("PENDING", "WAITING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT",
                 "ABORTED")
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
              f"  aws stepfunctions stop-execution --execution-arn {execution_arn}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if tty:
        print(file=sys.stderr)
    if as_json:
        print_json(run_dict(run))
    else:
        print(summary_table(run))
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
    if isinstance(document, dict) and Path(args.config).exists():
        from fanout.spec.validate import parse_spec

        parse_spec(document, load_config_path(args.config))  # bad spec: exit 2, nothing sent
    if not isinstance(document, dict) or not isinstance(document.get("job"), str):
        raise UsageError([Problem("spec", "must be a JSON object naming a job")])
    deploy = deployment(args)
    document = {**document, "trigger": "cli"}
    run_id = args.run_id or new_run_id(document["job"])
    arn = start_execution(deploy, run_id, document)
    announce(run_id, arn, args.json, args.wait)
    return follow(deploy, run_id, arn, args.json) if args.wait else EXIT_OK


def run_rerun(args: argparse.Namespace) -> int:
    check_run_id(args.run_id)
    deploy = deployment(args)
    parent = get_run(deploy, args.run)
    if parent.status == "RUNNING":
        raise UsageError([Problem("RUN", f"run {parent.run_id} is still running")])
    if parent.status == "REJECTED":
        raise UsageError([Problem("RUN", f"run {parent.run_id} was rejected: no items")])
    select = "failed" if args.failed else "all"
    if select == "failed" and parent.count("SUCCEEDED") == parent.total:
        raise UsageError([Problem("RUN", f"run {parent.run_id} has no failed items")])
    document = {"rerun_of": parent.run_id, "select": select, "trigger": "cli"}
    run_id = args.run_id or new_run_id(parent.job)
    arn = start_execution(deploy, run_id, document)
    announce(run_id, arn, args.json, args.wait)
    return follow(deploy, run_id, arn, args.json) if args.wait else EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    run = get_run(deployment(args), args.run)
    if args.json:
        print_json(run_dict(run))
    else:
        print(summary_table(run))
    return EXIT_OK


def run_items(args: argparse.Namespace) -> int:
    deploy = deployment(args)
    run = get_run(deploy, args.run)
    found = {i.index: i for i in deploy.records().items(run.run_id)}
    from fanout.records.model import ItemRecord

    items = [found.get(i) or ItemRecord(run.run_id, i, "PENDING") for i in range(run.total)]
    items += [found[i] for i in sorted(found) if i >= run.total]
    if args.status:
        items = [i for i in items if i.shown_status == args.status]
    if args.json:
        print_json([item_dict(i) for i in items])
        return EXIT_OK
    rows = [[str(i.index), i.status, str(i.attempts),
             "" if i.exit_code is None else str(i.exit_code),
             json.dumps(i.params, separators=(",", ":"), sort_keys=True)] for i in items]
    print(table(rows, ["index", "status", "attempts", "exit", "params"]))
    return EXIT_OK


def run_runs(args: argparse.Namespace) -> int:
    runs = deployment(args).records().recent_runs(args.job, args.limit)
    if args.json:
        print_json([run_dict(r) for r in runs])
        return EXIT_OK
    rows = [[r.run_id, r.job, r.status, r.trigger, r.started_at,
             f"{r.count('SUCCEEDED')}/{r.total}", r.parent_run or "",
             console_url(r.execution_arn)] for r in runs]
    print(table(rows, ["run", "job", "status", "trigger", "started", "ok", "parent",
                       "console"]))
    return EXIT_OK


def run_logs(args: argparse.Namespace) -> int:
    from fanout.local.logs import local_log_lines

    local = local_log_lines(args.run, args.index, args.attempt)  # a run of `fanout local`
    if local is not None:
        if args.json:
            print_json(local)
        else:
            for line in local:
                print(f"[attempt {line['attempt']}] {line['message']}")
        return EXIT_OK
    deploy = deployment(args)
    run = get_run(deploy, args.run)
    store = deploy.records()
    attempts = [a for a in store.attempts(run.run_id, args.index)]
    if not attempts:
        why = "no such item" if not 0 <= args.index < run.total else "it never launched"
        raise UsageError([Problem("INDEX", f"item {args.index} of run {run.run_id} has no "
                                           f"logs ({why})")])
    if args.attempt is not None:
        attempts = [a for a in attempts if a.attempt == args.attempt]
        if not attempts:
            raise UsageError([Problem("--attempt", f"item {args.index} has no attempt "
                                                   f"{args.attempt}")])
    group = deploy.output(f"Logs{output_id(run.job)}")
    logs = deploy.client("logs")
    lines: list[dict[str, Any]] = []
    for attempt in attempts:
        if not attempt.task_arn:
            continue
        task_id = attempt.task_arn.rsplit("/", 1)[-1]
        stream = attempt.log_stream or log_stream_name(run.job, task_id)
        events = _log_events(logs, group, stream)
        if events is not None:
            lines += [{"attempt": attempt.attempt, "timestamp": e["timestamp"],
                       "message": e["message"]} for e in events]
    if args.json:
        print_json(lines)
    else:
        for line in lines:
            print(f"[attempt {line['attempt']}] {line['message']}")
    return EXIT_OK


def _log_events(logs: Any, group: str, stream: str) -> list[dict[str, Any]] | None:
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream,
                              "startFromHead": True}
    events: list[dict[str, Any]] = []
    try:
        while True:
            page = logs.get_log_events(**kwargs)
            events += page["events"]
            if not page["events"] or page.get("nextForwardToken") == kwargs.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextForwardToken"]
    except logs.exceptions.ResourceNotFoundException:
        return None


def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an item index") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an item index")
    return value


def add(subparsers: Any) -> None:
    start = subparsers.add_parser(
        "start", help="start a run on the deployed stack",
        description="Start a run: SPEC (a file, or - for stdin) or --job/--param.")
    add_spec_arguments(start)
    start.add_argument("--run-id", metavar="ID", help="the run id (default: made up)")
    start.add_argument("--wait", action="store_true", help="follow the run to its end")
    add_stack_arguments(start, config=False)  # SPEC's arguments carry --config
    start.set_defaults(func=run_start)

    status = subparsers.add_parser("status", help="a run's status and totals")
    status.add_argument("run", metavar="RUN")
    add_stack_arguments(status)
    status.set_defaults(func=run_status)

    items = subparsers.add_parser("items", help="a run's items")
    items.add_argument("run", metavar="RUN")
    items.add_argument("--status", choices=ITEM_STATUSES, help="only items in this status")
    add_stack_arguments(items)
    items.set_defaults(func=run_items)

    runs = subparsers.add_parser("runs", help="recent runs, newest first")
    runs.add_argument("--job", metavar="J", help="only runs of this job")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (20)")
    add_stack_arguments(runs)
    runs.set_defaults(func=run_runs)

    logs = subparsers.add_parser("logs", help="an item's container log lines")
    logs.add_argument("run", metavar="RUN")
    logs.add_argument("index", metavar="INDEX", type=_index)
    logs.add_argument("--attempt", type=int, metavar="N", help="only attempt N")
    add_stack_arguments(logs)
    logs.set_defaults(func=run_logs)

    rerun = subparsers.add_parser(
        "rerun", help="a new run over the failed (or all) items of a run, linked to it")
    rerun.add_argument("run", metavar="RUN")
    rerun.add_argument("--failed", action="store_true",
                       help="only the items that did not succeed (default: all)")
    rerun.add_argument("--run-id", metavar="ID", help="the new run's id (default: made up)")
    rerun.add_argument("--wait", action="store_true", help="follow the run to its end")
    add_stack_arguments(rerun)
    rerun.set_defaults(func=run_rerun)
