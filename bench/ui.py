"""Benchmark: the dashboard on a 10,000-item run and on 1,000 runs.

Writes records folders in the format ``fanout local`` leaves (docs/local-records.md) — one
run of 10,000 items (mixed states, some retried) and 1,000 runs of 10 items — serves them
with ``fanout ui``'s app on loopback, and measures:

- the run page of the 10,000-item run: server time (request sent -> last byte received),
  first request (records parsed) and then the median of repeated requests;
- the grid visible in Chromium: navigation start -> every cell in the DOM and painted
  (the next animation frame), median of a few loads;
- the runs page over 1,000 runs: server time, first and median;
- the deployed dashboard (not with --quick): the same 10,000-item run page served by the
  dashboard's Lambda handler (HTTP API events through ``fanout.ui.lambda_adapter``, sign-in
  checked) reading the records from the emulated store (moto's DynamoDB, in process):
  the first request in a fresh container, then the median of repeated requests.

    .venv/bin/python bench/ui.py [--quick]     # quick: 1,000 items, 100 runs, no target check
    .venv/bin/python bench/ui.py --deployed-only   # the deployed run page alone
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from _figures import reference_ms  # noqa: E402
from _local import machine, write_out  # noqa: E402

TARGET_RUN_PAGE_MS = 300.0
TARGET_GRID_MS = 1500.0
TARGET_RUNS_PAGE_MS = 300.0
#: The deployed run page of 10,000 items, served by the Lambda handler (issue 26).
TARGET_DEPLOYED_MS = 1000.0
T0 = 1_795_000_000.0


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int(seconds * 1000) % 1000:03d}Z"


def write_run(folder: Path, run_id: str, items: int, started: float) -> None:
    """A finished run's records as ``fanout local`` writes them (docs/local-records.md):
    mixed states, some items retried."""
    from fanout.local.records import write_records
    from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
    from fanout.records.views import item_detail, run_view

    (folder / "logs").mkdir(parents=True)
    details = []
    counts = {"SUCCEEDED": 0, "FAILED": 0, "TIMED_OUT": 0, "ABORTED": 0}
    for index in range(items):
        status = "FAILED" if index % 97 == 5 else "TIMED_OUT" if index % 211 == 7 \
            else "SUCCEEDED"
        tries = 2 if status != "SUCCEEDED" or index % 53 == 3 else 1
        counts[status] += 1
        begin = started + (index // 50) * 2.0
        attempts = []
        for n in range(1, tries + 1):
            outcome = status if n == tries else "RETRY"
            task = f"{index:08x}{n:024x}"
            attempts.append(AttemptRecord(
                run_id=run_id, index=index, attempt=n, client_token=task, task_token="",
                status=outcome, created_at=_iso(begin), started_at=_iso(begin + 0.4),
                stopped_at=_iso(begin + 1.6), duration_seconds=1.2,
                exit_code=0 if outcome == "SUCCEEDED" else 1,
                stop_code="EssentialContainerExited",
                stopped_reason="Essential container in task exited",
                stop_class="succeeded" if outcome == "SUCCEEDED" else "timeout"
                if outcome == "TIMED_OUT" else "exit_nonzero",
                log_stream=f"fanout/quick/{task}",
                task_arn=f"arn:aws:ecs:us-east-1:123456789012:task/Fanout-Jobs/{task}"))
            begin += 2.0
        item = ItemRecord(run_id=run_id, index=index, status=status,  # type: ignore[arg-type]
                          params={"n": index, "region": "eu"}, command=["-y", str(index)],
                          attempts=tries, exit_code=0 if status == "SUCCEEDED" else 1)
        details.append(item_detail(item, attempts))
    finished = started + (items // 50) * 2.0 + 8
    run = RunRecord(run_id=run_id, job="quick", status="FAILED" if items > 10 else "SUCCEEDED",
                    started_at=_iso(started), finished_at=_iso(finished), total=items,
                    trigger="local", counts=counts)
    spec = {"job": "quick", "params": {"n": {"range": {"start": 0, "stop": items}},
                                       "region": ["eu"]}}
    write_records(folder, run_view(run, spec=spec), details, settings={})


def timed_get(host: str, port: int, path: str) -> tuple[float, int, int]:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Host": f"{host}:{port}"})
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return elapsed, response.status, len(body)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-browser", action="store_true",
                        help="the server's times only (what make test re-runs: tests/bench)")
    parser.add_argument("--deployed-only", action="store_true",
                        help="only the deployed run page (the Lambda handler over moto)")
    args = parser.parse_args()
    if args.deployed_only:
        return deployed_main()
    items, runs = (1000, 100) if args.quick else (10_000, 1000)
    from fanout.ui.local_runs import open_local
    from fanout.ui.server import Background

    work = Path(tempfile.mkdtemp(prefix="fanout-bench-ui-"))
    try:
        big = work / "big" / "runs"
        write_run(big / "quick-big", "quick-big", items, T0)
        many = work / "many" / "runs"
        for n in range(runs):
            write_run(many / f"quick-{n:05d}", f"quick-{n:05d}", 10, T0 + 60 * n)
        result: dict[str, Any] = {"quick": args.quick, "items": items, "runs": runs,
                                  "command": "bench/ui.py" + (" --quick" if args.quick else "")
                                  + (" --no-browser" if args.no_browser else "")}
        before = reference_ms()
        with Background(open_local(big, REPO / "cdk.json"), REPO / "cdk.json") as server:
            first, status, size = timed_get(server.host, server.port, "/runs/quick-big")
            assert status == 200, status
            warm = [timed_get(server.host, server.port, "/runs/quick-big")[0] for _ in range(10)]
            result["run_page"] = {"first_ms": round(first, 1),
                                  "median_ms": round(statistics.median(warm), 1),
                                  "bytes": size}
            result["grid_ms"] = None if args.no_browser else grid_in_chromium(
                server.url + "/runs/quick-big", items)
        with Background(open_local(many, REPO / "cdk.json"), REPO / "cdk.json") as server:
            first, status, size = timed_get(server.host, server.port, "/")
            assert status == 200, status
            warm = [timed_get(server.host, server.port, "/")[0] for _ in range(10)]
            result["runs_page"] = {"first_ms": round(first, 1),
                                   "median_ms": round(statistics.median(warm), 1),
                                   "bytes": size}
        result["reference_ms"] = round(max(before, reference_ms()), 2)
        for page in ("run_page", "runs_page"):
            result[page]["per_reference"] = round(
                result[page]["median_ms"] / result["reference_ms"], 4)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    grid = result["grid_ms"]
    result["targets"] = {"run_page_ms": TARGET_RUN_PAGE_MS, "grid_ms": TARGET_GRID_MS,
                         "runs_page_ms": TARGET_RUNS_PAGE_MS}
    result["met"] = {
        "run_page": result["run_page"]["median_ms"] <= TARGET_RUN_PAGE_MS,
        "grid": grid is not None and grid["median_ms"] <= TARGET_GRID_MS,
        "runs_page": result["runs_page"]["median_ms"] <= TARGET_RUNS_PAGE_MS,
    }
    result["machine"] = machine()
    # The machine is shared: its load when measured says how far the figures are from idle.
    result["load_average"] = [round(x, 1) for x in os.getloadavg()]
    path = write_out("ui_quick" if args.quick else "ui", result)
    _document(result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"wrote {path}")
    return 0 if args.quick or all(result["met"].values()) else 1


def _document(result: dict[str, Any]) -> None:
    """The figures into docs/benchmarks.json (``_quick``: 1,000 items and 100 runs)."""
    from _figures import figure, record

    suffix = "_quick" if result["quick"] else ""
    size = f"{result['items']:,} items"
    figures = {
        f"ui_run_page_ms{suffix}": figure(
            result["run_page"]["median_ms"], "ms", better="lower",
            target=TARGET_RUN_PAGE_MS, command=result["command"],
            what=f"dashboard run page of {size}, server time (median)"),
        f"ui_runs_page_ms{suffix}": figure(
            result["runs_page"]["median_ms"], "ms", better="lower",
            target=TARGET_RUNS_PAGE_MS, command=result["command"],
            what=f"dashboard runs page of {result['runs']:,} runs, server time (median)"),
    }
    for page, what in (("run_page", f"run page of {size}"),
                       ("runs_page", f"runs page of {result['runs']:,} runs")):
        if result["quick"]:  # what make test checks: over a reference timed beside it
            figures[f"ui_{page}_quick_per_reference"] = figure(
                result[page]["per_reference"],
                "x the reference workload", better="lower", command=result["command"],
                what=f"dashboard {what}, server time (median) over the time of a fixed "
                     f"pure-Python workload measured beside it ({result['reference_ms']} ms)")
    if result["grid_ms"] is not None:
        figures[f"ui_grid_ms{suffix}"] = figure(
            result["grid_ms"]["median_ms"], "ms", better="lower", target=TARGET_GRID_MS,
            command=result["command"], what=f"dashboard grid of {size} visible in Chromium")
    record(figures, result["machine"])


def grid_in_chromium(url: str, items: int, loads: int = 5) -> dict[str, Any] | None:
    """Navigation start -> every cell in the DOM and painted, in Debian's Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no Chromium: the grid time is not measured", file=sys.stderr)
        return None
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for _ in range(loads):
            page.goto("about:blank")  # from a small page, as from the runs page
            page.goto(url, wait_until="commit")
            page.wait_for_function(
                f"document.querySelectorAll('#grid a[data-index]').length === {items}")
            times.append(page.evaluate(
                "new Promise(r => requestAnimationFrame(() => r(performance.now())))"))
        browser.close()
    return {"first_ms": round(times[0], 1), "median_ms": round(statistics.median(times), 1)}


def deployed_run_page(items: int, repeats: int = 10) -> dict[str, Any]:
    """The run page of ``items`` items served by the dashboard's handler over moto."""
    from moto import mock_aws

    from fanout.testing.dashboard import EmulatedStack, TestIssuer, http_event
    from fanout.ui.lambda_adapter import handle

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    with mock_aws(), tempfile.TemporaryDirectory() as folder:
        stack = EmulatedStack(Path(folder))
        stack.add_run("analyzer-big", items)
        issuer = TestIssuer()
        app = stack.app(issuer)  # a fresh container: nothing cached
        event = http_event("GET", "/runs/analyzer-big",
                           cookies=[f"fanout_session={issuer.token(['viewers'])}"])

        def timed() -> tuple[float, dict[str, Any]]:
            started = time.perf_counter()
            answer = handle(app, event)
            return (time.perf_counter() - started) * 1000, answer

        first, answer = timed()
        assert answer["statusCode"] == 200, answer["statusCode"]
        cells = answer["body"].count("data-index=")
        assert cells == items, cells
        warm = [timed()[0] for _ in range(repeats)]
    return {"items": items, "first_ms": round(first, 1),
            "median_ms": round(statistics.median(warm), 1), "bytes": len(answer["body"])}


def deployed_main() -> int:
    before = reference_ms()
    page = deployed_run_page(10_000)
    result = {"deployed_run_page": page, "reference_ms": round(max(before, reference_ms()), 2),
              "machine": machine(), "load_average": [round(x, 1) for x in os.getloadavg()],
              "command": "bench/ui.py --deployed-only"}
    _document_deployed(result)
    write_out("ui_deployed", result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0 if page["median_ms"] <= TARGET_DEPLOYED_MS else 1


def _document_deployed(result: dict[str, Any]) -> None:
    from _figures import figure, record

    page = result["deployed_run_page"]
    what = (f"deployed dashboard run page of {page['items']:,} items, served by the Lambda "
            "handler over the emulated store")
    record({
        "ui_deployed_run_page_ms": figure(
            page["median_ms"], "ms", better="lower", target=TARGET_DEPLOYED_MS,
            command=result["command"], what=what + " (median, warm container)"),
        "ui_deployed_run_page_first_ms": figure(
            page["first_ms"], "ms", better="lower", command=result["command"],
            what=what + " (first request of a container: records read from the store)"),
    }, result["machine"])


if __name__ == "__main__":
    sys.exit(main())
