"""How a run is shown in the terminal, the one place for it: JSON, tables, progress, and
the text of a run (RunView), its items (ItemView) and an item (ItemDetail) that
``fanout status``, ``items`` and ``start --wait`` print (``--local`` too). ``fanout local``'s
live progress bar and end table are :mod:`fanout.cli.render_local` (rich, of the local
summary; its cost line is :func:`cost_line`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fanout.records.views import ITEM_STATES

if TYPE_CHECKING:
    from fanout.records.model import RunRecord
    from fanout.records.views import ItemDetail, ItemView, RunView


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


def progress_line(run: RunRecord | None, elapsed: float) -> str:
    minutes, seconds = divmod(int(elapsed), 60)
    clock = f"{minutes:02d}:{seconds:02d}"
    if run is None:
        return f"[{'':30}] expanding ... {clock}"
    t = run.totals()
    done = t["total"] - t["pending"] - t["running"]
    width = 30
    filled = int(width * done / t["total"]) if t["total"] else width
    counts = " ".join(f"{k}={v}" for k, v in t.items() if k != "total" and v)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{t['total']} {counts} {clock}"


# --- a run, its items, an item: what fanout status, items and start --wait print ----



def with_totals(run: RunView) -> RunView:
    """A RunView with the lower-case totals ``fanout status --json`` has always printed."""
    counts = run.get("counts") or {}
    totals = {"total": run.get("total") or 0,
              **{s.lower(): int(counts.get(s, 0)) for s in ITEM_STATES}}
    legacy = {"parent_run": run.get("parent_run_id"), "summary": None, "execution_arn": None,
              "logical_time": None}
    return {**totals, **legacy, **run}


def usd(value: float | None) -> str:
    return "" if value is None else f"${value:.6f}"


def cost_line(cost: dict[str, Any] | None, label: str = "cost (estimate)") -> str | None:
    """A run's cost on one line, the same for every command that shows it (``fanout
    local`` labels it ``estimated cost on AWS``: a local run is priced as AWS would)."""
    if not cost:
        return None
    return (f"{label}: {usd(cost['total_usd'])}  compute {usd(cost['compute_usd'])}"
            f"  control plane {usd(cost['control_plane_usd'])}  prices of "
            f"{cost['prices_as_of']}")


def run_text(run: RunView) -> str:
    head = (f"run {run['run_id']}  job {run['job']}  {run['status']}  trigger {run['trigger']}"
            + (f"  rerun of {run['parent_run_id']}" if run.get("parent_run_id") else ""))
    when = f"started {run['started_at']}"
    if run.get("finished_at"):
        when += f"  finished {run['finished_at']}"
    if run.get("duration_seconds") is not None:
        when += f"  ({run['duration_seconds']:.1f} s)"
    counts = run.get("counts") or {}
    rows = [["total", str(run.get("total") or 0)]] + [
        [s.lower(), str(counts.get(s, 0))] for s in ITEM_STATES
        if s != "WAITING" or counts.get(s)]
    lines = [head, when, table(rows, ["items", "count"])]
    for extra in (f"reason: {run['reason']}" if run.get("reason") else None,
                  cost_line(run.get("cost")),
                  f"console: {run['console_url']}" if run.get("console_url") else None):
        if extra:
            lines.append(extra)
    return "\n".join(lines)


def _params(params: Any) -> str:
    return json.dumps(params, separators=(",", ":"), sort_keys=True)


def _status(item: ItemView) -> str:
    """``WAITING: vCPU quota`` while an item waits for its launch, with why."""
    waiting = item.get("waiting")
    return f"{item['status']}: {waiting['why']}" if waiting and waiting.get("why") \
        else item["status"]


def items_text(items: list[ItemView]) -> str:
    """One row per item; its key (the same in every rerun) and, in a rerun, its index in
    the first run (``original``)."""
    rerun = any(i.get("original_index", i["index"]) != i["index"] for i in items)
    rows = [[str(i["index"]), *([str(i["original_index"])] if rerun else []),
             i.get("key", ""), _status(i), str(i["attempt_count"]),
             "" if i["exit_code"] is None else str(i["exit_code"]), i.get("reason") or "",
             _params(i["params"])] for i in items]
    return table(rows, ["index", *(["original"] if rerun else []), "key", "status",
                        "attempts", "exit", "reason", "params"])


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _digest(digest: str | None) -> str:
    """An image digest as `docker images --digests` abbreviates it (``--json``: in full)."""
    return digest[:19] if digest else ""


def item_text(item: ItemDetail) -> str:
    lines = [f"item {item['index']} of run {item['run_id']}  {item['status']}  "
             f"attempts {item['attempt_count']}"
             + ("" if item["exit_code"] is None else f"  exit code {item['exit_code']}"),
             f"params: {_params(item['params'])}",
             f"command: {json.dumps(item['command'])}"]
    if item.get("reason"):
        lines.append(f"reason: {item['reason']}")
    if item.get("output"):
        lines.append(f"output: {item['output']}  ({item.get('outputs_count') or 0} files, "
                     f"{item.get('outputs_bytes') or 0} bytes: fanout outputs)")
    if item.get("waiting"):
        waiting = item["waiting"]
        lines.append(f"waiting since {waiting.get('since')}: {waiting.get('why')} "
                     f"({waiting.get('tries')} tries)")
    rows = [[str(a["attempt"]), a.get("status") or "", a["capacity"] or "",
             "" if a["exit_code"] is None else str(a["exit_code"]), a["stop_code"] or "",
             a["reason"] or "", a["started_at"] or "", a["stopped_at"] or "",
             _seconds(a["duration_seconds"]), usd(a.get("cost_usd")),
             (a["task_arn"] or "").rsplit("/", 1)[-1], _digest(a.get("image_digest")),
             a["log_stream"] or ""]
            for a in item["attempts"]]
    lines.append(table(rows, ["attempt", "status", "capacity", "exit", "stop code", "reason",
                              "started", "stopped", "duration", "cost", "task", "image",
                              "log stream"]))
    if item.get("log_tail"):
        lines.append("last lines of its log:")
        lines += [f"  {line}" for line in item["log_tail"]]
    return "\n".join(lines)


def attempt_header(attempt: dict[str, Any]) -> str:
    parts = [attempt.get("reason") or attempt.get("status") or "running",
             attempt.get("capacity") or "", _seconds(attempt.get("duration_seconds")),
             (attempt.get("task_arn") or "").rsplit("/", 1)[-1]]
    return f"== attempt {attempt['attempt']}: " + ", ".join(p for p in parts if p)
