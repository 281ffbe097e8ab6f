"""Where the dashboard reads runs from: the :class:`RunsSource` protocol and its sources.

The shapes are the CLI's ``--json`` shapes (docs/cli.md): a run is a RunView, an item an
ItemView, an item with its attempts an ItemDetail. Everything the pages show comes through
this protocol, so a page never knows whether the runs are local or on AWS.

- :class:`MemorySource` holds views in memory (unit tests, benchmarks).
- :class:`fanout.ui.local_runs.LocalSource` reads what ``fanout local`` leaves in a records
  folder, and starts, stops and reruns local runs as ``fanout local`` processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
