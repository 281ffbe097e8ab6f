"""Local runs as runs: the records folder ``fanout local`` writes, read back.

The folder's format is :mod:`fanout.local.records` (docs/local-records.md). Stopping a
local run signals the ``fanout local`` process running it (it aborts the run as Ctrl-C
would); a rerun runs through the local mode.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fanout.local.records import RECORDS, write_started
from fanout.names import new_run_id
from fanout.records.local_format import upgraded
from fanout.records.views import (
    FAILED_STATES,
    ItemDetail,
    ItemView,
    RunsError,
    RunView,
    now,
    seconds_between,
)

DEFAULT_RECORDS_DIR = Path(".fanout/runs")


class RunNotFound(RunsError, LookupError):
    """No run of that id in the records folder."""


class NotRunning(RunsError, RuntimeError):
    """The run has ended: there is nothing to stop."""


# --- reading ---------------------------------------------------------------------------------


def pid_alive(pid: Any) -> bool:
    """Whether the local process ``pid`` (a run's or a pipeline's, from its record) is alive."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalRuns:
    """The runs of a records folder (a :class:`fanout.records.views.RunsSource`)."""

    kind = "local"

    def __init__(self, records_dir: Path = DEFAULT_RECORDS_DIR,
                 config_path: Path = Path("cdk.json"), python: str = sys.executable) -> None:
        self.records_dir = Path(records_dir)
        self.config_path = Path(config_path)
        self.python = python

    def _path(self, run_id: str) -> Path | None:
        if not run_id or "/" in run_id or run_id.startswith("."):
            return None
        path = self.records_dir / run_id / RECORDS
        return path if path.is_file() else None

    def _rows(self, run_id: str) -> Iterator[dict[str, Any]]:
        path = self._path(run_id)
        if path is None:
            return
        with open(path) as lines:
            for line in lines:
                if line.strip():
                    yield upgraded(json.loads(line))

    def _run_row(self, path: Path) -> dict[str, Any] | None:
        with open(path) as lines:
            first = lines.readline()
        if not first.strip():
            return None
        row: dict[str, Any] = json.loads(first)
        return row if row.get("record") == "run" else None

    @staticmethod
    def _run_of(row: dict[str, Any]) -> RunView:
        view = {k: v for k, v in row.items() if k not in ("record", "format", "pid", "settings")}
        if view["status"] == "RUNNING":
            if not pid_alive(row.get("pid")):
                # The process that ran it is gone without writing its records (killed).
                view.update(status="ABORTED", reason="the local process running it ended "
                                                     "before the run did")
            else:
                view["duration_seconds"] = seconds_between(view.get("started_at"), now())
        return view

    def settings(self, run_id: str) -> dict[str, Any] | None:
        path = self._path(run_id)
        row = self._run_row(path) if path else None
        return row.get("settings") if row else None

    def pid(self, run_id: str) -> int | None:
        path = self._path(run_id)
        row = self._run_row(path) if path else None
        pid = row.get("pid") if row else None
        return pid if row and row.get("status") == "RUNNING" and pid_alive(pid) else None

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[RunView]:
        runs: list[RunView] = []
        if self.records_dir.is_dir():
            for folder in self.records_dir.iterdir():
                path = folder / RECORDS
                row = self._run_row(path) if path.is_file() else None
                if row is None:
                    continue
                run = self._run_of(row)
                if (job is None or run["job"] == job) and (status is None
                                                           or run["status"] == status):
                    runs.append(run)
        runs.sort(key=lambda r: (r.get("started_at") or "", r["run_id"]), reverse=True)
        return runs[:limit]

    def get_run(self, run_id: str) -> RunView | None:
        path = self._path(run_id)
        row = self._run_row(path) if path else None
        return self._run_of(row) if row else None

    def list_items(self, run_id: str, status: str | None = None) -> list[ItemView]:
        items = [{k: v for k, v in row.items() if k != "record"}
                 for row in self._rows(run_id) if row.get("record") == "item"]
        return [i for i in items if status is None or i["status"] == status]

    def get_item(self, run_id: str, index: int) -> ItemDetail | None:
        item: ItemDetail | None = None
        attempts: list[dict[str, Any]] = []
        for row in self._rows(run_id):
            if row.get("index") != index:
                continue
            body = {k: v for k, v in row.items() if k != "record"}
            if row.get("record") == "item":
                item = body
            elif row.get("record") == "attempt":
                attempts.append({k: v for k, v in body.items() if k not in ("run_id", "index")})
        if item is None:
            return None
        return {**item, "attempts": sorted(attempts, key=lambda a: a["attempt"])}

    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]:
        from fanout.local.logs import local_log_lines

        lines = local_log_lines(run_id, index, attempt, self.records_dir) or []
        return [str(line["message"]) for line in lines]

    def log_records(self, run_id: str, index: int,
                    attempt: int | None = None) -> list[dict[str, Any]]:
        from fanout.local.logs import local_log_lines

        return local_log_lines(run_id, index, attempt, self.records_dir) or []

    # acting ---------------------------------------------------------------------------------

    def stop(self, run_id: str) -> None:
        """Stop a running local run: its process aborts it as Ctrl-C would (tasks stopped,
        items ABORTED, records written)."""
        if self.get_run(run_id) is None:
            raise RunNotFound(f"no local run {run_id} in {self.records_dir}")
        pid = self.pid(run_id)
        if pid is None:
            raise NotRunning(f"run {run_id} has already ended: there is nothing to stop")
        os.kill(pid, signal.SIGTERM)

    def wait(self, run_id: str, timeout: float = 120.0) -> RunView | None:
        """The run once it has ended (its records written), or as it is after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_run(run_id)
            if run is None or run["status"] != "RUNNING" or time.monotonic() > deadline:
                return run
            time.sleep(0.2)  # another process writes the records: nothing to await but them

    def rerun_spec(self, run_id: str, failed_only: bool, indexes: list[int] | None,
                   trigger: str = "cli") -> dict[str, Any]:
        """The run spec of a rerun of ``run_id`` (raises SpecError: nothing to rerun, an
        index the run does not have, a run still going)."""
        from fanout.errors import Problem, SpecError
        from fanout.runtime.rerun import choose, spec_of

        run = self.get_run(run_id)
        if run is None:
            raise SpecError([Problem("rerun_of", f"no local run {run_id!r} in "
                                                 f"{self.records_dir}")])
        if run["status"] == "RUNNING":
            raise SpecError([Problem("rerun_of", f"run {run_id} is still running")])
        settings = self.settings(run_id)
        if run["status"] == "REJECTED" or not settings:
            raise SpecError([Problem("rerun_of", f"run {run_id} was rejected: it has no items")])
        items = {i["index"]: i for i in self.list_items(run_id)}
        select: Any = indexes if indexes else ("failed" if failed_only else "all")
        chosen = choose(select, run_id, int(run["total"] or 0),
                        {i: v["status"] for i, v in items.items()})
        return spec_of(run_id, settings, [items[i]["params"] for i in chosen],
                       {"trigger": trigger})

    def made_with(self, run_id: str) -> dict[str, Any] | None:
        """What the run was made with (:mod:`fanout.local.made_with`): its config, kept in
        its folder, and its job's definition; None for a run made before they were kept."""
        from fanout.local.made_with import made_with

        return made_with(self.records_dir / run_id) if self._path(run_id) else None

    def rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None) -> str:
        """Start the rerun in the background, as ``fanout rerun --local`` (the same path: the
        config and job the run was made with); its run id at once."""
        spec = self.rerun_spec(run_id, failed_only, indexes, trigger="console")
        if self.made_with(run_id) is None:
            from fanout.errors import Problem, SpecError

            raise SpecError([Problem("rerun_of", f"run {run_id} recorded no config (made by "
                                                 "an older fanout): rerun it with fanout rerun "
                                                 "--local --current-config")])
        chosen = [f"--item={i}" for i in indexes] if indexes else (
            ["--failed"] if failed_only else [])
        return self._spawn(spec, ["rerun", run_id, "--local", *chosen])

    def start(self, spec: dict[str, Any]) -> str:
        """Start ``fanout local`` on a spec in the background; its run id at once."""
        run_id = new_id(spec)
        self.records_dir.mkdir(parents=True, exist_ok=True)
        aside = self.records_dir / f".{run_id}.spec.json"
        aside.write_text(json.dumps(spec))
        return self._spawn(spec, ["local", str(aside.resolve())], run_id)

    def _spawn(self, spec: dict[str, Any], command: list[str], run_id: str | None = None
               ) -> str:
        run_id = run_id or new_id(spec)
        self.records_dir.mkdir(parents=True, exist_ok=True)
        with open(self.records_dir / f".{run_id}.stderr.log", "wb") as stderr:
            process = subprocess.Popen(
                [self.python, "-m", "fanout.cli", *command,
                 "--config", str(self.config_path.resolve()), "--run-id", run_id,
                 "--records-dir", str(self.records_dir.resolve()), "--json"],
                stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL,
                cwd=self.config_path.resolve().parent, start_new_session=True)
        write_started(self.records_dir, run_id, spec, pid=process.pid)
        return run_id


def new_id(spec: dict[str, Any]) -> str:
    return new_run_id(str(spec.get("job")))


def failed(item: ItemView) -> bool:
    return item["status"] in FAILED_STATES
