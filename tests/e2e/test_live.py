"""A local run read while it runs: ``fanout status|items|logs --local`` show it as it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanout.cli.exits import EXIT_INTERRUPTED, EXIT_RUN_FAILED
from tests.e2e.conftest import ROOT, fanout_command, records_dir, wait_for


def fanout(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fanout.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_status_during_a_local_run_shows_the_items_that_finished(
        e2e_stack: Path, tmp_path: Path) -> None:
    from fanout.runs.local import LocalRuns

    # Given a local run of five items, two at a time: four quick ones and one that runs
    # until it is stopped
    quick = {"code": 0, "sleep": 0, "fail": 0}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"job": "prog", "max_concurrency": 2,
                                "items": [{**quick, "sleep": 600}] + [quick] * 4}))
    records = records_dir(tmp_path)
    where = ("--local", "--records-dir", records, "--config", e2e_stack)
    with open(tmp_path / "stderr", "wb") as err:
        process = subprocess.Popen(
            fanout_command(spec, "--config", e2e_stack, "--records-dir", records,
                           "--run-id", "prog-live", "--json"),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    try:
        runs = LocalRuns(records)

        def four_done() -> bool:
            run = runs.get_run("prog-live")
            return bool(run and run["counts"]["SUCCEEDED"] == 4)

        # When the quick items have finished (the records say so while the run goes on)
        wait_for(four_done, 180, "four items succeeded, as the records file says")
        # Then `fanout status --local` shows them done, the fifth running, of five
        status = fanout("status", "prog-live", *where, "--json")
        assert status.returncode == 0, status.stderr
        run: dict[str, Any] = json.loads(status.stdout)
        assert (run["status"], run["total"], run["succeeded"], run["running"]) == (
            "RUNNING", 5, 4, 1), run
        # And `fanout items --local` lists every item as it is
        items = fanout("items", "prog-live", *where, "--json")
        assert [(i["index"], i["status"]) for i in json.loads(items.stdout)] == [
            (0, "RUNNING"), (1, "SUCCEEDED"), (2, "SUCCEEDED"), (3, "SUCCEEDED"),
            (4, "SUCCEEDED")]
        text = fanout("status", "prog-live", *where).stdout
        assert "RUNNING" in text and "succeeded  4" in text, text
        # And a finished item's log is there already
        logs = fanout("logs", "prog-live", "1", *where)
        assert logs.returncode == 0, logs.stderr
        assert "[attempt 1] attempt 1: exit 0" in logs.stdout, logs.stdout
        # When it is stopped, Then its last records replace the live ones
        stopped = fanout("stop", "prog-live", *where, "--wait")
        assert stopped.returncode == 0, stopped.stderr
        ended = runs.get_run("prog-live")
        assert ended is not None and ended["status"] == "ABORTED", ended
        assert ended["counts"]["SUCCEEDED"] == 4 and ended["counts"]["ABORTED"] == 1
    finally:
        try:
            process.wait(timeout=60)  # it writes its logs and summary after its records
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.returncode not in (EXIT_RUN_FAILED, EXIT_INTERRUPTED):  # stopped: not a success
        pytest.fail(f"exit {process.returncode}: {(tmp_path / 'stderr').read_text()[-2000:]}")
