"""The dashboard's tests: a real server on loopback, real local runs, a real Chromium.

The local runs (the seed's 21 years, a run with failing, timed-out and retried items, a
200-item run) are made once per session by ``fanout local``, all three at once (the grid at
10,000 items is bench/ui.py's, from written records: a larger local run here showed
nothing more and cost the suite minutes). A tiny real pipeline run (three steps) is made
in a folder of its own by ``fanout local`` too. Every test of this folder is in one xdist
group, so one worker builds them.

Chromium is Debian's ``chromium`` (``make test`` installs it); without it the browser tests
skip with a one-line reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONFIG = HERE / "cdk.json"
SPECS = HERE / "specs"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.xdist_group("ui"))


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


# --- a server --------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    host: str
    port: int
    guard: Any
    source: Any


@contextmanager
def serve(source: Any, host: str = "127.0.0.1", config: Path = CONFIG) -> Iterator[Served]:
    """The dashboard over ``source``, served by uvicorn in a thread, as ``fanout ui`` does."""
    from fanout.ui.server import Background

    with Background(source, config, host) as server:
        yield Served(server.url, host, server.port, server.guard, source)


# --- local runs ------------------------------------------------------------------------


@dataclass
class SeededRuns:
    """The local runs the browser tests read (not :class:`fanout.runs.local.LocalRuns`)."""

    records_dir: Path
    years: str
    mixed: str
    big: str

    def summary(self, run_id: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(
            (self.records_dir / run_id / "summary.json").read_text())
        return loaded


def _fanout_local(spec: Path, records_dir: Path, run_id: str) -> subprocess.Popen[bytes]:
    # Its output goes to a file: a full pipe would stall the run until it is read.
    with open(records_dir.parent / f"{run_id}.stderr", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "fanout.cli", "local", str(spec), "--config", str(CONFIG),
             "--records-dir", str(records_dir), "--run-id", run_id, "--json"],
            cwd=HERE, stdout=subprocess.DEVNULL, stderr=err,
        )


@pytest.fixture(scope="session")
def local_runs(tmp_path_factory: pytest.TempPathFactory) -> SeededRuns:
    """Three real local runs, made once: years (21), mixed outcomes, 200 items."""
    from fanout.config import load_config_file
    from fanout.local.synth import synthesize

    synthesize(CONFIG, load_config_file(CONFIG).stack_name)
    records = tmp_path_factory.mktemp("ui") / ".fanout" / "runs"
    records.mkdir(parents=True)
    runs = SeededRuns(records, years="analyzer-years", mixed="prog-mixed", big="quick-200")
    specs = {runs.years: ROOT / "examples" / "specs" / "years.json",
             runs.mixed: SPECS / "mixed.json", runs.big: SPECS / "big.json"}
    processes = {run_id: _fanout_local(spec, records, run_id) for run_id, spec in specs.items()}
    for run_id, process in processes.items():
        process.wait(timeout=900)
        err = (records.parent / f"{run_id}.stderr").read_text(errors="replace")
        assert (records / run_id / "records.jsonl").is_file(), \
            f"{run_id}: no records (exit {process.returncode}): {err[-2000:]}"
    return runs


@dataclass
class SeededPipeline:
    """A local pipeline run: prepare SUCCEEDED, analyze FAILED (one of its two items exits
    3), report SKIPPED (it needs both)."""

    records_dir: Path
    run_id: str


@pytest.fixture(scope="session")
def local_pipeline(tmp_path_factory: pytest.TempPathFactory) -> SeededPipeline:
    """A real ``fanout local specs/pipeline.json``, made once, in a records folder of its own
    (the runs page tests count the runs of theirs)."""
    from fanout.config import load_config_file
    from fanout.local.synth import synthesize

    synthesize(CONFIG, load_config_file(CONFIG).stack_name)
    records = tmp_path_factory.mktemp("pipeline") / ".fanout" / "runs"
    records.mkdir(parents=True)
    seeded = SeededPipeline(records, "tiny-seeded")
    process = _fanout_local(SPECS / "pipeline.json", records, seeded.run_id)
    process.wait(timeout=600)
    err = (records.parent / f"{seeded.run_id}.stderr").read_text(errors="replace")
    assert (records / seeded.run_id / "pipeline.json").is_file(), \
        f"no pipeline record (exit {process.returncode}): {err[-2000:]}"
    return seeded


@pytest.fixture(scope="session")
def local_server(local_runs: SeededRuns) -> Iterator[Served]:
    from fanout.ui.local_runs import open_local

    with serve(open_local(local_runs.records_dir, CONFIG)) as served:
        yield served


# --- a browser -------------------------------------------------------------------------


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Chromium in CI: `make test` installs Debian's chromium")
        pytest.skip("no Chromium found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; any JavaScript dialog (an injected alert) fails the test."""
    context = browser.new_context()
    opened = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()

    opened.on("dialog", on_dialog)
    opened.dialogs = dialogs
    yield opened
    context.close()
