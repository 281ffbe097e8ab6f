"""Local runs for the dashboard: the records folder ``fanout local`` writes, read back.

Each run is a folder ``<records_dir>/<run_id>/`` with ``records.jsonl`` (the run's table
rows: RUN, SPEC, each item and each attempt), ``summary.json`` and ``logs/``. A finished
run's folder never changes, so it is parsed once (and again only if its file changes).
Runs started here run as ``fanout local`` processes in the background: stop is SIGTERM
(what Ctrl-C is to ``fanout local``), rerun is a new local run over the chosen items.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanout.ui.local_records import Loaded, item_view, last_rows, parse_run_folder, run_view
from fanout.ui.source import (
    FAILED_STATES,
    ItemDetail,
    ItemView,
    RunView,
    SourceError,
    empty_counts,
    now_iso,
    seconds_between,
    tail,
)


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
        self._cache: dict[str, Loaded] = {}
        self._heads: dict[str, tuple[float, RunView]] = {}
        self._started: dict[str, _Started] = {}
        self._lock = threading.Lock()

    # reading ----------------------------------------------------------------------------

    def _folder(self, run_id: str) -> Path | None:
        if not run_id or "/" in run_id or run_id.startswith("."):
            return None
        folder = self.records_dir / run_id
        return folder if (folder / "records.jsonl").is_file() else None

    def _load(self, run_id: str) -> Loaded | None:
        folder = self._folder(run_id)
        if folder is None:
            return None
        records = folder / "records.jsonl"
        mtime = records.stat().st_mtime
        with self._lock:
            cached = self._cache.get(run_id)
        if cached is not None and cached.mtime == mtime:
            return cached
        loaded = parse_run_folder(folder, mtime)
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
        rows = last_rows(records, {"RUN", "SPEC"})
        if "RUN" not in rows:
            return None
        view = run_view(rows["RUN"], rows.get("SPEC"), None)
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
        from fanout.local.runner import new_run_id
        from fanout.spec.plan import plan_run
        from fanout.spec.validate import parse_spec

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
            item_view(started.run_id, index, {"params": params, "status": "PENDING",
                                               **started.commands[index]}, [])
            for index, params in enumerate(started.params)
        ]




def open_local(records_dir: Path, config_path: Path) -> Any:
    """The local runs of ``records_dir`` as the dashboard reads them.

    The project's reading API (``fanout.runs.local.LocalRuns``, the records format
    ``fanout.local-records/1``) when this build has it, behind the dashboard's bulk reads;
    else this module's reader of the records ``fanout local`` writes today.
    """
    try:
        from fanout.runs.local import LocalRuns
    except ImportError:
        return LocalSource(records_dir, config_path=config_path)
    from fanout.ui.cached import Cached

    return Cached(LocalRuns(records_dir, config_path), config_path)
