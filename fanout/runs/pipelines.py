"""Pipeline runs as the dashboard reads them: the local records' reader.

A pipeline run's view is what ``fanout local PIPELINE.json --json`` prints (docs/pipelines.md)
with ``duration_seconds``: ``pipeline_run_id``, ``pipeline``, ``status``, ``reason``,
``started_at``, ``finished_at``, ``duration_seconds``, ``timeout_seconds``,
``parent_pipeline_run`` and ``steps``: step name -> ``status``, ``run_id``, ``runs``,
``reason``, ``started_at``, ``finished_at``, ``total``, ``succeeded``, ``needs``, ``when``.

:class:`LocalPipelineRuns` (a :class:`fanout.ui.source.PipelineRunsSource`) reads the
pipeline runs of a records folder (each
``<run>/pipeline.json``, written by :mod:`fanout.local.pipeline`) and reruns one as
``fanout rerun PIPELINE_RUN --failed|--all --local`` does: by running that very command.
A stack's pipeline runs are not read yet: a source of them gives the same shapes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fanout.local.pipeline import PIPELINE_RECORD
from fanout.names import new_run_id
from fanout.records.views import RunsError, now, seconds_between
from fanout.runs.local import pid_alive

#: A pipeline run as the pages and ``/api/pipelines`` show it (the shape above).
PipelineRunView = dict[str, Any]
#: Fields of the local record that are not the view's (docs/pipelines.md: Local records).
RECORD_ONLY = ("format", "pid", "spec", "config")
#: How long a rerun's process is awaited to write its record (its checks run first).
RERUN_START_SECONDS = 60.0


def view_of(record: dict[str, Any]) -> PipelineRunView:
    """The view of a local pipeline record; a RUNNING one whose process is gone ended
    ABORTED (it was killed before it could say so)."""
    view = {k: v for k, v in record.items() if k not in RECORD_ONLY}
    if view.get("status") == "RUNNING" and not pid_alive(record.get("pid")):
        view.update(status="ABORTED", reason="the local process running it ended before the "
                                             "pipeline did")
    steps = view.get("steps")
    view["steps"] = {str(name): {**step, "needs": [str(n) for n in step.get("needs") or []
                                                   if isinstance(n, str)]}
                     for name, step in (steps.items() if isinstance(steps, dict) else ())
                     if isinstance(step, dict)}
    ended = view.get("finished_at") if view.get("status") != "RUNNING" else None
    view["duration_seconds"] = seconds_between(view.get("started_at"), ended or now())
    return view


class LocalPipelineRuns:
    """The pipeline runs of a records folder (a :class:`PipelineRunsSource`)."""

    kind = "local"

    def __init__(self, records_dir: Path, config_path: Path = Path("cdk.json"),
                 python: str = sys.executable) -> None:
        self.records_dir = Path(records_dir)
        self.config_path = Path(config_path)
        self.python = python

    def _record(self, folder: Path) -> dict[str, Any] | None:
        try:
            loaded = json.loads((folder / PIPELINE_RECORD).read_text())
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) and loaded.get("pipeline_run_id") else None

    def list_pipeline_runs(self, limit: int = 200) -> list[PipelineRunView]:
        runs: list[PipelineRunView] = []
        if self.records_dir.is_dir():
            for folder in self.records_dir.iterdir():
                record = self._record(folder) if (folder / PIPELINE_RECORD).is_file() else None
                if record is not None:
                    runs.append(view_of(record))
        runs.sort(key=lambda r: (str(r.get("started_at") or ""), str(r["pipeline_run_id"])),
                  reverse=True)
        return runs[:limit]

    def get_pipeline_run(self, pipeline_run_id: str) -> PipelineRunView | None:
        if not pipeline_run_id or "/" in pipeline_run_id or pipeline_run_id.startswith("."):
            return None
        record = self._record(self.records_dir / pipeline_run_id)
        return view_of(record) if record is not None else None

    def rerun_pipeline(self, pipeline_run_id: str, failed_only: bool) -> str:
        """``fanout rerun PIPELINE_RUN --failed|--all --local`` in the background (the
        config the pipeline ran with, as the command takes it); the new id once its record
        is written, or the command's own line when it refused."""
        run = self.get_pipeline_run(pipeline_run_id)
        if run is None:
            raise RunsError(f"no pipeline run {pipeline_run_id} in {self.records_dir}")
        if run["status"] == "RUNNING":
            raise RunsError(f"pipeline run {pipeline_run_id} is still running")
        new_id = new_run_id(str(run["pipeline"]))
        self.records_dir.mkdir(parents=True, exist_ok=True)
        log = self.records_dir / f".{new_id}.stderr.log"
        with open(log, "wb") as stderr:
            process = subprocess.Popen(
                [self.python, "-m", "fanout.cli", "rerun", pipeline_run_id, "--local",
                 "--failed" if failed_only else "--all", "--run-id", new_id,
                 "--records-dir", str(self.records_dir.resolve()),
                 "--config", str(self.config_path.resolve()), "--json"],
                stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL,
                cwd=self.config_path.resolve().parent, start_new_session=True)
        record = self.records_dir / new_id / PIPELINE_RECORD
        deadline = time.monotonic() + RERUN_START_SECONDS
        # Another process writes the record once its checks pass: nothing to await but it.
        while not record.is_file():
            if process.poll() is not None and not record.is_file():
                lines = log.read_text(errors="replace").strip().splitlines()
                raise RunsError(lines[-1] if lines else
                                f"the rerun of {pipeline_run_id} ended at once "
                                f"(exit {process.returncode})")
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return new_id
