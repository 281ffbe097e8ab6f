"""Where the dashboard reads runs from: :class:`DashboardSource` and an in-memory source.

The shapes are the CLI's ``--json`` shapes (docs/cli.md, :mod:`fanout.records.views`): a run
is a RunView, an item an ItemView, an item with its attempts an ItemDetail. Everything the
pages show comes through this protocol, so a page never knows whether the runs are local or
on AWS: :class:`fanout.runs.local.LocalRuns` (a records folder; runs are started, stopped and
rerun as ``fanout local`` processes) or :class:`fanout.runs.stack.StackRuns` (a deployed
stack), each behind :class:`fanout.ui.cached.Cached`. :class:`MemorySource` holds views in
memory (unit tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fanout.records.views import (
    ITEM_STATES,
    RUN_STATES,
    ItemDetail,
    ItemView,
    RunsError,
    RunsSource,
    RunView,
    view_of,
)

__all__ = ["ITEM_STATES", "RUN_STATES", "DashboardSource", "ItemDetail", "ItemView",
           "MemorySource", "PipelineRunView", "PipelineRunsSource", "RunView", "SourceError",
           "empty_counts", "parse_time"]

#: An action the source refuses (a run it does not have, one that cannot be stopped).
SourceError = RunsError


class DashboardSource(RunsSource, Protocol):
    """What the dashboard needs of a place where runs live: the reading API, and starting."""

    def start(self, spec: dict[str, Any]) -> str: ...


#: A pipeline run: what ``fanout local PIPELINE.json --json`` prints, with
#: ``duration_seconds`` (docs/pipelines.md); ``steps`` maps each step's name to its
#: ``status``, ``reason``, ``run_id``, ``runs``, ``needs``, ``when``, ``started_at``,
#: ``finished_at``, ``total`` and ``succeeded``.
PipelineRunView = dict[str, Any]


class PipelineRunsSource(Protocol):
    """Where the dashboard reads pipeline runs: the local records'
    (:class:`fanout.runs.pipelines.LocalPipelineRuns`), a stack's
    (:class:`fanout.runs.stack_pipelines.StackPipelineRuns`)."""

    def list_pipeline_runs(self, limit: int = 200) -> list[PipelineRunView]: ...

    def get_pipeline_run(self, pipeline_run_id: str) -> PipelineRunView | None: ...

    def rerun_pipeline(self, pipeline_run_id: str, failed_only: bool) -> str:
        """Start a rerun (``--failed`` or ``--all``); the new pipeline run's id. Raises
        :data:`SourceError` when it cannot be (nothing of that id, still running)."""
        ...


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(ITEM_STATES, 0)


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
        return [view_of(i)
                for i in self.items.get(run_id, []) if status is None or i["status"] == status]

    def get_item(self, run_id: str, index: int) -> ItemDetail | None:
        items = self.items.get(run_id, [])
        return items[index] if 0 <= index < len(items) and items[index]["index"] == index \
            else next((i for i in items if i["index"] == index), None)

    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]:
        if attempt is None:
            item = self.get_item(run_id, index)
            attempt = len(item["attempts"]) if item and item.get("attempts") else 1
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
