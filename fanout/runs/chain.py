"""A run and its reruns, read together: items keep their identity across them.

An item's ``key`` is a short hash of its params (canonical JSON), the same in a run and in
every rerun of it; its ``original_index`` is its index in the first run of the chain. The
answer for a run and its reruns is each item's latest outcome across them: "21 of 21
items succeeded, 2 on rerun".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fanout.records.views import ItemView, RunsSource, RunView

#: At most this many of the items that have not succeeded are listed by ``across``.
LISTED = 20


def item_key(params: Mapping[str, Any]) -> str:
    """The item's identity across reruns: 12 hex digits of the SHA-256 of its params."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def reruns_of(runs: RunsSource, run: RunView) -> list[RunView]:
    """``run``, then its reruns, the reruns of those, ... in the order they started."""
    children: dict[str, list[RunView]] = {}
    # Reruns start after their run: a stack reads only the job's runs since (one query).
    later = getattr(runs, "later_runs", None)
    others = later(run["run_id"]) if later else runs.list_runs(job=run["job"], limit=10_000)
    for other in others:
        parent = other.get("parent_run_id")
        if parent:
            children.setdefault(parent, []).append(other)
    found: list[RunView] = []
    waiting = [run["run_id"]]
    while waiting:
        for child in children.get(waiting.pop(), []):
            found.append(child)
            waiting.append(child["run_id"])
    found.sort(key=lambda r: (r.get("started_at") or "", r["run_id"]))
    return [run, *found]


def first_run(runs: RunsSource, run: RunView) -> RunView:
    """The run the chain of reruns that ``run`` is in started from."""
    seen = {run["run_id"]}
    while run.get("parent_run_id"):
        parent = runs.get_run(run["parent_run_id"])
        if parent is None or parent["run_id"] in seen:
            break
        seen.add(parent["run_id"])
        run = parent
    return run


def with_identity(runs: RunsSource, run: RunView, items: list[ItemView]) -> list[ItemView]:
    """The items with their ``key`` and ``original_index`` (their index in the first run)."""
    origin = first_run(runs, run)
    index = {item_key(i["params"]): i["index"] for i in runs.list_items(origin["run_id"])} \
        if origin["run_id"] != run["run_id"] else {}
    out = []
    for item in items:
        key = item_key(item["params"])
        out.append({**item, "key": key, "original_index": index.get(key, item["index"])})
    return out


def across(runs: RunsSource, run: RunView) -> dict[str, Any] | None:
    """The latest outcome of each of ``run``'s items across it and its reruns; None when it
    has no rerun."""
    chain = reruns_of(runs, run)
    if len(chain) == 1:
        return None
    first = {item_key(i["params"]): i for i in runs.list_items(run["run_id"])}
    latest: dict[str, tuple[str, str]] = {k: (i["status"], run["run_id"])
                                          for k, i in first.items()}
    for later in chain[1:]:
        for item in runs.list_items(later["run_id"]):
            key = item_key(item["params"])
            if key in latest:
                latest[key] = (item["status"], later["run_id"])
    counts: dict[str, int] = {}
    for status, _ in latest.values():
        counts[status] = counts.get(status, 0) + 1
    on_rerun = sum(1 for k, (status, where) in latest.items()
                   if status == "SUCCEEDED" and where != run["run_id"])
    missing = [{"index": first[k]["index"], "key": k, "params": first[k]["params"],
                "status": status, "run_id": where}
               for k, (status, where) in latest.items() if status != "SUCCEEDED"]
    missing.sort(key=lambda m: m["index"])
    return {"runs": [r["run_id"] for r in chain], "total": int(run.get("total") or 0),
            "succeeded": counts.get("SUCCEEDED", 0), "succeeded_on_rerun": on_rerun,
            "latest": counts, "not_succeeded": missing[:LISTED]}


def across_text(answer: Mapping[str, Any]) -> str:
    """``across run A and 2 reruns: 21 of 21 items succeeded, 2 on rerun`` (and what has
    not succeeded yet, with the run it last ran in)."""
    reruns = len(answer["runs"]) - 1
    head = (f"across run {answer['runs'][0]} and its {reruns} rerun"
            f"{'s' if reruns != 1 else ''}: {answer['succeeded']} of {answer['total']} items "
            f"succeeded, {answer['succeeded_on_rerun']} on rerun")
    lines = [head]
    for item in answer["not_succeeded"]:
        params = json.dumps(item["params"], separators=(",", ":"), sort_keys=True)
        lines.append(f"  item {item['index']} {params}: {item['status']} "
                     f"(last in run {item['run_id']})")
    rest = answer["total"] - answer["succeeded"] - len(answer["not_succeeded"])
    if rest > 0:
        lines.append(f"  ... and {rest} more not succeeded")
    return "\n".join(lines)
