"""Fan-in, locally: a step's items taken from an earlier step, and ``FANOUT_INPUTS``.

- ``items_from: {"step": S}``: one item per SUCCEEDED item of step S's run, its params
  plus ``input``: that item's output location (its ``FANOUT_OUTPUT``). Written as a JSON
  Lines file that the step's run reads as an ordinary ``items_from`` object.
- ``FANOUT_INPUTS``: a JSON Lines manifest of every output of the steps a step needs,
  one line per file: ``step``, ``run_id``, ``index``, ``params``, ``location`` (the
  item's output location), ``key`` (relative to it), ``size``.

Both are files in the pipeline run's folder: nothing large passes between the steps but
their paths. A step's items are read from its run's records (and those of its reruns,
latest first: an item that succeeded in either counts once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fanout.outputs import list_outputs, output_location

#: The item key that carries an earlier step's item's output location.
INPUT_KEY = "input"
#: Files listed per item in the inputs manifest: all of them (the manifest is a file).
EVERY_OUTPUT = 10**9


def succeeded_items(records_dir: Path, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The SUCCEEDED items of a step (its runs, latest last), each once by index: its
    ``index`` in the first run, ``params``, ``run_id`` (the run it succeeded in) and
    ``location`` (that run's output location for it)."""
    from fanout.runs.local import LocalRuns

    runs = LocalRuns(records_dir)
    root = str(records_dir.resolve())
    found: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        for item in runs.list_items(run_id, status="SUCCEEDED"):
            params = dict(item.get("params") or {})
            key = json.dumps(params, sort_keys=True)  # items keep their identity by params
            location = item.get("output") or output_location(root, run_id, item["index"])
            found[key] = {"index": item["index"], "params": params, "run_id": run_id,
                          "location": location}
    return list(found.values())  # the first run's order (a later run updates in place)


def write_step_items(path: Path, items: list[dict[str, Any]]) -> int:
    """The items of a step fed by an earlier one (JSON Lines); returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        for item in items:
            out.write(json.dumps({**item["params"], INPUT_KEY: item["location"]}) + "\n")
    return len(items)


def manifest_lines(step: str, items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        listing = list_outputs(item["location"], cap=EVERY_OUTPUT, cap_bytes=EVERY_OUTPUT)
        for entry in listing.entries:
            yield {"step": step, "run_id": item["run_id"], "index": item["index"],
                   "params": item["params"], "location": item["location"],
                   "key": entry["key"], "size": entry["size"]}


def write_inputs(path: Path, records_dir: Path,
                 needs: dict[str, Sequence[str]]) -> int:
    """The ``FANOUT_INPUTS`` manifest of the outputs of the needed steps (step -> its run
    ids); returns how many files it lists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w") as out:
        for step, run_ids in needs.items():
            if not run_ids:
                continue
            for line in manifest_lines(step, succeeded_items(records_dir, run_ids)):
                out.write(json.dumps(line) + "\n")
                count += 1
    return count
