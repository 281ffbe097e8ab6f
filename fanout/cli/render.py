"""How a run is shown in the terminal: tables, progress, JSON, console links."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fanout.names import console_url

if TYPE_CHECKING:
    from fanout.records.model import RunRecord


def run_dict(run: RunRecord) -> dict[str, Any]:
    return {"run_id": run.run_id, "job": run.job, "status": run.status,
            "trigger": run.trigger, "started_at": run.started_at,
            "finished_at": run.finished_at, "logical_time": run.logical_time,
            "parent_run": run.parent_run, **run.totals(), "summary": run.summary,
            "execution_arn": run.execution_arn, "console_url": console_url(run.execution_arn)}


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


def summary_table(run: RunRecord) -> str:
    totals = run.totals()
    rows = [[k, str(v)] for k, v in totals.items()]
    head = (f"run {run.run_id}  job {run.job}  {run.status}  trigger {run.trigger}"
            + (f"  rerun of {run.parent_run}" if run.parent_run else ""))
    lines = [head, f"started {run.started_at}" + (f"  finished {run.finished_at}"
                                                  if run.finished_at else ""),
             table(rows, ["items", "count"])]
    if run.summary:
        lines.append(run.summary)
    link = console_url(run.execution_arn)
    if link:
        lines.append(f"console: {link}")
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
