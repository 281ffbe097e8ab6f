"""Reading a local run's records folder (what ``fanout local`` writes) into the views.

``records.jsonl`` holds the run's table rows, sorted by key: each item (``ITEM#n``) then its
attempts (``ITEM#n#A#k``), then ``RUN`` and ``SPEC``. Items that never launched have no
row; ``summary.json`` lists every item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout.ui.source import (
    FAILED_STATES,
    ItemDetail,
    RunView,
    empty_counts,
    iso,
    seconds_between,
)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return None


def _json_field(value: Any, default: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default if value is None else value


def attempt_reason(row: dict[str, Any]) -> str | None:
    """One line saying why an attempt ended the way it did (None for a success)."""
    klass = row.get("stop_class")
    if klass in (None, "succeeded"):
        return None
    code = _int(row.get("exit_code"))
    why = str(row.get("stopped_reason") or "").strip()
    if klass == "timeout" or row.get("status") == "TIMED_OUT":
        return "timed out: " + (why or "the task ran past its timeout")
    if code is not None and code != 0:
        return f"exit code {code}" + (f" ({why})" if why and "exited" not in why else "")
    return f"{klass}: {why}" if why else str(klass)


@dataclass
class Loaded:
    """One finished run's records, parsed once (its folder no longer changes)."""

    mtime: float
    run: RunView
    items: list[ItemDetail]
    log_files: dict[tuple[int, int], Path]


def last_rows(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The rows whose ``sk`` is in ``wanted``, read from the end of a JSON Lines file."""
    found: dict[str, dict[str, Any]] = {}
    size = path.stat().st_size
    chunk = 16384
    with open(path, "rb") as f:
        while True:
            start = max(size - chunk, 0)
            f.seek(start)
            data = f.read(size - start)
            lines = data.split(b"\n")
            if start > 0:
                lines = lines[1:]  # the first may be cut
            for line in reversed(lines):
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("sk") in wanted:
                    found[str(row["sk"])] = row
                elif str(row.get("sk", "")).startswith("ITEM#"):
                    return found  # past the run's own rows
            if start == 0 or len(found) == len(wanted):
                return found
            chunk *= 4


def run_view(row: dict[str, Any], spec_row: dict[str, Any] | None,
              counts: dict[str, int] | None) -> RunView:
    total = _int(row.get("total")) or 0
    if counts is None:
        counts = empty_counts()
        for state in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "RUNNING"):
            counts[state] = _int(row.get(f"n_{state.lower()}")) or 0
        counts["PENDING"] = max(total - sum(counts.values()), 0)
    status = str(row.get("status") or "FAILED")
    problems = _json_field(row.get("problems"), [])
    reason = None
    if status not in ("SUCCEEDED", "RUNNING"):
        reason = "; ".join(str(p) for p in problems) if problems else row.get("summary")
    started, finished = iso(row.get("started_at")), iso(row.get("finished_at"))
    spec = _json_field(spec_row.get("spec"), None) if spec_row else None
    return {
        "run_id": row["run_id"], "job": row.get("job"), "status": status,
        "trigger": row.get("trigger") or "local", "started_at": started,
        "finished_at": finished,
        "duration_seconds": seconds_between(row.get("started_at"), row.get("finished_at")),
        "total": total, "counts": counts, "parent_run_id": row.get("parent_run"),
        "reason": reason, "cost": None, "console_url": None, "spec": spec,
    }


def attempt_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "attempt": _int(row.get("attempt")), "task_arn": row.get("task_arn"),
        "capacity": row.get("capacity"), "exit_code": _int(row.get("exit_code")),
        "stop_code": row.get("stop_code"), "reason": attempt_reason(row),
        "started_at": iso(row.get("started_at")), "stopped_at": iso(row.get("stopped_at")),
        "duration_seconds": _float(row.get("duration_seconds")),
        "log_stream": row.get("log_stream"), "cost_usd": None,
        # Not in the contract's AttemptView: when the launch was asked for, so the
        # timeline can draw the wait before the task started.
        "created_at": iso(row.get("created_at")),
        # And how the attempt itself ended (RETRY for one that was retried).
        "status": row.get("status"),
    }


def item_view(run_id: str, index: int, row: dict[str, Any],
               attempts: list[dict[str, Any]]) -> ItemDetail:
    status = str(row.get("status") or "PENDING")
    last = attempts[-1] if attempts else None
    started = attempts[0]["started_at"] if attempts else None
    finished = last["stopped_at"] if last and status not in ("RUNNING", "PENDING") else None
    reason = row.get("reason") or (last["reason"] if last and status in FAILED_STATES else None)
    if reason is None and status == "ABORTED":
        reason = "aborted: the run was stopped before this item finished"
    return {
        "run_id": run_id, "index": index,
        "params": _json_field(row.get("params"), {}),
        "command": _json_field(row.get("command"), []),
        "environment": _json_field(row.get("environment"), {}),
        "status": status, "attempts": _int(row.get("attempts")) or len(attempts),
        "exit_code": _int(row.get("exit_code")), "reason": reason, "log_tail": [],
        "waiting": None, "started_at": started, "finished_at": finished,
        "duration_seconds": seconds_between(started, finished),
        "attempt_list": attempts,
    }


def parse_run_folder(folder: Path, mtime: float) -> Loaded:
    run_row: dict[str, Any] = {}
    spec_row: dict[str, Any] | None = None
    item_rows: dict[int, dict[str, Any]] = {}
    attempt_rows: dict[int, list[dict[str, Any]]] = {}
    with open(folder / "records.jsonl", "rb") as f:
        for line in f:
            row = json.loads(line)
            sk = str(row.get("sk", ""))
            if sk == "RUN":
                run_row = row
            elif sk == "SPEC":
                spec_row = row
            elif sk.startswith("ITEM#"):
                parts = sk.split("#")
                index = int(parts[1])
                if len(parts) == 2:
                    item_rows[index] = row
                else:
                    attempt_rows.setdefault(index, []).append(attempt_view(row))
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if not run_row:
        run_row = {"run_id": folder.name, "job": summary.get("job"),
                   "status": summary.get("status"), "total": summary.get("total")}
    # Items that never launched have no record; the summary lists every item.
    for entry in summary.get("items", []):
        index = int(entry["index"])
        if index not in item_rows:
            item_rows[index] = {"params": entry.get("params"), "status": entry.get("status"),
                                "attempts": entry.get("attempts"),
                                "exit_code": entry.get("exit_code")}
    items = [item_view(folder.name, index, item_rows[index],
                        sorted(attempt_rows.get(index, []), key=lambda a: a["attempt"] or 0))
             for index in sorted(item_rows)]
    counts = empty_counts()
    for item in items:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    total = _int(run_row.get("total")) or len(items)
    counts["PENDING"] += max(total - len(items), 0)
    run = run_view(run_row, spec_row, counts)
    log_files: dict[tuple[int, int], Path] = {}
    logs = folder / "logs"
    if logs.is_dir():
        for path in logs.iterdir():
            parts = path.stem.split("-")  # item-<index>-attempt-<n>-<task id>
            if len(parts) >= 4 and parts[0] == "item" and parts[2] == "attempt":
                at, attempt = _int(parts[1]), _int(parts[3])
                if at is not None and attempt is not None:
                    log_files[(at, attempt)] = path
    return Loaded(mtime=mtime, run=run, items=items, log_files=log_files)

