"""``fanout status | items | runs | logs | rerun | stop``: the runs of a deployed stack, or
with ``--local`` the runs of a records folder, with the same output and exit codes.

Every command reads through a :class:`fanout.records.views.RunsSource` and prints its views
(``--json``: the views themselves, docs/cli.md). Exit codes: 0 done, 1 the run (a rerun
followed to its end) failed, 2 bad input: an unknown run or item, nothing to rerun.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from fanout.cli.exits import EXIT_OK, EXIT_RUN_FAILED
from fanout.cli.render import (
    attempt_header,
    item_text,
    items_text,
    print_json,
    run_text,
    table,
    usd,
    with_totals,
)
from fanout.errors import Problem, UsageError
from fanout.records.views import ITEM_STATES, ItemView, RunsSource, RunView

#: How long ``stop --wait`` waits for a run's tasks to stop and its items to settle.
STOP_WAIT_SECONDS = 600.0
POLL_SECONDS = 2.0


# --- where the runs are -----------------------------------------------------------------------


def source(args: argparse.Namespace) -> RunsSource:
    """The local records folder with ``--local`` (or, with no ``--stack`` given, when the
    run is a local one: ``fanout logs RUN INDEX`` after ``fanout local``), else the stack."""
    from fanout.runs.local import LocalRuns

    local = LocalRuns(Path(args.records_dir), Path(args.config))
    if getattr(args, "local", False):
        return local
    if getattr(args, "run", None) and not args.stack and local.get_run(args.run) is not None:
        args.local = True
        return local
    from fanout.cli.deployment import deployment
    from fanout.cost import TaskSize
    from fanout.runs.stack import StackRuns

    try:
        deploy = deployment(args)
    except UsageError as exc:
        if not getattr(args, "run", None):
            raise
        # The run is not a local one, and the stack cannot be read: say both places.
        why = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
        raise UsageError([Problem("RUN", f"no run {args.run!r} in the local records "
                                         f"({args.records_dir}), and the stack could not be "
                                         f"looked in ({why})")]) from None
    prices: dict[str, Any] = {}
    sizes: dict[str, TaskSize] = {}
    if Path(args.config).exists():
        from fanout.config import load_config_file

        config = load_config_file(args.config)
        prices = config.cost.prices
        sizes = {name: TaskSize(job.cpu, job.memory, job.architecture)
                 for name, job in config.jobs.items()}
    return StackRuns(deploy, prices=prices, sizes=sizes)


def where(runs: RunsSource, args: argparse.Namespace) -> str:
    """Where a run was looked for, in a user's words."""
    if getattr(args, "local", False):
        return f"in the local records ({args.records_dir})"
    stack = getattr(runs, "stack", None)
    name = getattr(stack, "stack", None) or args.stack
    region = getattr(stack, "region", None)
    table = ""
    if stack is not None and "RecordsTable" in (getattr(stack, "outputs", None) or {}):
        table = f", table {stack.outputs['RecordsTable']}"
    return (f"in stack {name}" if name else "in the stack") + \
        (f" ({region}{table})" if region else "")


def pipeline_run_of(runs: RunsSource, args: argparse.Namespace) -> dict[str, Any] | None:
    """The pipeline run ``args.run`` names where the runs are read (the local records, or
    the stack's), as users read it; None when there is none."""
    from fanout.runs.local import LocalRuns

    if isinstance(runs, LocalRuns):
        from fanout.cli.pipeline import local_pipeline_record

        record = local_pipeline_record(Path(args.records_dir), args.run)
        return {k: v for k, v in record.items() if k not in ("format", "pid", "spec", "config")} \
            if record is not None else None
    from fanout.cli.pipeline_aws import stack_pipeline_run
    from fanout.runs.stack import StackRuns

    return stack_pipeline_run(runs.stack, args.run) if isinstance(runs, StackRuns) else None


def the_run(runs: RunsSource, args: argparse.Namespace) -> RunView:
    run = runs.get_run(args.run)
    if run is None:
        hint = ""
        if not getattr(args, "local", False):
            from fanout.runs.local import LocalRuns

            if LocalRuns(Path(args.records_dir)).get_run(args.run) is not None:
                hint = f"; a local run {args.run} is in {args.records_dir}: add --local"
        raise UsageError([Problem("RUN", f"no run {args.run!r} {where(runs, args)}{hint}")])
    return run


def the_item(runs: RunsSource, run: RunView, index: int) -> ItemView:
    """Item ``index`` of ``run``, or a usage error naming INDEX and how many items it has."""
    item = runs.get_item(run["run_id"], index)
    if item is None:
        raise UsageError([Problem("INDEX", f"run {run['run_id']} has no item "
                                           f"{index} (it has {run['total'] or 0})")])
    return item


# --- the commands -----------------------------------------------------------------------------


def run_status(args: argparse.Namespace) -> int:
    from fanout.runs.chain import across, across_text

    runs = source(args)
    found = runs.get_run(args.run)
    if found is None:  # maybe a pipeline run (docs/pipelines.md)
        pipeline = pipeline_run_of(runs, args)
        if pipeline is not None:
            from fanout.cli.pipeline_aws import show_pipeline

            show_pipeline(pipeline, args.json)
            return EXIT_OK
    run = found or the_run(runs, args)  # the_run says where no such run was found
    chain = across(runs, run)  # with its reruns: each item's latest outcome
    if args.json:
        print_json({**with_totals(run), "across_reruns": chain})
    else:
        print(run_text(run))
        if chain:
            print(across_text(chain))
    return EXIT_OK


def run_items(args: argparse.Namespace) -> int:
    runs = source(args)
    run = the_run(runs, args)
    if args.index is not None:
        item = the_item(runs, run, args.index)
        if args.json:
            print_json(item)
        else:
            print(item_text(item))
        return EXIT_OK
    from fanout.runs.chain import with_identity

    items = with_identity(runs, run, runs.list_items(run["run_id"], args.status))
    if args.json:
        print_json(items)
    else:
        print(items_text(items))
    return EXIT_OK


def run_runs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError([Problem("--limit", "must be at least 1")])
    runs = source(args).list_runs(job=args.job, status=args.status, limit=args.limit)
    if args.json:
        print_json([with_totals(r) for r in runs])
        return EXIT_OK
    rows = [[r["run_id"], r["job"], r["status"], r["trigger"] or "", r["started_at"] or "",
             f"{(r.get('counts') or {}).get('SUCCEEDED', 0)}/{r.get('total') or 0}",
             usd((r.get("cost") or {}).get("total_usd")), r.get("parent_run_id") or "",
             r.get("console_url") or ""] for r in runs]
    print(table(rows, ["run", "job", "status", "trigger", "started", "ok", "cost", "parent",
                       "console"]))
    return EXIT_OK


def run_logs(args: argparse.Namespace) -> int:
    runs = source(args)
    run = the_run(runs, args)
    item = runs.get_item(run["run_id"], args.index)
    attempts = (item or {}).get("attempts") or []
    if not attempts:
        why = "no such item" if not 0 <= args.index < (run["total"] or 0) \
            else "it never launched"
        raise UsageError([Problem("INDEX", f"item {args.index} of run {run['run_id']} has "
                                           f"no logs ({why})")])
    if args.attempt is not None:
        attempts = [a for a in attempts if a["attempt"] == args.attempt]
        if not attempts:
            raise UsageError([Problem("--attempt", f"item {args.index} has no attempt "
                                                   f"{args.attempt}")])
    lines: list[dict[str, Any]] = getattr(runs, "log_records")(  # noqa: B009 - both sources
        run["run_id"], args.index, args.attempt)
    if args.json:
        print_json(lines)
        return EXIT_OK
    by_attempt: dict[int, list[str]] = {}
    for line in lines:
        by_attempt.setdefault(int(line["attempt"]), []).append(str(line["message"]))
    for attempt in attempts:
        print(attempt_header(attempt))
        for message in by_attempt.get(attempt["attempt"], []):
            print(f"[attempt {attempt['attempt']}] {message}")
    return EXIT_OK


def run_stop(args: argparse.Namespace) -> int:
    runs = source(args)
    if not args.local and runs.get_run(args.run) is None:  # a pipeline run on the stack?
        pipeline = pipeline_run_of(runs, args)
        if pipeline is not None:
            from fanout.cli.pipeline_aws import stop_pipeline
            from fanout.runs.stack import StackRuns

            assert isinstance(runs, StackRuns)
            return stop_pipeline(runs.stack, pipeline)
    run = the_run(runs, args)
    if run["status"] != "RUNNING":
        print(f"run {run['run_id']} has already ended: {run['status']}")
        return EXIT_OK
    if args.local:
        from fanout.runs.local import LocalRuns, NotRunning

        assert isinstance(runs, LocalRuns)
        try:
            runs.stop(run["run_id"])
        except NotRunning:
            print(f"run {run['run_id']} has already ended")
            return EXIT_OK
        print(f"stopping run {run['run_id']}")
        if args.wait:
            ended = runs.wait(run["run_id"], STOP_WAIT_SECONDS)
            status = ended["status"] if ended else "gone"
            print(f"run {run['run_id']} stopped: {status}")
        return EXIT_OK
    from fanout.runs.stack import StackRuns

    assert isinstance(runs, StackRuns)
    runs.stop(run["run_id"])
    print(f"stopping run {run['run_id']}: its tasks are stopped and its items settle ABORTED")
    if args.wait:
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while not runs.settled(run["run_id"]):
            if time.monotonic() > deadline:
                print(f"fanout: run {run['run_id']} has not settled after "
                      f"{STOP_WAIT_SECONDS:.0f} s", file=sys.stderr)
                return EXIT_RUN_FAILED
            time.sleep(POLL_SECONDS)  # the stack settles it: nothing to await but its record
        ended = runs.get_run(run["run_id"])
        print(f"run {run['run_id']} stopped: {ended['status'] if ended else 'gone'}")
    return EXIT_OK


# --- arguments --------------------------------------------------------------------------------


def item_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an item index") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an item index")
    return value


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--local``/``--records-dir`` (a records folder) or ``--stack``/``--region``."""
    from fanout.cli.args import add_stack_arguments

    add_stack_arguments(parser)
    parser.add_argument("--local", action="store_true",
                        help="the runs of `fanout local` (the records folder), not the stack")
    parser.add_argument("--records-dir", default=".fanout/runs", metavar="DIR",
                        help="the local records folder (default .fanout/runs)")


def add(subparsers: Any) -> None:
    status = subparsers.add_parser("status", help="a run's status, totals and cost")
    status.add_argument("run", metavar="RUN")
    add_source_arguments(status)
    status.set_defaults(func=run_status)

    items = subparsers.add_parser(
        "items", help="a run's items; with INDEX, one item and every attempt of it")
    items.add_argument("run", metavar="RUN")
    items.add_argument("index", metavar="INDEX", type=item_index, nargs="?",
                       help="one item: it and a table of its attempts")
    items.add_argument("--status", choices=ITEM_STATES, help="only items in this status")
    add_source_arguments(items)
    items.set_defaults(func=run_items)

    runs = subparsers.add_parser("runs", help="recent runs, newest first")
    runs.add_argument("--job", metavar="J", help="only runs of this job")
    runs.add_argument("--status", metavar="S", help="only runs in this status")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (20)")
    add_source_arguments(runs)
    runs.set_defaults(func=run_runs)

    logs = subparsers.add_parser("logs", help="an item's container log lines, by attempt")
    logs.add_argument("run", metavar="RUN")
    logs.add_argument("index", metavar="INDEX", type=item_index)
    logs.add_argument("--attempt", type=int, metavar="N", help="only attempt N")
    add_source_arguments(logs)
    logs.set_defaults(func=run_logs)

    stop = subparsers.add_parser(
        "stop", help="stop a run: its tasks are stopped and its items settle ABORTED")
    stop.add_argument("run", metavar="RUN")
    stop.add_argument("--wait", action="store_true",
                      help="return when its tasks are stopped and its items settled")
    add_source_arguments(stop)
    stop.set_defaults(func=run_stop)
