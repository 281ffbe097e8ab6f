"""The dashboard's view of a :class:`DashboardSource`: a finished run's items read once.

The pages ask for every item of a run (the grid) and every item's attempts (the timeline).
A source answers ``get_item`` one item at a time; for a 10,000-item run that is 10,000
reads. :class:`Cached` reads a run's items and attempts in one pass — from a local run's
records file (docs/local-records.md), from a stack's ``all_details`` (two paginated
queries), else item by item from the source — and keeps them until the run's status or
counts (or a local run's records file, which a running run rewrites about once a second)
change. A local run whose first
snapshot is not written yet shows its items PENDING from its spec's expansion.

A page asks for the run (:meth:`Cached.get_run`) and then for its items: the items' cache is
checked against the run just read in the same request, not read again (on AWS each read of
a run record is a Query). A request is one context (each ASGI request runs in its own
copy), so no later request sees a run another one read.
"""

from __future__ import annotations

import json
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from fanout.records.views import view_of
from fanout.ui.source import ItemDetail, ItemView, PipelineRunsSource, RunView

#: Items of a source without bulk reads whose attempts are read one by one, at most.
REMOTE_DETAILS = 1000
#: A running local run's items shown PENDING from its expansion, at most.
PENDING_SHOWN = 20_000

#: The run the current request last read, by the Cached that read it: (id, run_id, view).
_READ: ContextVar[tuple[int, str, RunView] | None] = ContextVar("fanout_ui_run_read",
                                                                 default=None)


class Cached:
    """A :class:`DashboardSource` with the dashboard's bulk reads, over another one."""

    def __init__(self, inner: Any, config_path: Path,
                 pipelines: PipelineRunsSource | None = None) -> None:
        self.inner = inner
        self.kind: str = inner.kind
        self.config_path = config_path
        #: Where its pipeline runs are read (None: this source lists none).
        self.pipelines = pipelines
        self._lock = threading.Lock()
        self._details: dict[str, tuple[tuple[Any, ...], list[ItemDetail]]] = {}

    # the protocol, passed through ---------------------------------------------------------

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[RunView]:
        runs: list[RunView] = self.inner.list_runs(job=job, status=status, limit=limit)
        return runs

    def get_run(self, run_id: str) -> RunView | None:
        run: RunView | None = self.inner.get_run(run_id)
        _READ.set((id(self), run_id, run) if run is not None else None)
        return run

    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]:
        lines: list[str] = self.inner.log_lines(run_id, index, attempt)
        return lines

    def stop(self, run_id: str) -> None:
        self.inner.stop(run_id)

    def rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None) -> str:
        return str(self.inner.rerun(run_id, failed_only, indexes))

    def start(self, spec: dict[str, Any]) -> str:
        return str(self.inner.start(spec))

    def output_file(self, run_id: str, index: int, key: str) -> Path | None:
        """The file ``key`` that item ``index`` of a local run wrote (its path under the
        item's output folder, docs/local-records.md); None when the run is not local, there
        is no such file, or the key leads out of the folder (``..``, a link)."""
        folder = getattr(self.inner, "records_dir", None)
        if self.kind != "local" or folder is None or "/" in run_id or run_id.startswith("."):
            return None
        root = (Path(folder) / run_id / "outputs" / str(int(index))).resolve()
        target = (root / key).resolve()
        return target if target.is_relative_to(root) and target != root \
            and target.is_file() else None

    # reads in bulk ------------------------------------------------------------------------

    def list_items(self, run_id: str, status: str | None = None) -> list[ItemView]:
        return [view_of(i) for i in self.details(run_id)
                if status is None or i["status"] == status]

    def get_item(self, run_id: str, index: int) -> ItemDetail | None:
        details = self.details(run_id)
        if 0 <= index < len(details) and details[index]["index"] == index:
            return details[index]
        item: ItemDetail | None = self.inner.get_item(run_id, index)
        return item

    def details(self, run_id: str) -> list[ItemDetail]:
        """Every item of the run with its attempts (``attempts``), in index order."""
        read = _READ.get()
        run = read[2] if read is not None and read[:2] == (id(self), run_id) \
            else self.inner.get_run(run_id)
        if run is None:
            return []
        path = self._records_file(run_id)
        stamp = path.stat().st_mtime if path else None
        # A running run on AWS has no records file: its counts say when its items changed.
        key = (run["status"], run["finished_at"], stamp,
               json.dumps(run.get("counts"), sort_keys=True))
        with self._lock:
            cached = self._details.get(run_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        details = self._read(run, path)
        with self._lock:
            if len(self._details) >= 8:
                self._details.pop(next(iter(self._details)))
            self._details[run_id] = (key, details)
        return details

    def _records_file(self, run_id: str) -> Path | None:
        folder = getattr(self.inner, "records_dir", None)
        if self.kind != "local" or folder is None or "/" in run_id or run_id.startswith("."):
            return None
        path = Path(folder) / run_id / "records.jsonl"
        return path if path.is_file() else None

    def _read(self, run: RunView, path: Path | None) -> list[ItemDetail]:
        if path is not None:
            items, attempts = _read_local(path)
            if items or run["status"] != "RUNNING":
                for item in items:
                    item["attempts"] = sorted(attempts.get(item["index"], []),
                                                  key=lambda a: a.get("attempt") or 0)
                return items
            return self._pending(run)
        bulk = getattr(self.inner, "all_details", None)  # a stack's: items, attempts at once
        if bulk is not None:
            details: list[ItemDetail] = bulk(run["run_id"])
            return details
        views: list[ItemView] = self.inner.list_items(run["run_id"])
        if len(views) > REMOTE_DETAILS:
            return [{**v, "attempts": []} for v in views]
        out: list[ItemDetail] = []
        for view in views:
            detail = self.inner.get_item(run["run_id"], int(view["index"]))
            out.append(detail if detail is not None else {**view, "attempts": []})
        return out

    def _pending(self, run: RunView) -> list[ItemDetail]:
        """A running local run's items, PENDING, from its spec's expansion."""
        from fanout.config import load_config_file
        from fanout.errors import FanoutInputError
        from fanout.spec.plan import plan_run
        from fanout.spec.validate import parse_spec

        spec = run.get("spec")
        try:
            config = load_config_file(self.config_path)
            parsed = parse_spec(spec, config)
            if parsed.items_from is not None:
                return []
            plan = plan_run(parsed, config, run_id=run["run_id"])
        except (FanoutInputError, OSError):
            return []
        if plan.count > PENDING_SHOWN:
            return []
        return [{"run_id": run["run_id"], "index": item["index"], "params": item["params"],
                 "command": item["command"], "environment": item["environment"],
                 "status": "PENDING", "attempt_count": 0, "exit_code": None, "reason": None,
                 "log_tail": [], "waiting": None, "started_at": None, "finished_at": None,
                 "duration_seconds": None, "attempts": []} for item in plan.items()]


def _read_local(path: Path) -> tuple[list[ItemDetail], dict[int, list[dict[str, Any]]]]:
    """The item and attempt lines of a local run's records (docs/local-records.md)."""
    from fanout.records.local_format import upgraded

    items: list[ItemDetail] = []
    attempts: dict[int, list[dict[str, Any]]] = {}
    with open(path, "rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = upgraded(json.loads(line))
            kind = row.pop("record", None)
            if kind == "item":
                items.append(row)
            elif kind == "attempt":
                index = int(row.pop("index"))
                row.pop("run_id", None)
                attempts.setdefault(index, []).append(row)
    items.sort(key=lambda i: int(i["index"]))
    return items, attempts
