"""``fanout expand SPEC``: validate a run spec and print its items (no AWS)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.cli.args import (
    add_run_arguments,
    add_spec_arguments,
    check_run_id,
    load_config,
    load_spec,
    parse_logical_time,
)
from fanout.cli.exits import EXIT_OK
from fanout.errors import Problem, UsageError

if TYPE_CHECKING:
    from fanout.spec.plan import Plan


def add(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "expand", help="validate a run spec and print its items as JSON Lines (no AWS)",
        description="Validate a run spec and print its items as JSON Lines: "
                    "index, params, command, environment.",
    )
    add_spec_arguments(parser)
    add_run_arguments(parser)
    parser.add_argument("--count", action="store_true", help="print only the item count")
    parser.add_argument(
        "--plan", action="store_true",
        help="print the run's plan as one JSON object (items, tasks, items per task and why)",
    )
    parser.add_argument(
        "--items", metavar="PATH",
        help="for a spec with items_from: a local copy of the object (JSON, JSON Lines, CSV)",
    )
    parser.set_defaults(func=run_expand)


def run_expand(args: argparse.Namespace) -> int:
    from fanout.spec.items_from import ItemsSource
    from fanout.spec.matrix import explain_ranges
    from fanout.spec.plan import plan_run

    check_run_id(args.run_id)
    logical_time = parse_logical_time(args.logical_time)
    config = load_config(args)
    spec = load_spec(args, config)
    items = None
    if args.items is not None:
        fmt = spec.source_format()
        if fmt is None:
            raise UsageError([Problem("--items", "the spec has no items_from; give --items "
                                                 "only with a spec that reads items_from")])
        if args.items != "-" and Path(args.items).is_dir():
            raise UsageError([Problem("--items", f"{args.items} is a folder; give the items "
                                                 "file (JSON, JSON Lines or CSV)")])
        try:
            data = sys.stdin.buffer.read() if args.items == "-" else Path(args.items).read_bytes()
        except OSError as exc:
            raise UsageError([Problem("--items", f"cannot read {args.items}: {exc.strerror}; "
                                                 "check the path")]) from None
        items = ItemsSource(lambda: io.BytesIO(data), fmt)
    plan = plan_run(spec, config, run_id=args.run_id or "expand", logical_time=logical_time,
                    items=items)
    for warning in plan.warnings():
        print(f"fanout: warning: {warning}", file=sys.stderr)
    for line in explain_ranges(spec, plan.logical_time):
        print(f"fanout: {line}", file=sys.stderr)
    packing = plan.packing
    if packing.packed or packing.chosen_by == "auto":
        print(f"fanout: {packing.summary()}", file=sys.stderr)
    out = sys.stdout
    if args.plan:
        out.write(json.dumps(plan_document(plan)) + "\n")
        return EXIT_OK
    if args.count:
        out.write(f"{plan.count}\n")
        return EXIT_OK
    write = out.write
    batch: list[str] = []
    for line in plan.json_lines():
        batch.append(line)
        if len(batch) >= 4096:
            batch.append("")
            write("\n".join(batch))
            batch.clear()
    if batch:
        batch.append("")
        write("\n".join(batch))
    out.flush()
    return EXIT_OK


def plan_document(plan: Plan) -> dict[str, Any]:
    """What ``--plan`` prints: the run's size and how its items go into tasks."""
    packing = plan.packing
    return {
        "job": plan.spec.job, "items": plan.count,
        "max_concurrency": plan.settings.max_concurrency,
        "capacity": str(plan.settings.capacity),
        "items_per_task": packing.items_per_task,
        "items_per_task_chosen_by": packing.chosen_by,
        "per_task_concurrency": packing.per_task_concurrency,
        "tasks": packing.tasks, "tasks_at_once": packing.task_slots,
        "launch_span_seconds": round(packing.launch_span_seconds, 1),
        "unpacked_launch_span_seconds": round(packing.unpacked_launch_span_seconds, 1),
        "why": packing.summary(),
    }
