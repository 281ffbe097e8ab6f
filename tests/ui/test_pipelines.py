"""The dashboard's pipeline pages and item downloads over a seeded local records folder: a
pipeline run's record (docs/pipelines.md: Local records) and its steps' run records, as
``fanout local PIPELINE.json`` leaves them, written here (no browser, no run)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fanout.ui.render import step_columns
from tests.ui.conftest import CONFIG, serve
from tests.ui.memory import item, run, source_with
from tests.ui.test_server import request

XSS = "<img src=x onerror=alert(1)>"
PIPELINE = "seeded-20261205T070000Z-abc123"
RUNNING = "seeded-20261205T080000Z-def456"
KILLED = "seeded-20261205T060000Z-0a0b0c"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def step(status: str, run_id: str | None, needs: list[str], reason: str | None = None,
         total: int | None = None, succeeded: int | None = None) -> dict[str, Any]:
    return {"status": status, "run_id": run_id, "runs": [run_id] if run_id else [],
            "reason": reason, "started_at": "2026-12-05T07:00:01Z" if run_id else None,
            "finished_at": "2026-12-05T07:00:30Z", "total": total, "succeeded": succeeded,
            "needs": needs, "when": "on_success"}


def pipeline_record(run_id: str, status: str, steps: dict[str, Any],
                    pid: int | None = None) -> dict[str, Any]:
    return {"pipeline_run_id": run_id, "pipeline": "seeded", "status": status, "reason": None,
            "started_at": "2026-12-05T07:00:00Z",
            "finished_at": None if status == "RUNNING" else "2026-12-05T07:00:40Z",
            "timeout_seconds": None, "parent_pipeline_run": None, "records": "",
            "steps": steps, "format": "fanout.local-pipeline/1", "pid": pid,
            "spec": {"pipeline": "seeded", "steps": {
                s: {"job": "nope", "items": [{}]} for s in steps}},
            "config": str(CONFIG)}


def write_step_run(records: Path, pipeline_run: str, name: str,
                   states: list[str]) -> str:
    """A step's run (a run record whose spec names its pipeline run), every item having
    written ``result.json`` and ``sub/plot.txt`` into its output folder."""
    from fanout.local.records import write_records

    run_id = f"{pipeline_run}.{name}"
    folder = records / run_id
    items = []
    for index, state in enumerate(states):
        out = folder / "outputs" / str(index)
        (out / "sub").mkdir(parents=True)
        (out / "result.json").write_text(json.dumps({"index": index}))
        (out / "sub" / "plot.txt").write_text("plot " * 100)
        items.append({**item(run_id, index, state, {"n": index}), "output": f"{out}/",
                      "outputs": [{"key": "result.json", "size": 12},
                                  {"key": "sub/plot.txt", "size": 500}],
                      "outputs_count": 2, "outputs_bytes": 512})
    view = run(run_id, items, status="FAILED" if "FAILED" in states else "SUCCEEDED",
               job="prog")
    view["spec"] = {**view["spec"], "pipeline_run": {"run_id": pipeline_run, "step": name}}
    write_records(folder, view, items, settings={})
    return run_id


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FAILED pipeline run (prepare and side succeeded, analyze failed, a step named with
    HTML skipped because of it), one still running (this process), one whose process died."""
    folder = tmp_path_factory.mktemp("pipelines") / "runs"
    prepare = write_step_run(folder, PIPELINE, "prepare", ["SUCCEEDED"])
    analyze = write_step_run(folder, PIPELINE, "analyze", ["SUCCEEDED", "FAILED"])
    side = write_step_run(folder, PIPELINE, "side", ["SUCCEEDED"])
    seeded = {
        PIPELINE: pipeline_record(PIPELINE, "FAILED", {
            "prepare": step("SUCCEEDED", prepare, [], total=1, succeeded=1),
            "analyze": step("FAILED", analyze, ["prepare"], "1 failed of 2", 2, 1),
            XSS: step("SKIPPED", None, ["analyze"],
                      f"needs analyze (FAILED), which did not succeed {XSS}"),
            "side": step("SUCCEEDED", side, [], total=1, succeeded=1)}),
        RUNNING: pipeline_record(RUNNING, "RUNNING", {
            "prepare": step("RUNNING", None, [])}, pid=os.getpid()),
        KILLED: pipeline_record(KILLED, "RUNNING", {
            "prepare": step("RUNNING", None, [])}, pid=2 ** 22 + 1),
    }
    for run_id, record in seeded.items():
        (folder / run_id).mkdir(parents=True, exist_ok=True)
        (folder / run_id / "pipeline.json").write_text(json.dumps(record))
    return folder


@pytest.fixture(scope="module")
def served(records: Path) -> Iterator[Any]:
    from fanout.ui.local_runs import open_local

    with serve(open_local(records, CONFIG)) as s:
        yield s


def boxes(html: str) -> dict[str, tuple[str, str | None, int]]:
    """Each step box of the graph: its status, the run it links to, its column's x."""
    found = {}
    for name, status, body in re.findall(
            r'<g class="step s-[A-Z_]+" data-step="([^"]*)" data-status="([A-Z_]+)">(.*?)</g>',
            html):
        link = re.search(r'<a href="/runs/([^"]+)">', body)
        x = re.search(r'<rect x="(\d+)"', body)
        assert x, body
        found[name] = (status, link.group(1) if link else None, int(x.group(1)))
    return found


def test_a_pipeline_run_page_draws_its_steps_by_wave_coloured_labelled_and_linked(
        served: Any) -> None:
    # When the FAILED pipeline run's page is opened
    status, _, html = request(served, "GET", f"/pipelines/{PIPELINE}")
    assert status == 200
    # Then every step is a box with its status, linked to its run when it has one
    drawn = boxes(html)
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert {name: (s, link) for name, (s, link, _) in drawn.items()} == {
        "prepare": ("SUCCEEDED", f"{PIPELINE}.prepare"),
        "analyze": ("FAILED", f"{PIPELINE}.analyze"),
        escaped: ("SKIPPED", None), "side": ("SUCCEEDED", f"{PIPELINE}.side")}
    # And the status is written in each box, not only coloured
    assert re.search(r'<text class="state"[^>]*>FAILED</text><text class="progress"[^>]*>'
                     r'1/2 items succeeded</text>', html)
    assert re.search(r'<text class="state"[^>]*>SKIPPED</text>', html)
    # And the boxes stand in the columns of their waves, an arrow for each need
    column = {name: x for name, (_, _, x) in drawn.items()}
    assert column["prepare"] == column["side"] < column["analyze"] < column[escaped]
    edges = re.findall(r'<path class="edge( held)?" data-from="([^"]*)" data-to="([^"]*)"',
                       html)
    assert sorted(edges) == [("", "prepare", "analyze"), (" held", "analyze", escaped)]
    # And the skipped step's reason is said in words, with the pipeline's facts
    row = re.search(rf'<tr data-step="{re.escape(escaped)}" data-status="SKIPPED">(.*?)</tr>',
                    html, re.S)
    assert row and "needs analyze (FAILED), which did not succeed" in row.group(1)
    assert 'id="pipeline-status">FAILED<' in html
    assert "2026-12-05 07:00:00" in html and "2026-12-05 07:00:40" in html
    assert "40.0 s" in html
    # And an operator (anyone, locally) is offered both reruns
    assert 'id="rerun-failed"' in html and 'id="rerun-all"' in html


def test_the_pipelines_page_lists_each_run_and_a_dead_process_ends_its_run_aborted(
        served: Any) -> None:
    status, _, html = request(served, "GET", "/pipelines")
    assert status == 200
    rows = dict(re.findall(r'data-pipeline-run-id="([^"]+)" data-status="([A-Z_]+)"', html))
    # Then the newest first; the run whose process is gone is ABORTED, not RUNNING forever
    assert rows == {RUNNING: "RUNNING", PIPELINE: "FAILED", KILLED: "ABORTED"}
    assert list(rows) == [RUNNING, PIPELINE, KILLED]
    assert "2 of 4 steps succeeded" in html
    _, _, text = request(served, "GET", f"/api/pipelines/{KILLED}")
    assert json.loads(text)["reason"] == \
        "the local process running it ended before the pipeline did"
    # And a running pipeline's page offers no rerun, and follows it live
    _, _, html = request(served, "GET", f"/pipelines/{RUNNING}")
    assert 'id="rerun-all"' not in html and 'data-live="1"' in html


def test_a_step_named_with_html_is_text_on_every_page(served: Any) -> None:
    for path in ("/pipelines", f"/pipelines/{PIPELINE}"):
        status, _, html = request(served, "GET", path)
        assert status == 200 and XSS not in html, path
    _, _, html = request(served, "GET", f"/pipelines/{PIPELINE}")
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # The JSON says it as it is (JSON, not HTML)
    _, headers, text = request(served, "GET", f"/api/pipelines/{PIPELINE}")
    assert headers["content-type"] == "application/json"
    assert XSS in json.loads(text)["steps"]


def test_a_steps_run_page_links_back_to_its_pipeline_run(served: Any) -> None:
    _, _, html = request(served, "GET", f"/runs/{PIPELINE}.analyze")
    assert f'step analyze of <a id="pipeline-run" href="/pipelines/{PIPELINE}">' in html


def test_a_pipeline_rerun_without_the_csrf_token_is_refused(served: Any,
                                                           records: Path) -> None:
    before = sorted(p.name for p in records.iterdir())
    for path in (f"/pipelines/{PIPELINE}/rerun", f"/api/pipelines/{PIPELINE}/rerun"):
        for headers, body in [(FORM, b"select=failed"),
                              ({"Content-Type": "application/json",
                                "X-CSRF-Token": "wrong"}, b'{"select": "all"}')]:
            status, _, _ = request(served, "POST", path, body, headers)
            assert status == 403, (path, headers)
    # And nothing was started
    assert sorted(p.name for p in records.iterdir()) == before


def test_a_foreign_host_is_refused_on_the_pipeline_pages(served: Any) -> None:
    for path in ("/pipelines", f"/pipelines/{PIPELINE}", "/api/pipelines"):
        status, _, _ = request(served, "GET", path, headers={"Host": "evil.example"})
        assert status == 403, path


def test_a_rerun_that_cannot_be_is_refused_with_why(served: Any, records: Path) -> None:
    token = served.guard.csrf_token
    # When a pipeline run still running is rerun, Then 409, nothing started
    status, _, text = request(served, "POST", f"/api/pipelines/{RUNNING}/rerun",
                              b'{"select": "failed"}',
                              {"Content-Type": "application/json", "X-CSRF-Token": token})
    assert status == 409 and json.loads(text)["error"] == \
        f"pipeline run {RUNNING} is still running"
    # When `fanout rerun` refuses it (its spec has a step name no pipeline may have), Then
    # the command's own line, and no pipeline run was made
    status, _, text = request(served, "POST", f"/api/pipelines/{PIPELINE}/rerun",
                              b'{"select": "all"}',
                              {"Content-Type": "application/json", "X-CSRF-Token": token})
    assert status == 409, text
    assert json.loads(text)["error"] == \
        f"fanout: invalid pipeline spec: steps.{XSS}: {XSS!r} is not a step name: give 1 " \
        "to 24 letters, digits, '-' or '_', starting with a letter or digit"
    # (said as text on the page a form's POST gets)
    status, _, html = request(served, "POST", f"/pipelines/{PIPELINE}/rerun",
                              f"csrf_token={token}&select=all".encode(), FORM)
    assert status == 409 and "is not a step name" in html and XSS not in html
    assert not [p for p in records.iterdir()
                if (p / "pipeline.json").is_file() and p.name.startswith("seeded-")
                and p.name not in (PIPELINE, RUNNING, KILLED)]
    status, _, _ = request(served, "POST", f"/pipelines/{PIPELINE}/rerun",
                           f"csrf_token={token}&select=some".encode(), FORM)
    assert status == 400


def test_an_items_outputs_download_and_a_path_out_of_its_folder_is_refused(
        served: Any, records: Path) -> None:
    run_id = f"{PIPELINE}.prepare"
    # Given the item's page, When a listed output's link is followed
    _, _, html = request(served, "GET", f"/runs/{run_id}/items/0")
    links = re.findall(r'<a class="download" href="([^"]+)" download>', html)
    assert links == [f"/runs/{run_id}/items/0/outputs/result.json",
                     f"/runs/{run_id}/items/0/outputs/sub/plot.txt"]
    status, headers, body = request(served, "GET", links[1])
    # Then the file comes as a download, never rendered in the dashboard's origin
    assert status == 200 and body == "plot " * 100
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment")
    assert headers["x-content-type-options"] == "nosniff"
    # When a path leads out of the item's folder (.., encoded, absolute, a link), Then 404
    outside = records / run_id / "outputs" / "0" / "link"
    outside.symlink_to(records / PIPELINE / "pipeline.json")
    for key in ("../1/result.json", "..%2F..%2F..%2F" + PIPELINE + "%2Fpipeline.json",
                "%2Fetc%2Fpasswd", "link", "sub", "missing.txt"):
        status, _, body = request(served, "GET", f"/runs/{run_id}/items/0/outputs/{key}")
        assert status == 404 and '"steps"' not in body, key


def test_without_a_source_of_pipeline_runs_the_pages_say_so() -> None:
    # Given a source that lists no pipeline runs (a stack's, today) and a step's run in it
    source = source_with(3)
    source.runs["analyzer-1"]["spec"]["pipeline_run"] = {"run_id": "p-1", "step": "a"}
    with serve(source) as s:
        # Then the pipelines page says they are not listed here, and links nowhere broken
        status, _, html = request(s, "GET", "/pipelines")
        assert status == 200 and "not listed here" in html
        status, _, text = request(s, "GET", "/api/pipelines")
        assert status == 404 and "not listed here" in json.loads(text)["error"]
        status, _, _ = request(s, "GET", "/pipelines/p-1")
        assert status == 404
        _, _, html = request(s, "GET", "/runs/analyzer-1")
        assert "step a of p-1" in html and 'href="/pipelines/p-1"' not in html
        # And an item's outputs (on S3 here) offer no download link
        _, _, html = request(s, "GET", "/runs/analyzer-1/items/0")
        assert 'class="download"' not in html


def test_step_columns_are_the_waves_even_from_a_damaged_record() -> None:
    # A diamond: b and c after a, d after both
    assert step_columns({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}) == \
        [["a"], ["b", "c"], ["d"]]
    # A need on a step the record lacks is left out; a loop is cut, not followed forever
    assert step_columns({"a": ["gone"], "b": ["a"]}) == [["a"], ["b"]]
    columns = step_columns({"a": ["b"], "b": ["a"]})
    assert sorted(s for column in columns for s in column) == ["a", "b"]


def test_a_damaged_pipeline_record_still_renders(tmp_path: Path) -> None:
    from fanout.ui.local_runs import open_local

    # Given a record with a step that is no object and needs that are no list
    record = pipeline_record("damaged", "FAILED", {
        "a": "oops", "b": {**step("FAILED", None, []), "needs": "a"},
        "c": step("SKIPPED", None, ["b", 7, "gone"], "needs b")})
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "pipeline.json").write_text(json.dumps(record))
    with serve(open_local(tmp_path, CONFIG)) as s:
        # When its page is opened / Then the steps it can read are drawn, b before c
        status, _, html = request(s, "GET", "/pipelines/damaged")
        assert status == 200
        drawn = boxes(html)
        assert set(drawn) == {"b", "c"} and drawn["b"][2] < drawn["c"][2]
