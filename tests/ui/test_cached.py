"""The dashboard's bulk reads over a source: records format fanout.local-records/1, pending
items of a running local run, the cache of a finished run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fanout.local.records import FORMAT
from fanout.records.views import view_of
from fanout.ui.cached import Cached
from tests.ui.conftest import CONFIG
from tests.ui.memory import item, run, source_with


class FolderSource:
    """A source whose runs are in a records folder (only what Cached asks of it)."""

    kind = "local"

    def __init__(self, records_dir: Path, runs: dict[str, dict[str, Any]]) -> None:
        self.records_dir = records_dir
        self.runs = runs
        self.get_item_calls = 0

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self.runs.get(run_id)

    def get_item(self, run_id: str, index: int) -> dict[str, Any] | None:
        self.get_item_calls += 1
        return None


def write_records(folder: Path, view: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """A run's records.jsonl as docs/local-records.md describes it."""
    folder.mkdir(parents=True)
    lines = [{"record": "run", "format": FORMAT, "pid": None, **view}]
    for i in items:
        lines.append({"record": "item", **view_of(i)})
    for i in items:
        for a in i["attempts"]:
            lines.append({"record": "attempt", "run_id": view["run_id"], "index": i["index"],
                          **a})
    (folder / "records.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_a_local_run_is_read_in_one_pass_with_every_attempt(tmp_path: Path) -> None:
    # Given a finished local run of 30 items in the records format
    items = [item("r1", i, "FAILED" if i % 3 else "SUCCEEDED", {"n": i}, attempts=1 + i % 2)
             for i in range(30)]
    view = run("r1", items)
    write_records(tmp_path / "r1", view, items)
    inner = FolderSource(tmp_path, {"r1": view})
    cached = Cached(inner, CONFIG)
    # When the dashboard reads its items and one item's attempts
    listed = cached.list_items("r1", status="FAILED")
    detail = cached.get_item("r1", 7)
    # Then they come from the file, without asking the source item by item
    assert [i["index"] for i in listed] == [i for i in range(30) if i % 3]
    assert "attempts" not in listed[0] and listed[0]["attempt_count"] == 2
    assert detail is not None and [a["attempt"] for a in detail["attempts"]] == [1, 2]
    assert inner.get_item_calls == 0


def test_a_running_local_run_shows_its_items_pending_from_its_spec(tmp_path: Path) -> None:
    # Given a local run still going: only its run line, no item yet
    view = run("r2", [], status="RUNNING")
    view["spec"] = {"job": "analyzer", "params": {"year": {"range": {"start": 1999,
                                                                     "stop": 2020}}}}
    write_records(tmp_path / "r2", view, [])
    cached = Cached(FolderSource(tmp_path, {"r2": view}), CONFIG)
    # Then its 21 items show, PENDING, with their params
    items = cached.list_items("r2")
    assert len(items) == 21 and {i["status"] for i in items} == {"PENDING"}
    assert items[2]["params"] == {"year": 2001}


def test_a_source_without_a_records_folder_is_read_item_by_item() -> None:
    memory = source_with(12)
    cached = Cached(memory, CONFIG)
    details = cached.details("analyzer-1")
    assert [d["index"] for d in details] == list(range(12))
    assert all(d["attempts"] for d in details)
    assert cached.get_run("analyzer-1") == memory.get_run("analyzer-1")
