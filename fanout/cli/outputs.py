"""``fanout outputs RUN [INDEX]``: what a run's items wrote to ``FANOUT_OUTPUT``.

Lists each item's outputs as recorded when it ended (keys relative to the item's location,
sizes); ``--download DIR`` copies every object under the items' locations (read afresh,
not capped): with INDEX into ``DIR/<key>``, else into ``DIR/<index>/<key>``. ``--local``
reads the runs of ``fanout local``. Exit codes: 0, or 2 for an unknown run or item or an
output key that would be written outside DIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fanout.cli.exits import EXIT_OK
from fanout.cli.render import print_json, table
from fanout.cli.runs import (
    add_source_arguments,
    item_index,
    source,
    the_item,
    the_run,
)
from fanout.errors import Problem, UsageError
from fanout.outputs import size_text
from fanout.records.views import ItemView, RunsSource

#: What ``--json`` prints of each item.
FIELDS = ("index", "status", "output", "outputs", "outputs_count", "outputs_bytes",
          "outputs_partial")


def outputs_text(items: list[ItemView]) -> str:
    """One row per output; an item whose list is capped says how many more it wrote."""
    rows: list[list[str]] = []
    files = total = 0
    for item in items:
        entries = item.get("outputs")
        if entries is None:
            rows.append([str(item["index"]), item["status"], "(not recorded: not ended)", ""])
            continue
        for entry in entries:
            rows.append([str(item["index"]), item["status"], entry["key"],
                         str(entry["size"])])
        count = item.get("outputs_count") or len(entries)
        files, total = files + count, total + (item.get("outputs_bytes") or 0)
        if count > len(entries) or item.get("outputs_partial"):
            more = count - len(entries)
            rows.append([str(item["index"]), item["status"],
                         f"... and {more:,} more" + (" (listing stopped early)"
                                                     if item.get("outputs_partial") else ""),
                         ""])
    return "\n".join([table(rows, ["index", "status", "key", "size"]),
                      f"{len(items)} items, {files:,} outputs, {size_text(total)}"])


def _s3(runs: RunsSource) -> Any:
    stack = getattr(runs, "stack", None)
    return stack.client("s3") if stack is not None else None


def download(runs: RunsSource, items: list[ItemView], folder: Path, one: bool) -> int:
    from fanout.outputs import UnsafeKey, download_outputs

    s3 = _s3(runs)
    written = 0
    for item in items:
        if not item.get("output"):
            continue
        target = folder if one else folder / str(item["index"])
        try:
            written += len(download_outputs(item["output"], target, s3=s3))
        except UnsafeKey as exc:
            raise UsageError([Problem("--download", str(exc))]) from None
    print(f"downloaded {written:,} files into {folder}")
    return EXIT_OK


def run_outputs(args: argparse.Namespace) -> int:
    runs = source(args)
    run = the_run(runs, args)
    if args.index is not None:
        items: list[ItemView] = [the_item(runs, run, args.index)]
    else:
        items = runs.list_items(run["run_id"])
    if args.download:
        return download(runs, items, Path(args.download), args.index is not None)
    if args.json:
        print_json([{k: i.get(k) for k in FIELDS} for i in items])
    else:
        print(outputs_text(items))
    return EXIT_OK


def add(subparsers: Any) -> None:
    outputs = subparsers.add_parser(
        "outputs", help="what a run's items wrote to FANOUT_OUTPUT (list or --download)")
    outputs.add_argument("run", metavar="RUN")
    outputs.add_argument("index", metavar="INDEX", type=item_index, nargs="?",
                         help="one item's outputs only")
    outputs.add_argument("--download", metavar="DIR",
                         help="copy the outputs into DIR (DIR/<index>/<key>; with INDEX, "
                              "DIR/<key>)")
    add_source_arguments(outputs)
    outputs.set_defaults(func=run_outputs)
