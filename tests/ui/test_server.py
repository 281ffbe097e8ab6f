"""The dashboard's server over runs in memory: routes, JSON shapes and security (no browser)."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanout.ui.render import filter_items, grid, preview
from fanout.ui.timeline import timeline
from tests.ui.conftest import CONFIG, ROOT, serve, wait_for
from tests.ui.memory import source_with

XSS = "<img src=x onerror=alert(1)>"


def request(served: Any, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(served.host, served.port, timeout=20)
    all_headers = {"Host": f"{served.host}:{served.port}", **(headers or {})}
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


POSTS = ["/runs", "/runs/analyzer-1/stop", "/runs/analyzer-1/rerun", "/api/expand",
         "/api/runs", "/api/runs/analyzer-1/stop", "/api/runs/analyzer-1/rerun"]


@pytest.fixture(scope="module")
def served() -> Any:
    with serve(source_with(30, params={"note": XSS})) as s:
        yield s


def test_every_post_without_the_csrf_token_is_refused(served: Any) -> None:
    # Given every state-changing route; When each is posted without the token, a wrong
    # token, or the token of the form in the wrong place
    for path in POSTS:
        for headers, body in [
            ({"Content-Type": "application/x-www-form-urlencoded"}, b"select=failed"),
            ({"Content-Type": "application/json", "X-CSRF-Token": "wrong"}, b"{}"),
            ({"Content-Type": "application/json"}, b'{"csrf_token": "nope"}'),
        ]:
            status, _, _ = request(served, "POST", path, body, headers)
            # Then 403, and nothing was done
            assert status == 403, (path, headers)
    assert served.source.stopped == [] and served.source.reruns == []
    assert served.source.started == []


def test_a_post_with_the_token_acts(served: Any) -> None:
    token = served.guard.csrf_token
    status, headers, _ = request(
        served, "POST", "/runs/analyzer-1/rerun",
        f"csrf_token={token}&select=failed".encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["location"].startswith("/runs/analyzer-1-rerun-")
    assert served.source.reruns[-1] == ("analyzer-1", True, None)
    status, _, text = request(served, "POST", "/api/runs/analyzer-1/rerun",
                              json.dumps({"indexes": [3, 1]}).encode(),
                              {"Content-Type": "application/json", "X-CSRF-Token": token})
    assert status == 200 and json.loads(text)["parent_run_id"] == "analyzer-1"
    assert served.source.reruns[-1] == ("analyzer-1", True, [1, 3])


def test_a_foreign_host_is_refused(served: Any) -> None:
    for host in ("evil.example", f"evil.example:{served.port}", "127.0.0.1:1", ""):
        status, _, _ = request(served, "GET", "/", headers={"Host": host})
        assert status == 403, host
    status, _, _ = request(served, "GET", "/", headers={"Host": f"localhost:{served.port}"})
    assert status == 200


def test_values_from_a_spec_are_escaped_in_every_page(served: Any) -> None:
    for path in ("/", "/runs/analyzer-1", "/runs/analyzer-1/items/1",
                 "/runs/analyzer-1/timeline.svg", "/runs/analyzer-1?param=note"):
        status, _, text = request(served, "GET", path)
        assert status == 200, path
        assert XSS not in text, path
    _, _, text = request(served, "GET", "/runs/analyzer-1/items/1")
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "result-&lt;img src=x onerror=alert(1)&gt;.json" in text  # an output's key


def test_an_items_page_lists_what_it_wrote(served: Any) -> None:
    # Given item 0 ended having written three outputs, two of them kept on its record
    _, _, text = request(served, "GET", "/runs/analyzer-1/items/0")
    # Then its page says where it wrote, lists the keys and sizes, and how many more
    assert '<code id="output-location">s3://manifests/runs/analyzer-1/outputs/0/</code>' in text
    rows = re.findall(r'<tr class="output"><td><code>([^<]*)</code></td><td>([^<]*)</td>', text)
    assert [key for key, _ in rows] == ["result-&lt;img src=x onerror=alert(1)&gt;.json",
                                        "plot.png"]
    assert rows[1][1] == "2.0 KB"
    assert "and 1 more" in text and "fanout outputs analyzer-1 0" in text


def test_json_api_has_the_contract_shapes(served: Any) -> None:
    _, _, text = request(served, "GET", "/api/runs")
    runs = json.loads(text)
    assert [r["run_id"] for r in runs] == ["analyzer-1"]
    assert set(runs[0]) >= {"run_id", "job", "status", "trigger", "started_at", "finished_at",
                            "duration_seconds", "total", "counts", "parent_run_id", "reason",
                            "cost", "console_url", "spec"}
    _, _, text = request(served, "GET", "/api/runs/analyzer-1/items?status=FAILED")
    items = json.loads(text)
    assert items and all(i["status"] == "FAILED" for i in items)
    assert "attempts" not in items[0] and items[0]["attempt_count"] >= 1
    _, _, text = request(served, "GET", "/api/runs/analyzer-1/items/4")
    detail = json.loads(text)
    assert detail["index"] == 4 and detail["attempts"][0]["attempt"] == 1
    status, _, _ = request(served, "GET", "/api/runs/nope")
    assert status == 404


def test_an_access_token_is_needed_beyond_loopback() -> None:
    # Given a server bound to every address (what --host 0.0.0.0 does)
    with serve(source_with(3), host="0.0.0.0") as s:
        assert s.guard.access_token
        host = {"Host": f"0.0.0.0:{s.port}"}
        # When a request has no token, Then it is refused
        status, _, _ = request(s, "GET", "/", headers=host)
        assert status == 403
        status, _, _ = request(s, "GET", "/?token=wrong", headers=host)
        assert status == 403
        # When it has the token, Then it is served and a cookie carries the token on
        status, headers, _ = request(s, "GET", f"/?token={s.guard.access_token}", headers=host)
        assert status == 200
        cookie = headers["set-cookie"].split(";")[0]
        status, _, _ = request(s, "GET", "/runs/analyzer-1", headers={**host, "Cookie": cookie})
        assert status == 200


def test_fanout_ui_binds_loopback_by_default_and_prints_its_address(tmp_path: Any) -> None:
    # Given `fanout ui` started with its defaults (a free port)
    process = subprocess.Popen(
        [sys.executable, "-m", "fanout.cli", "ui", "--no-browser", "--records-dir",
         str(tmp_path), "--config", str(CONFIG)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        # Then it prints a loopback address with the port it chose
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        port = int(match.group(1))
        # And it listens on loopback only
        listening = wait_for(lambda: _listening_on(port), 20, "the server to listen")
        assert listening == {"127.0.0.1"}, listening
    finally:
        process.terminate()
        process.wait(timeout=20)


def _listening_on(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add("::" if set(address) == {"0"} else address)
    return found


def test_grid_has_one_cell_per_item_with_index_and_status() -> None:
    source = source_with(100)
    items = source.list_items("analyzer-1")
    html = str(grid("analyzer-1", items))
    cells = re.findall(r'data-index="(\d+)" data-status="([A-Z_]+)"', html)
    assert [(int(i), s) for i, s in cells] == [(i["index"], i["status"]) for i in items]


def test_filters_by_state_and_by_parameter() -> None:
    items = source_with(30, params={"region": "eu"}).list_items("analyzer-1")
    assert {i["status"] for i in filter_items(items, "FAILED", "")} == {"FAILED"}
    assert [i["index"] for i in filter_items(items, None, "n=7")] == [7]
    assert len(filter_items(items, None, "eu")) == 30
    assert filter_items(items, "SUCCEEDED", "n=7") == []


def test_timeline_draws_waits_and_packs_attempts_into_lanes() -> None:
    source = source_with(40)
    details = [source.get_item("analyzer-1", i) for i in range(40)]
    svg = timeline([d for d in details if d])
    # Ten at a time, so ten lanes; every attempt has a wait before it
    assert 'data-lanes="10"' in svg
    assert svg.count('class="wait"') == 40
    assert 'class="ok"' in svg and 'class="fail"' in svg and 'class="timeout"' in svg


def test_preview_is_fanout_expand() -> None:
    good = preview(json.dumps({"job": "analyzer", "params": {
        "year": {"range": {"start": 1999, "stop": 2020}}}}), CONFIG, 5)
    assert good["count"] == 21 and len(good["items"]) == 5
    assert good["items"][0]["command"] == ["-y", "1999"]
    bad = preview(json.dumps({"job": "nope", "params": {"year": {"range": {"start": 3}}}}),
                  CONFIG, 5)
    fields = {p["field"] for p in bad["problems"]}
    assert "job" in fields and any(f.startswith("params.year") for f in fields), fields
    broken = preview("{", CONFIG, 5)
    assert broken["problems"][0]["field"] == "spec"


def test_stopping_a_local_run_that_has_ended_is_refused_with_why(tmp_path: Path) -> None:
    from fanout.local.records import write_records
    from fanout.records.model import RunRecord
    from fanout.records.views import run_view
    from fanout.ui.local_runs import open_local

    # Given a local run that has ended
    run = RunRecord(run_id="prog-done", job="prog", status="SUCCEEDED",
                    started_at="2026-11-30T01:00:00Z", finished_at="2026-11-30T01:00:05Z")
    write_records(tmp_path / "prog-done", run_view(run), [], settings={})
    with serve(open_local(tmp_path, CONFIG)) as served:
        # When it is stopped from the dashboard
        status, _, text = request(served, "POST", "/api/runs/prog-done/stop", b"{}",
                                  {"Content-Type": "application/json",
                                   "X-CSRF-Token": served.guard.csrf_token})
        # Then it is refused, saying why; nothing changed
        assert status == 409, text
        assert json.loads(text)["error"] == \
            "run prog-done has already ended: there is nothing to stop"
        assert served.source.get_run("prog-done")["status"] == "SUCCEEDED"
