"""A packed task's items, each alone: the batch runner (fanout/local/packed.py) and the
settlement of a stopped task (fanout/runtime/packing.py)."""

from __future__ import annotations

import io
import json
import sys
import threading
from pathlib import Path

from fanout.local.packed import BatchItem, BatchRunner
from fanout.runtime.packing import Ending, ItemResult, item_lines, settle_batch

PY = sys.executable


def item(index: int, code: str, *, attempt: int = 1, timeout: float = 30.0,
         env: dict[str, str] | None = None) -> BatchItem:
    return BatchItem(index=index, attempt=attempt, argv=[PY, "-c", code],
                     environment=env or {}, timeout_seconds=timeout)


def results_of(folder: Path) -> dict[int, ItemResult]:
    return {int(p.stem): ItemResult.from_json(json.loads(p.read_text()))
            for p in folder.glob("*.json")}


def test_each_item_ends_with_its_own_exit_code_environment_and_lines(tmp_path) -> None:
    # Given a batch of three items, the second failing, each with its own environment
    out = io.StringIO()
    batch = [item(i, "import os,sys; print('hello', os.environ['N']); "
                     "sys.exit(int(os.environ['N']) == 11)", env={"N": str(10 + i)})
             for i in range(3)]
    # When the batch runs in one task
    BatchRunner(batch, results=tmp_path, out=out).run()
    # Then each item has its own result: exit code and log tail
    results = results_of(tmp_path)
    assert {i: r.exit_code for i, r in results.items()} == {0: 0, 1: 1, 2: 0}
    assert results[1].log_tail == ("hello 11",)
    # And the task's log gives each item only its own lines
    lines = out.getvalue().splitlines()
    assert list(item_lines(lines, 2)) == ["hello 12"]
    assert list(item_lines(lines, 2, attempt=2)) == []


def test_an_item_past_its_timeout_is_stopped_and_the_task_goes_on(tmp_path) -> None:
    # Given an item that sleeps past its 0.5 s timeout, then a quick one
    batch = [item(0, "import time; time.sleep(60)", timeout=0.5), item(1, "print('next')")]
    # When the batch runs
    BatchRunner(batch, results=tmp_path, out=io.StringIO(), grace_seconds=0.5).run()
    # Then the first timed out (its process killed, not the task) and the second ran
    results = results_of(tmp_path)
    assert results[0].timed_out and results[0].exit_code == 128 + 15
    assert results[1].exit_code == 0 and not results[1].timed_out


def test_items_run_at_once_up_to_the_per_task_concurrency(tmp_path) -> None:
    # Given two items that each wait until the other has started
    marks = tmp_path / "marks"
    marks.mkdir()
    code = ("import pathlib,sys,time; m=pathlib.Path(sys.argv[1]); "
            "(m/sys.argv[2]).touch(); t=time.time()\n"
            "while len(list(m.iterdir()))<2 and time.time()-t<20: time.sleep(0.01)\n"
            "sys.exit(0 if len(list(m.iterdir()))==2 else 3)")
    batch = [BatchItem(i, 1, [PY, "-c", code, str(marks), str(i)]) for i in range(2)]
    # When they run two at once
    BatchRunner(batch, results=tmp_path / "r", out=io.StringIO(), concurrency=2).run()
    # Then both saw the other running
    assert {r.exit_code for r in results_of(tmp_path / "r").values()} == {0}


def test_a_task_stopped_mid_batch_requeues_its_unstarted_items(tmp_path) -> None:
    # Given a batch whose first item runs until the task is stopped
    started = tmp_path / "first-started"
    batch = [item(0, f"import pathlib,time; pathlib.Path({str(started)!r}).touch(); "
                     "time.sleep(60)"),
             item(1, "print('never')"), item(2, "print('never')")]
    runner = BatchRunner(batch, results=tmp_path / "r", out=io.StringIO())
    thread = threading.Thread(target=runner.run)
    thread.start()
    # When the task is stopped (StopTask, a Spot notice) while item 0 runs
    while not started.exists() and thread.is_alive():
        thread.join(0.01)
    runner.stop()
    thread.join(30)
    # Then item 0 ended by the stop (its result says so), items 1 and 2 never started
    folder = tmp_path / "r"
    assert results_of(folder)[0].exit_code == 128 + 15
    assert results_of(folder)[0].interrupted
    marked = {int(p.stem) for p in folder.glob("*.started")}
    assert marked == {0}
    # And settling the task gives item 0 the task's stop (not an exit code 143 of its own)
    # and requeues 1 and 2 without spending their attempts
    settled = settle_batch([0, 1, 2], started=marked, results=results_of(folder),
                           runner_ran=True)
    assert [(s.ending, s.spends_attempt) for s in settled] == [
        (Ending.TASK_STOPPED, True), (Ending.REQUEUED, False), (Ending.REQUEUED, False)]


def test_settling_a_task_killed_while_an_item_ran() -> None:
    # Given item 5 finished, item 6 started but wrote no result (SIGKILL), 7 never started
    done = ItemResult(5, 1, 0, "t0", "t1")
    settled = settle_batch([5, 6, 7], started=[5, 6], results={5: done}, runner_ran=True)
    # Then 5 ends as it ended, 6 takes the task's stop, 7 goes back free
    assert [(s.index, s.ending, s.spends_attempt) for s in settled] == [
        (5, Ending.ENDED, True), (6, Ending.TASK_STOPPED, True), (7, Ending.REQUEUED, False)]
    assert settled[0].result == done


def test_a_task_whose_runner_never_ran_spends_every_attempt() -> None:
    # An image that cannot be pulled must not requeue its items forever
    settled = settle_batch([0, 1], started=[], results={}, runner_ran=False)
    assert {(s.ending, s.spends_attempt) for s in settled} == {(Ending.TASK_STOPPED, True)}
