"""Where the dashboard reads runs from: the :class:`RunsSource` protocol and its sources.

The shapes are the CLI's ``--json`` shapes (docs/cli.md): a run is a RunView, an item an
ItemView, an item with its attempts an ItemDetail. Everything the pages show comes through
this protocol, so a page never knows whether the runs are local or on AWS.

- :class:`MemorySource` holds views in memory (unit tests, benchmarks).
- :class:`LocalSource` reads what ``fanout local`` leaves in a records folder
  (``<dir>/<run_id>/records.jsonl``, ``summary.json``, ``logs/``) and starts, stops and
  reruns local runs as ``fanout local`` processes in the background.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

RunView = dict[str, Any]
ItemView = dict[str, Any]
ItemDetail = dict[str, Any]

ITEM_STATES = ("PENDING", "WAITING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
RUN_STATES = ("RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT", "REJECTED")
FAILED_STATES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
#: Lines of a failure's log kept in an ItemView's ``log_tail``, and at most this many bytes.
TAIL_LINES, TAIL_BYTES = 20, 4096


class SourceError(Exception):
    """An action the source refuses (a run that cannot be stopped, nothing to rerun)."""


class RunsSource(Protocol):
    """What the dashboard needs of a place where runs live."""

    #: ``local`` or ``aws``: the pages say which.
    kind: str

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[RunView]: ...
    def get_run(self, run_id: str) -> RunView | None: ...
    def list_items(self, run_id: str, status: str | None = None) -> list[ItemView]: ...
    def get_item(self, run_id: str, index: int) -> ItemDetail | None: ...
    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]: ...
    def stop(self, run_id: str) -> None: ...
    def rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None) -> str: ...
    def start(self, spec: dict[str, Any]) -> str: ...


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def iso(text: str | None) -> str | None:
    """A record's timestamp as an ISO-8601 UTC string ending in ``Z`` (as precise as kept:
    the timeline needs sub-second starts and stops)."""
    if text and len(text) >= 20 and text[10] == "T" and text[-1] == "Z":
        return text  # already UTC: do not parse (20,000 rows in a 10,000-item run)
    when = parse_time(text)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None


def seconds_between(start: str | None, stop: str | None) -> float | None:
    a, b = parse_time(start), parse_time(stop)
    return round((b - a).total_seconds(), 3) if a and b else None


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(ITEM_STATES, 0)


def tail(lines: Sequence[str]) -> list[str]:
    """The last lines of a log, at most :data:`TAIL_LINES` and :data:`TAIL_BYTES`."""
    out: list[str] = []
    size = 0
    for line in reversed(lines[-TAIL_LINES:]):
        size += len(line.encode()) + 1
        if size > TAIL_BYTES:
            break
        out.append(line)
    return out[::-1]


# --- in memory -----------------------------------------------------------------------------


@dataclass
class MemorySource:
    """Views held in memory; actions are recorded, not carried out."""

    runs: dict[str, RunView] = field(default_factory=dict)
    items: dict[str, list[ItemDetail]] = field(default_factory=dict)
    logs: dict[tuple[str, int, int], list[str]] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    reruns: list[tuple[str, bool, list[int] | None]] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "local"

    def add_run(self, run: RunView, items: Iterable[ItemDetail]) -> None:
        self.runs[run["run_id"]] = run
        self.items[run["run_id"]] = sorted(items, key=lambda i: int(i["index"]))

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[RunView]:
        runs = [r for r in self.runs.values()
                if (job is None or r["job"] == job) and (status is None or r["status"] == status)]
        runs.sort(key=lambda r: (r["started_at"] or "", r["run_id"]), reverse=True)
        return runs[:limit]

    def get_run(self, run_id: str) -> RunView | None:
        return self.runs.get(run_id)

    def list_items(self, run_id: str, status: str | None = None) -> list[ItemView]:
        return [{k: v for k, v in i.items() if k != "attempt_list"}
                for i in self.items.get(run_id, []) if status is None or i["status"] == status]

    def get_item(self, run_id: str, index: int) -> ItemDetail | None:
        items = self.items.get(run_id, [])
        return items[index] if 0 <= index < len(items) and items[index]["index"] == index \
            else next((i for i in items if i["index"] == index), None)

    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]:
        if attempt is None:
            item = self.get_item(run_id, index)
            attempt = len(item["attempt_list"]) if item and item.get("attempt_list") else 1
        return list(self.logs.get((run_id, index, attempt), []))

    def stop(self, run_id: str) -> None:
        run = self.runs.get(run_id)
        if run is None or run["status"] != "RUNNING":
            raise SourceError(f"run {run_id} is not running")
        self.stopped.append(run_id)

    def rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None) -> str:
        if run_id not in self.runs:
            raise SourceError(f"no run {run_id}")
        self.reruns.append((run_id, failed_only, indexes))
        return f"{run_id}-rerun-{len(self.reruns)}"

    def start(self, spec: dict[str, Any]) -> str:
        self.started.append(spec)
        return f"{spec.get('job')}-started-{len(self.started)}"


# --- a local records folder ----------------------------------------------------------------


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
class _Loaded:
    """One finished run's records, parsed once (its folder no longer changes)."""

    mtime: float
    run: RunView
    items: list[ItemDetail]
    log_files: dict[tuple[int, int], Path]


@dataclass
class _Started:
    """A run this dashboard started as a ``fanout local`` process."""

    run_id: str
    spec: dict[str, Any]
    process: subprocess.Popen[bytes]
    started_at: str
    params: list[dict[str, Any]]
    commands: list[dict[str, Any]]
    stderr_path: Path
    parent_run_id: str | None = None


class LocalSource:
    """Local runs: each a folder ``<records_dir>/<run_id>/`` written by ``fanout local``."""

    kind = "local"

    def __init__(self, records_dir: Path, config_path: Path = Path("cdk.json"),
                 python: str = sys.executable) -> None:
        self.records_dir = records_dir
        self.config_path = config_path
        self.python = python
        self._cache: dict[str, _Loaded] = {}
        self._heads: dict[str, tuple[float, RunView]] = {}
        self._started: dict[str, _Started] = {}
        self._lock = threading.Lock()

    # reading ----------------------------------------------------------------------------

    def _folder(self, run_id: str) -> Path | None:
        if not run_id or "/" in run_id or run_id.startswith("."):
            return None
        folder = self.records_dir / run_id
        return folder if (folder / "records.jsonl").is_file() else None

    def _load(self, run_id: str) -> _Loaded | None:
        folder = self._folder(run_id)
        if folder is None:
            return None
        records = folder / "records.jsonl"
        mtime = records.stat().st_mtime
        with self._lock:
            cached = self._cache.get(run_id)
        if cached is not None and cached.mtime == mtime:
            return cached
        loaded = _parse_run_folder(folder, mtime)
        with self._lock:
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[run_id] = loaded
        return loaded

    def _head(self, folder: Path) -> RunView | None:
        """A run's RunView from the end of its records (the RUN and SPEC rows sort last)."""
        records = folder / "records.jsonl"
        try:
            mtime = records.stat().st_mtime
        except OSError:
            return None
        cached = self._heads.get(folder.name)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        rows = _last_rows(records, {"RUN", "SPEC"})
        if "RUN" not in rows:
            return None
        view = _run_view(rows["RUN"], rows.get("SPEC"), None)
        self._heads[folder.name] = (mtime, view)
        return view

    def _settle_started(self) -> None:
        """Forget the started runs whose process ended (their folder says it all now)."""
        with self._lock:
            ended = [s for s in self._started.values() if s.process.poll() is not None
                     and self._folder(s.run_id) is not None]
            for started in ended:
                del self._started[started.run_id]

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[RunView]:
        self._settle_started()
        runs: list[RunView] = [self._started_view(s) for s in list(self._started.values())]
        seen = {r["run_id"] for r in runs}
        if self.records_dir.is_dir():
            for folder in self.records_dir.iterdir():
                if folder.name in seen:
                    continue
                view = self._head(folder)
                if view is not None:
                    runs.append(view)
        runs = [r for r in runs
                if (job is None or r["job"] == job) and (status is None or r["status"] == status)]
        runs.sort(key=lambda r: (r["started_at"] or "", r["run_id"]), reverse=True)
        return runs[:limit]

    def get_run(self, run_id: str) -> RunView | None:
        self._settle_started()
        started = self._started.get(run_id)
        if started is not None:
            return self._started_view(started)
        loaded = self._load(run_id)
        return loaded.run if loaded else None

    def list_items(self, run_id: str, status: str | None = None) -> list[ItemView]:
        started = self._started.get(run_id)
        if started is not None:
            items = self._started_items(started)
        else:
            loaded = self._load(run_id)
            items = loaded.items if loaded else []
        return [{k: v for k, v in i.items() if k != "attempt_list"}
                for i in items if status is None or i["status"] == status]

    def get_item(self, run_id: str, index: int) -> ItemDetail | None:
        started = self._started.get(run_id)
        if started is not None:
            items = self._started_items(started)
            return items[index] if 0 <= index < len(items) else None
        loaded = self._load(run_id)
        if loaded is None or not 0 <= index < len(loaded.items):
            return None
        item = loaded.items[index]
        if not item.get("log_tail") and item["status"] in FAILED_STATES:
            item["log_tail"] = tail(self.log_lines(run_id, index))
        return item

    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]:
        loaded = self._load(run_id)
        if loaded is None:
            return []
        if attempt is None:
            attempts = [a for (i, a) in loaded.log_files if i == index]
            if not attempts:
                return []
            attempt = max(attempts)
        path = loaded.log_files.get((index, attempt))
        if path is None:
            return []
        return path.read_text(errors="replace").splitlines()

    # acting -----------------------------------------------------------------------------

    def start(self, spec: dict[str, Any], parent_run_id: str | None = None) -> str:
        """Start ``fanout local`` on the spec in the background; its run id at once."""
        from fanout.config import load_config_file
        from fanout.expand import plan_run
        from fanout.local.runner import new_run_id
        from fanout.spec import parse_spec

        config = load_config_file(self.config_path)
        document = dict(spec)
        document.setdefault("trigger", "console")
        parsed = parse_spec(document, config)  # raises SpecError: nothing started
        run_id = new_run_id(str(document["job"]))
        params: list[dict[str, Any]] = []
        commands: list[dict[str, Any]] = []
        if parsed.items_from is None:
            plan = plan_run(parsed, config, run_id=run_id)
            for item in plan.items():
                params.append(item["params"])
                commands.append({"command": item["command"],
                                 "environment": item["environment"]})
        self.records_dir.mkdir(parents=True, exist_ok=True)
        pending = self.records_dir / f".{run_id}"
        pending.mkdir(exist_ok=True)
        (pending / "spec.json").write_text(json.dumps(document))
        stderr_path = pending / "stderr.log"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                [self.python, "-m", "fanout.cli", "local", str(pending / "spec.json"),
                 "--config", str(self.config_path), "--run-id", run_id,
                 "--records-dir", str(self.records_dir), "--json"],
                stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL,
                cwd=self.config_path.resolve().parent, start_new_session=True,
            )
        with self._lock:
            self._started[run_id] = _Started(
                run_id=run_id, spec=document, process=process, started_at=now_iso(),
                params=params, commands=commands, stderr_path=stderr_path,
                parent_run_id=parent_run_id,
            )
        return run_id

    def stop(self, run_id: str) -> None:
        started = self._started.get(run_id)
        if started is None or started.process.poll() is not None:
            raise SourceError(f"run {run_id} is not running here")
        # SIGTERM is what Ctrl-C is to ``fanout local``: tasks stopped, items ABORTED.
        os.kill(started.process.pid, signal.SIGTERM)

    def rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None) -> str:
        loaded = self._load(run_id)
        if loaded is None:
            raise SourceError(f"run {run_id} has no records to rerun (still running?)")
        if indexes is not None:
            wanted = set(indexes)
            chosen = [i for i in loaded.items if i["index"] in wanted]
        elif failed_only:
            chosen = [i for i in loaded.items if i["status"] != "SUCCEEDED"]
        else:
            chosen = list(loaded.items)
        if not chosen:
            raise SourceError(f"run {run_id} has no {'failed ' if failed_only else ''}"
                              "items to rerun")
        parent_spec = loaded.run.get("spec") or {}
        spec: dict[str, Any] = {
            k: v for k, v in parent_spec.items()
            if k not in ("params", "items", "items_from", "include", "exclude", "trigger",
                         "parent_run", "logical_time", "schedule")
        }
        spec["job"] = loaded.run["job"]
        spec["items"] = [i["params"] for i in chosen]
        spec["parent_run"] = run_id
        return self.start(spec, parent_run_id=run_id)

    def wait(self, run_id: str, timeout: float) -> None:
        """Block until a run started here has ended (tests, scripts)."""
        started = self._started.get(run_id)
        if started is not None:
            started.process.wait(timeout=timeout)

    # runs started here and not yet written -------------------------------------------------

    def _started_view(self, started: _Started) -> RunView:
        code = started.process.poll()
        total = len(started.params)
        counts = empty_counts()
        counts["PENDING"] = total
        status, reason, finished = "RUNNING", None, None
        if code is not None:  # ended without writing its records: refused or crashed
            status, finished = "FAILED", now_iso()
            lines = started.stderr_path.read_text(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"fanout local exited {code}"
        return {
            "run_id": started.run_id, "job": str(started.spec.get("job")), "status": status,
            "trigger": started.spec.get("trigger", "console"), "started_at": started.started_at,
            "finished_at": finished,
            "duration_seconds": seconds_between(started.started_at, finished or now_iso()),
            "total": total, "counts": counts, "parent_run_id": started.parent_run_id,
            "reason": reason, "cost": None, "console_url": None, "spec": started.spec,
        }

    def _started_items(self, started: _Started) -> list[ItemDetail]:
        return [
            _item_view(started.run_id, index, {"params": params, "status": "PENDING",
                                               **started.commands[index]}, [])
            for index, params in enumerate(started.params)
        ]


def _last_rows(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
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


def _run_view(row: dict[str, Any], spec_row: dict[str, Any] | None,
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


def _attempt_view(row: dict[str, Any]) -> dict[str, Any]:
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


def _item_view(run_id: str, index: int, row: dict[str, Any],
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


def _parse_run_folder(folder: Path, mtime: float) -> _Loaded:
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
                    attempt_rows.setdefault(index, []).append(_attempt_view(row))
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
    items = [_item_view(folder.name, index, item_rows[index],
                        sorted(attempt_rows.get(index, []), key=lambda a: a["attempt"] or 0))
             for index in sorted(item_rows)]
    counts = empty_counts()
    for item in items:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    total = _int(run_row.get("total")) or len(items)
    counts["PENDING"] += max(total - len(items), 0)
    run = _run_view(run_row, spec_row, counts)
    log_files: dict[tuple[int, int], Path] = {}
    logs = folder / "logs"
    if logs.is_dir():
        for path in logs.iterdir():
            parts = path.stem.split("-")  # item-<index>-attempt-<n>-<task id>
            if len(parts) >= 4 and parts[0] == "item" and parts[2] == "attempt":
                at, attempt = _int(parts[1]), _int(parts[3])
                if at is not None and attempt is not None:
                    log_files[(at, attempt)] = path
    return _Loaded(mtime=mtime, run=run, items=items, log_files=log_files)

