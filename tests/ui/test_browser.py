"""The dashboard in Chromium over real local runs (made once per session by ``fanout local``)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import SeededPipeline, SeededRuns, Served, wait_for

pytestmark = pytest.mark.slow

#: A run page's live updates come every 2 s; a local run of a few items takes a while to start.
RUN_TIMEOUT = 240_000


def cells(page: Any) -> list[tuple[int, str]]:
    got: list[list[Any]] = page.eval_on_selector_all(
        "#grid a[data-index]",
        "els => els.map(e => [Number(e.dataset.index), e.dataset.status])")
    return [(int(i), str(s)) for i, s in got]


def no_alert(page: Any) -> None:
    assert [d for d in page.dialogs if "Stop this run" not in d] == []


def test_runs_page_lists_the_runs(page: Any, local_server: Served,
                                  local_runs: SeededRuns) -> None:
    page.goto(local_server.url + "/")
    ids = page.eval_on_selector_all("tr[data-run-id]", "els => els.map(e => e.dataset.runId)")
    assert {local_runs.years, local_runs.mixed, local_runs.big} <= set(ids)
    row = page.locator(f'tr[data-run-id="{local_runs.years}"]')
    assert row.get_attribute("data-status") == "SUCCEEDED"
    # Filter by job, and search by a parameter value that only the mixed run's spec holds
    page.select_option('select[name="job"]', "quick")
    page.click('form.filters button[type="submit"]')
    ids = page.eval_on_selector_all("tr[data-run-id]", "els => els.map(e => e.dataset.runId)")
    assert ids == [local_runs.big]
    page.goto(local_server.url + "/?q=fails+once")
    ids = page.eval_on_selector_all("tr[data-run-id]", "els => els.map(e => e.dataset.runId)")
    assert ids == [local_runs.mixed]


def test_run_page_has_one_cell_per_item_with_its_state(page: Any, local_server: Served,
                                                       local_runs: SeededRuns) -> None:
    for run_id, total in ((local_runs.years, 21), (local_runs.mixed, 6),
                          (local_runs.big, 200)):
        page.goto(f"{local_server.url}/runs/{run_id}")
        summary = {i["index"]: i["status"] for i in local_runs.summary(run_id)["items"]}
        assert len(summary) == total
        assert dict(cells(page)) == summary
    # The 21 years are 1999..2019; hovering shows the params
    page.goto(f"{local_server.url}/runs/{local_runs.years}")
    assert "year=2001" in (page.get_attribute('#grid a[data-index="2"]', "title") or "")
    page.wait_for_selector("#timeline svg rect.ok")


def test_mixed_outcomes_and_filters(page: Any, local_server: Served,
                                    local_runs: SeededRuns) -> None:
    page.goto(f"{local_server.url}/runs/{local_runs.mixed}")
    states = dict(cells(page))
    # Given the mixed run: exit 3 twice, retried then fine, timed out, exit 1
    assert states == {0: "SUCCEEDED", 1: "FAILED", 2: "SUCCEEDED", 3: "TIMED_OUT",
                      4: "FAILED", 5: "SUCCEEDED"}
    # When filtering by state, Then only those cells show
    page.select_option("#filter-status", "FAILED")
    page.click('form.filters button[type="submit"]')
    page.wait_for_url("**status=FAILED**")
    assert cells(page) == [(1, "FAILED"), (4, "FAILED")]
    # When filtering by a parameter value
    page.goto(f"{local_server.url}/runs/{local_runs.mixed}")
    page.fill("#filter-param", "fail=1")
    page.press("#filter-param", "Enter")
    page.wait_for_url("**param=fail**")
    assert cells(page) == [(2, "SUCCEEDED")]
    # The timeline shows the retried attempt and the timeout
    page.wait_for_selector("#timeline svg rect.retry")
    assert page.locator("#timeline svg rect.timeout").count() == 1


def test_item_page_shows_attempts_and_the_failures_last_log_line(
        page: Any, local_server: Served, local_runs: SeededRuns) -> None:
    page.goto(f"{local_server.url}/runs/{local_runs.mixed}")
    page.click('#grid a[data-index="1"]')
    page.wait_for_url("**/items/1")
    assert page.text_content("#item-status") == "FAILED"
    assert page.locator("#attempts tbody tr").count() == 2
    assert "exit code 3" in (page.text_content("#reason") or "")
    # The failing program's last log line, at the top
    assert (page.text_content("#log-tail") or "").strip().endswith("attempt 2: exit 3")
    assert page.text_content("#command") == \
        "--exit 3 --sleep 0 --fail-attempts 0 --say always exits 3"
    # Each attempt's log
    page.wait_for_function(
        "() => document.querySelector('details[open] pre.log').textContent.includes('exit 3')")
    page.goto(f"{local_server.url}/runs/{local_runs.mixed}/items/3")
    assert page.text_content("#item-status") == "TIMED_OUT"
    assert "timed out" in (page.text_content("#reason") or "")


def test_values_from_params_and_logs_render_as_text(page: Any, local_server: Served,
                                                     local_runs: SeededRuns) -> None:
    # Given items whose params and log lines are HTML
    for path in (f"/runs/{local_runs.mixed}", f"/runs/{local_runs.mixed}/items/4",
                 f"/runs/{local_runs.mixed}/items/5", "/?q=script"):
        page.goto(local_server.url + path)
        page.wait_for_load_state("networkidle")
        # Then no script of theirs ran, and no element came from them
        no_alert(page)
        assert page.locator("main img").count() == 0
        assert page.locator("main script").count() == 0
    page.goto(f"{local_server.url}/runs/{local_runs.mixed}/items/4")
    page.wait_for_function(
        "() => document.querySelector('details[open] pre.log').textContent.includes('says')")
    assert "says: <script>alert(1)</script>" in (page.text_content("details[open] pre.log")
                                                   or "")
    page.goto(f"{local_server.url}/runs/{local_runs.mixed}/items/5")
    assert page.text_content("#params") and \
        "<img src=x onerror=alert(1)>" in (page.text_content("#params") or "")
    no_alert(page)


def test_live_preview_names_a_bad_field_and_counts_a_good_spec(
        page: Any, local_server: Served) -> None:
    page.goto(local_server.url + "/new")
    # When a bad spec is typed, Then the preview names the field
    page.fill("#spec", json.dumps({"job": "analyzer",
                                   "params": {"year": {"range": {"start": 1999}}}}))
    page.wait_for_selector("#problems")
    assert "params.year" in (page.text_content("#problems") or "")
    # When it is corrected, Then the count and the first items show
    page.fill("#spec", json.dumps({"job": "analyzer",
                                   "params": {"year": {"range": {"start": 1999,
                                                                 "stop": 2020}}}}))
    page.wait_for_selector("#count")
    assert page.text_content("#count") == "21"
    assert "-y 1999" in (page.text_content("#preview table") or "")


def test_start_a_run_and_rerun_its_failed_items(page: Any, local_server: Served,
                                                local_runs: SeededRuns) -> None:
    # Given a spec of three items, one failing, started from the page
    spec = {"job": "prog", "items": [{"code": c, "sleep": 0, "fail": 0, "say": f"i{c}"}
                                     for c in (0, 2, 0)],
            "retry": {"max_attempts": 1}, "tolerated_failure_percent": 100}
    page.goto(local_server.url + "/new")
    page.fill("#spec", json.dumps(spec))
    page.wait_for_selector("#count")
    page.click("#start")
    page.wait_for_url("**/runs/prog-*")
    started = page.url.rsplit("/", 1)[1]
    # Then the run page follows it live, without a reload, to its end
    page.wait_for_function(
        "() => document.getElementById('run-status')?.textContent !== 'RUNNING'",
        timeout=RUN_TIMEOUT)
    # (its one failure tolerated: the run succeeds, the item failed)
    assert page.text_content("#run-status") == "SUCCEEDED"
    assert sorted(s for _, s in cells(page)) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    # When its failed items are rerun
    page.click("#rerun-failed")
    page.wait_for_url(lambda url: "/runs/" in url and not url.endswith(started))
    rerun = page.url.rsplit("/", 1)[1]
    page.wait_for_function(
        "() => document.getElementById('run-status')?.textContent !== 'RUNNING'",
        timeout=RUN_TIMEOUT)
    # Then the new run has just the failed item, linked to its parent
    assert cells(page) == [(0, "FAILED")]
    assert page.locator(f'dd a[href="/runs/{started}"]').count() == 1
    page.goto(local_server.url + "/")
    ids = page.eval_on_selector_all("tr[data-run-id]", "els => els.map(e => e.dataset.runId)")
    assert started in ids and rerun in ids
    no_alert(page)


def test_stopping_a_running_run_leaves_its_items_aborted(
        page: Any, local_server: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The program leaves a file as it starts (the run's process inherits this variable)
    monkeypatch.setenv("PROG_STARTED_DIR", str(tmp_path))
    spec = {"job": "prog", "items": [{"code": 0, "sleep": 120, "fail": 0, "say": str(n)}
                                     for n in range(3)], "max_concurrency": 3}
    page.goto(local_server.url + "/new")
    page.fill("#spec", json.dumps(spec))
    page.wait_for_selector("#count")
    page.click("#start")
    page.wait_for_url("**/runs/prog-*")
    run_id = page.url.rsplit("/", 1)[1]
    wait_for(lambda: len(list(tmp_path.glob(f"{run_id}-*"))) == 3, 240, "3 running tasks")
    # When the running run is stopped (and the confirmation accepted)
    with page.expect_navigation():
        page.click("#stop")
    # Then its page shows it ABORTED, every item ABORTED
    assert page.locator("#run-status").count() == 1, page.text_content("body")
    page.wait_for_function(
        "() => document.getElementById('run-status')?.textContent === 'ABORTED'",
        timeout=RUN_TIMEOUT)
    assert [s for _, s in cells(page)] == ["ABORTED"] * 3
    run = wait_for(lambda: local_server.source.get_run(run_id), 10, "the run")
    assert run["counts"]["ABORTED"] == 3


def test_a_running_runs_page_follows_its_items_without_a_reload(page: Any,
                                                                tmp_path: Path) -> None:
    from fanout.ui.local_runs import open_local
    from tests.ui.conftest import CONFIG, serve

    # Given a local run of five items, two at a time: four quick ones and one that runs
    # until it is stopped, started as the dashboard starts one
    source = open_local(tmp_path / ".fanout" / "runs", CONFIG)
    quick = {"code": 0, "sleep": 0, "fail": 0, "say": "quick"}
    spec = {"job": "prog", "max_concurrency": 2,
            "items": [{**quick, "sleep": 600, "say": "slow"}] + [quick] * 4}
    with serve(source) as served:
        run_id = source.start(spec)
        try:
            refreshes: list[float] = []
            page.on("request", lambda r: refreshes.append(time.monotonic())
                    if r.url.endswith(f"/runs/{run_id}") else None)
            # When its page is open while it runs
            page.goto(f"{served.url}/runs/{run_id}")
            page.evaluate("window.notReloaded = true")
            # Then the counts and the grid follow the items as they finish, with no reload
            page.wait_for_function(
                "() => document.querySelector('[data-count=SUCCEEDED]')?.textContent === '4'",
                timeout=RUN_TIMEOUT)
            assert page.evaluate("window.notReloaded") is True
            assert page.text_content("#run-status") == "RUNNING"
            assert cells(page) == [(0, "RUNNING")] + [(i, "SUCCEEDED") for i in range(1, 5)]
            gaps = sorted(b - a for a, b in itertools.pairwise(refreshes[1:]))
            assert gaps and gaps[len(gaps) // 2] <= 2.0, gaps  # asked again every second or so
        finally:
            source.stop(run_id)
        # And once the run has ended, the page shows how and stops asking
        page.wait_for_function(
            "() => document.getElementById('run-status')?.textContent === 'ABORTED'",
            timeout=RUN_TIMEOUT)
        page.wait_for_function("() => !document.getElementById('live').dataset.live")
        assert page.evaluate("window.notReloaded") is True
        no_alert(page)


def test_a_pipeline_run_shows_its_steps_links_to_their_runs_and_reruns_the_failed(
        page: Any, local_pipeline: SeededPipeline) -> None:
    from fanout.ui.local_runs import open_local
    from tests.ui.conftest import CONFIG, serve

    def steps() -> dict[str, str]:
        got: list[list[str]] = page.eval_on_selector_all(
            "#graph g.step", "els => els.map(e => [e.dataset.step, e.dataset.status])")
        return dict((str(name), str(status)) for name, status in got)

    first = local_pipeline.run_id
    with serve(open_local(local_pipeline.records_dir, CONFIG)) as served:
        # Given the pipeline run (prepare and analyze at once, report after both), opened
        # from the pipelines page
        page.goto(served.url + "/pipelines")
        page.click(f'tr[data-pipeline-run-id="{first}"] a')
        page.wait_for_url(f"**/pipelines/{first}")
        # Then each step shows its state, in words too; the step that could not run says why
        assert page.text_content("#pipeline-status") == "FAILED"
        assert steps() == {"prepare": "SUCCEEDED", "analyze": "FAILED", "report": "SKIPPED"}
        assert page.text_content('#graph g[data-step="analyze"] text.state') == "FAILED"
        assert page.text_content('#graph g[data-step="analyze"] text.progress') == \
            "1/2 items succeeded"
        assert "needs analyze (FAILED), which did not succeed" in (
            page.text_content('#steps tr[data-step="report"]') or "")
        # When the failed step's box is followed, Then it is its run, linked back
        page.click('#graph g[data-step="analyze"] a')
        page.wait_for_url(f"**/runs/{first}.analyze")
        assert cells(page) == [(0, "SUCCEEDED"), (1, "FAILED")]
        page.click("#pipeline-run")
        page.wait_for_url(f"**/pipelines/{first}")
        # When its failed steps are rerun
        page.click("#rerun-failed")
        page.wait_for_url(lambda url: "/pipelines/" in url and not url.endswith(first))
        rerun = page.url.rsplit("/", 1)[1]
        assert page.get_attribute("#parent", "href") == f"/pipelines/{first}"
        # Then the page follows the new pipeline run to its end, without a reload
        page.wait_for_function(
            "() => document.getElementById('pipeline-status')?.textContent !== 'RUNNING'",
            timeout=RUN_TIMEOUT)
        # prepare carried over (its run as it was), analyze's failed item run again (it
        # fails again), report skipped again
        assert steps() == {"prepare": "SUCCEEDED", "analyze": "FAILED", "report": "SKIPPED"}
        assert page.get_attribute('#steps tr[data-step="prepare"] a.step-run', "href") == \
            f"/runs/{first}.prepare"
        page.click('#graph g[data-step="analyze"] a')
        page.wait_for_url(f"**/runs/{rerun}.analyze")
        assert cells(page) == [(0, "FAILED")]
        assert page.locator(f'dd a[href="/runs/{first}.analyze"]').count() == 1
        no_alert(page)
