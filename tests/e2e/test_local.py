"""``fanout local`` end to end: the synthesized control plane, tasks as local processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    E2E_CONFIG,
    ROOT,
    SPECS,
    alive,
    parse,
    pids,
    records_dir,
    signalled_run,
)

pytestmark = pytest.mark.slow

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def test_seed_spec_runs_all_21_years(seed_stack, fanout_local):
    # Given the seed's analyzer over 1999..2019 on the repository's own deployment
    spec = ROOT / "examples" / "specs" / "years.json"

    # When it runs locally
    outcome = fanout_local(spec, "--config", seed_stack)

    # Then every year succeeded, once, and the run says so
    assert outcome.code == 0, outcome.stderr[-3000:]
    summary = outcome.summary
    assert summary["status"] == "SUCCEEDED"
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (21, 21, 0)
    items = outcome.items()
    assert [i["params"]["year"] for i in items] == list(range(1999, 2020))
    assert all(i["status"] == "SUCCEEDED" and i["exit_code"] == 0 for i in items)
    assert all(i["attempts"] == 1 and len(i["tasks"]) == 1 for i in items)


def test_failing_item_is_retried_then_failed(e2e_stack, fanout_local):
    # Given one item that exits 0 and one that exits 1, with 3 attempts allowed
    spec = SPECS / "retry.json"

    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack)

    # Then the failing item used all its attempts, each its own task, and the run failed
    assert outcome.code == 1, outcome.stderr[-3000:]
    ok, bad = outcome.items()
    assert (ok["status"], ok["attempts"], ok["exit_code"], len(ok["tasks"])) == (
        "SUCCEEDED", 1, 0, 1)
    assert (bad["status"], bad["attempts"], bad["exit_code"]) == ("FAILED", 3, 1)
    assert len(set(bad["tasks"])) == 3
    assert outcome.summary["status"] == "FAILED"
    assert (outcome.summary["succeeded"], outcome.summary["failed"]) == (1, 1)


@pytest.mark.parametrize(("tolerated", "status", "code"), [(25, "SUCCEEDED", 0),
                                                          (0, "FAILED", 1)])
def test_tolerated_failure_percent_decides_the_run(e2e_stack, fanout_local, tmp_path,
                                                   tolerated, status, code):
    # Given 4 items of which one fails (25%), and a tolerance of `tolerated` percent
    spec = json.loads((SPECS / "tolerated.json").read_text())
    spec["tolerated_failure_percent"] = tolerated
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))

    # When the run ends
    outcome = fanout_local(path, "--config", e2e_stack)

    # Then the tolerance decides the run's status and exit code, not the items
    assert outcome.code == code, outcome.stderr[-3000:]
    assert outcome.summary["status"] == status
    assert [i["status"] for i in outcome.items()] == ["SUCCEEDED"] * 3 + ["FAILED"]
    assert outcome.items()[3]["exit_code"] == 7


def test_item_past_its_timeout_is_timed_out_and_its_process_gone(e2e_stack, fanout_local,
                                                                  pid_dir):
    # Given an item that sleeps 120 s under a 2 s timeout
    spec = SPECS / "timeout.json"

    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack, "--reconcile-seconds", "0.5")

    # Then the item timed out, and the process that ran it is gone
    assert outcome.code == 1, outcome.stderr[-3000:]
    (item,) = outcome.items()
    assert item["status"] == "TIMED_OUT"
    assert outcome.summary["timed_out"] == 1
    started = pids(pid_dir)
    assert len(started) == 1
    assert not alive(started[0])


def test_interrupted_run_is_aborted_and_leaves_no_process(e2e_stack, pid_dir, tmp_path):
    # Given a run of three long items, all of them running
    env = {**os.environ, "PROG_PID_DIR": str(pid_dir)}
    # When it is interrupted (Ctrl-C)
    code, stdout, stderr = signalled_run(
        [SPECS / "abort.json", "--config", e2e_stack, "--json", "--records-dir",
         records_dir(tmp_path)],
        signal.SIGINT, lambda: len(pids(pid_dir)) == 3, "three running items", env=env,
        end_timeout=60,
    )
    outcome = parse(code, stdout, stderr)

    # Then every item is ABORTED, the summary says so, and no task process is left
    assert outcome.code == 1, stderr[-3000:]
    assert outcome.summary["status"] == "ABORTED"
    assert [i["status"] for i in outcome.items()] == ["ABORTED"] * 3
    assert outcome.summary["aborted"] == 3
    assert [p for p in pids(pid_dir) if alive(p)] == []


def test_bad_spec_exits_2_naming_every_field_and_launches_nothing(fanout_local,
                                                                  pid_dir, tmp_path):
    # Given a spec with three things wrong
    spec = SPECS / "bad.json"

    # When it is run (before anything is synthesized: no stack fixture here)
    outcome = fanout_local(spec, "--config", E2E_CONFIG)

    # Then it is refused with one message naming each, and nothing ran or was recorded
    assert outcome.code == 2
    assert outcome.stdout == ""
    message = outcome.stderr
    for field in ("params.n.range", "max_concurrency", "colour"):
        assert field in message, message
    assert pids(pid_dir) == []
    assert not records_dir(tmp_path).exists()


def test_docker_asked_for_without_an_engine_exits_2(e2e_stack, fanout_local, pid_dir):
    # Given no Docker engine on this machine (checked: the test is moot where one runs)
    from fanout.errors import FanoutInputError
    from fanout.local.runner import check_docker

    try:
        check_docker()
        pytest.skip("a Docker engine is running here")
    except FanoutInputError:
        pass

    # When a run asks for Docker
    outcome = fanout_local(SPECS / "retry.json", "--config", e2e_stack, "--docker")

    # Then it says so and exits 2, having run nothing
    assert outcome.code == 2
    assert "Docker" in outcome.stderr
    assert pids(pid_dir) == []


def test_task_output_reaches_its_log_stream(e2e_stack, fanout_local, tmp_path):
    # Given a run of the test program, which prints a line per attempt
    outcome = fanout_local(SPECS / "retry.json", "--config", e2e_stack)

    # Then each attempt's output is in the log written out for it
    logs = Path(outcome.summary["records"]) / "logs"
    texts = {p.name: p.read_text() for p in logs.glob("item-1-*.log")}
    assert len(texts) == 3, texts
    assert all("exit 1" in t for t in texts.values())
    assert {t.splitlines()[0] for t in texts.values()} == {
        "attempt 1: sleeping 0.0s", "attempt 2: sleeping 0.0s", "attempt 3: sleeping 0.0s"}
    # and `fanout logs` reads them back after the run, from the run's directory
    logs_command = [sys.executable, "-m", "fanout.cli", "logs", outcome.summary["run_id"], "1"]
    shown = subprocess.run(logs_command, cwd=tmp_path, capture_output=True, text=True,
                           timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "[attempt 3] attempt 3: exit 1" in shown.stdout.splitlines()
