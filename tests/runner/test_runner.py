"""The static runner a packed Fargate task runs in any image (docs/decisions/0021): the
batch laid out by the agent, each item alone, its marks and result in the output folder.
The same fixtures as the reference runner's (fanout/local/packed.py) give the same results.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from fanout.local.packed import BatchItem, BatchRunner
from fanout.runtime.packed_agent import lay_out
from fanout.runtime.packing import ItemResult, item_lines

PY = sys.executable


def item(index: int, code: str, *, attempt: int = 1, timeout: float = 30.0,
         env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"index": index, "attempt": attempt, "argv": [PY, "-c", code, *args],
            "environment": env or {}, "timeout_seconds": timeout}


def run_batch(runner: Path, tmp_path: Path, items: list[dict[str, Any]], *,
              concurrency: int = 1, grace: float = 0.2,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    lay_out({"items": items, "per_task_concurrency": concurrency}, tmp_path / "batch")
    return subprocess.run(
        [str(runner), "--batch", str(tmp_path / "batch"), "--out", str(tmp_path / "out"),
         "--grace", str(grace)],
        capture_output=True, encoding="utf-8", errors="replace", timeout=60,
        env={**os.environ, **(env or {})})


def results_of(out: Path) -> dict[int, ItemResult]:
    return {int(p.stem): ItemResult.from_json(json.loads(p.read_text()))
            for p in out.glob("*.json")}


def test_items_run_one_after_another_each_with_its_exit_code_and_lines(runner, tmp_path) -> None:
    # Given two items, the second failing with 3
    items = [item(0, "print('first')"), item(1, "import sys; print('second'); sys.exit(3)")]
    # When the runner runs them one at a time
    done = run_batch(runner, tmp_path, items)
    # Then it exits 0 (it ran every item) and each item has its own exit code and tail
    assert done.returncode == 0, done.stderr
    results = results_of(tmp_path / "out")
    assert {i: r.exit_code for i, r in results.items()} == {0: 0, 1: 3}
    assert results[1].log_tail == ("second",)
    # And the second started after the first stopped
    assert results[0].stopped <= results[1].started
    assert (tmp_path / "out" / "exit").read_text() == "done\n"


def test_every_output_line_is_prefixed_with_its_item_and_attempt(runner, tmp_path) -> None:
    # Given an item writing two lines to stdout, one to stderr and one without a newline
    code = ("import sys; print('a'); print('b', file=sys.stderr, flush=True); "
            "sys.stdout.write('c')")
    # When it runs as attempt 2
    out = run_batch(runner, tmp_path, [item(7, code, attempt=2)]).stdout
    # Then every line of the task's stdout carries the prefix, and the log filter finds them
    lines = out.splitlines()
    assert lines and all(line.startswith("[fanout item=7 attempt=2] ") for line in lines)
    assert sorted(item_lines(lines, 7, attempt=2)) == ["a", "b", "c"]


def test_an_item_gets_its_environment_on_top_of_the_containers(runner, tmp_path) -> None:
    # Given a container variable and an item variable that also overrides one
    code = "import os; print(os.environ['FROM_TASK'], os.environ['N'], os.environ['SHARED'])"
    items = [item(0, code, env={"N": "10", "SHARED": "item's"})]
    # When it runs
    run_batch(runner, tmp_path, items, env={"FROM_TASK": "task's", "SHARED": "task's"})
    # Then it saw both, the item's value winning
    assert results_of(tmp_path / "out")[0].log_tail == ("task's 10 item's",)


def test_items_run_at_once_up_to_the_concurrency(runner, tmp_path) -> None:
    # Given two items that each wait until the other has started (at most 20 s)
    marks = tmp_path / "marks"
    marks.mkdir()
    code = ("import pathlib,sys,time; m=pathlib.Path(sys.argv[1]); "
            "(m/sys.argv[2]).touch(); t=time.time()\n"
            "while len(list(m.iterdir()))<2 and time.time()-t<20: time.sleep(0.01)\n"
            "sys.exit(0 if len(list(m.iterdir()))==2 else 3)")
    items = [item(i, code, args=(str(marks), str(i))) for i in range(2)]
    # When they run two at once
    run_batch(runner, tmp_path, items, concurrency=2)
    # Then both saw the other running
    assert {i: r.exit_code for i, r in results_of(tmp_path / "out").items()} == {0: 0, 1: 0}


def test_an_item_past_its_timeout_is_killed_and_the_next_runs(runner, tmp_path) -> None:
    # Given an item sleeping 5 s with a 0.3 s timeout, then a quick one
    items = [{"index": 0, "attempt": 1, "argv": ["sleep", "5"], "timeout_seconds": 0.3},
             item(1, "print('next')")]
    # When the runner runs them (its own exit awaited)
    done = run_batch(runner, tmp_path, items)
    # Then the sleeper timed out, stopped by SIGTERM, and the next item ran
    assert done.returncode == 0
    results = results_of(tmp_path / "out")
    assert results[0].timed_out and results[0].exit_code == 128 + signal.SIGTERM
    assert results[1].exit_code == 0 and not results[1].timed_out
    assert results[1].log_tail == ("next",)


def test_an_item_ignoring_sigterm_is_killed_after_the_grace(runner, tmp_path) -> None:
    # Given an item that ignores SIGTERM (a shell trap, inherited by its sleep), past its
    # 1 s timeout
    items = [{"index": 0, "attempt": 1, "argv": ["sh", "-c", "trap '' TERM; sleep 30"],
              "timeout_seconds": 1}]
    # When it runs with a 0.2 s grace
    run_batch(runner, tmp_path, items, grace=0.2)
    # Then SIGKILL ended it: timed out, exit 137
    result = results_of(tmp_path / "out")[0]
    assert result.timed_out and result.exit_code == 128 + signal.SIGKILL


def test_a_long_line_is_cut_into_prefixed_lines(runner, tmp_path) -> None:
    # Given an item writing one line of 20,000 characters
    out = run_batch(runner, tmp_path, [item(0, "print('x' * 20000)")]).stdout
    # Then the task's log has it as prefixed lines of at most 8 KiB, nothing lost
    lines = out.splitlines()
    assert all(line.startswith("[fanout item=0 attempt=1] ") for line in lines)
    assert "".join(item_lines(lines, 0)) == "x" * 20000


def test_a_leftover_child_does_not_hold_the_batch(runner, tmp_path) -> None:
    # Given an item whose program leaves a child behind, holding its output, then another
    items = [{"index": 0, "attempt": 1, "argv": ["sh", "-c", "sleep 30 & echo left"]},
             item(1, "print('next')")]
    # When the batch runs
    done = run_batch(runner, tmp_path, items)
    # Then the item ended with its program (its output drained 2 s, the child killed)
    results = results_of(tmp_path / "out")
    assert (results[0].exit_code, results[0].log_tail) == (0, ("left",))
    assert results[1].exit_code == 0 and done.returncode == 0
    assert subprocess.run(["pgrep", "-f", "^sleep 30$"], capture_output=True).returncode == 1


def test_an_item_is_marked_started_before_it_runs_and_ended_after(runner, tmp_path) -> None:
    # Given an item that looks at its own marks while it runs
    out = tmp_path / "out"
    code = ("import pathlib,sys; o=pathlib.Path(sys.argv[1]); "
            "print((o/'0.started').exists(), (o/'0.json').exists())")
    # When it runs
    run_batch(runner, tmp_path, [item(0, code, args=(str(out),))])
    # Then it saw its started mark and no result; the result exists after
    assert results_of(out)[0].log_tail == ("True False",)
    assert (out / "0.started").read_text() == results_of(out)[0].started


def test_sigterm_starts_no_new_item_and_stops_the_running_one(runner, tmp_path) -> None:
    # Given a batch whose first item runs until stopped
    items = [item(0, "import time; print('running', flush=True); time.sleep(60)"),
             item(1, "print('never')"), item(2, "print('never')")]
    lay_out({"items": items}, tmp_path / "batch")
    process = subprocess.Popen(
        [str(runner), "--batch", str(tmp_path / "batch"), "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    # When the task gets SIGTERM once item 0 is running (its first line read)
    assert process.stdout.readline() == "[fanout item=0 attempt=1] running\n"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    # Then item 0 ended by the signal, and 1 and 2 were never started
    out = tmp_path / "out"
    assert results_of(out)[0].exit_code == 128 + signal.SIGTERM
    assert {p.name for p in out.glob("*.started")} == {"0.started"}
    assert process.returncode == 0 and (out / "exit").read_text() == "stopped\n"


def test_a_program_that_cannot_start_ends_its_item_with_127(runner, tmp_path) -> None:
    # Given an item whose program does not exist
    items = [{"index": 3, "attempt": 1, "argv": ["/no/such/program"]}, item(4, "print(4)")]
    # When the batch runs
    run_batch(runner, tmp_path, items)
    # Then that item ends with 127 and says why; the next one runs
    results = results_of(tmp_path / "out")
    assert results[3].exit_code == 127
    assert results[3].log_tail[0].startswith("fanout: cannot start '/no/such/program'")
    assert results[4].exit_code == 0


def test_a_log_tail_is_the_last_20_lines_as_json_strings(runner, tmp_path) -> None:
    # Given an item writing 25 lines, some with quotes, backslashes, tabs and bad UTF-8
    code = ("import sys\nfor n in range(24): print(f'line {n} \"q\" \\\\ \\t end')\n"
            "sys.stdout.flush(); sys.stdout.buffer.write(b'bad \\xff\\xc3 \\x01 ok \\xc3\\xa9\\n')")
    # When it runs
    run_batch(runner, tmp_path, [item(0, code)])
    # Then its result is valid JSON holding the last 20 lines as Python would decode them
    tail = results_of(tmp_path / "out")[0].log_tail
    assert len(tail) == 20
    assert tail[0] == 'line 5 "q" \\ \t end'
    assert tail[-1] == b"bad \xff\xc3 \x01 ok \xc3\xa9".decode("utf-8", "replace")


def test_the_runner_and_the_reference_runner_agree_on_a_batch(runner, tmp_path) -> None:
    # Given one batch: a success, a failure, an environment, a timeout
    items = [item(0, "import os; print('n', os.environ['N'])", env={"N": "1"}),
             item(1, "import sys; print('bad'); sys.exit(4)", attempt=2),
             item(2, "import time; time.sleep(5)", timeout=0.3)]
    # When the static runner and fanout/local/packed.py each run it
    run_batch(runner, tmp_path / "c", items)
    BatchRunner([BatchItem.from_json(i) for i in items], results=tmp_path / "py",
                out=io.StringIO(), grace_seconds=0.2).run()

    # Then the items' results are the same but for the clock
    def outcome(folder: Path) -> dict[int, tuple[Any, ...]]:
        return {i: (r.attempt, r.exit_code, r.timed_out, r.log_tail)
                for i, r in results_of(folder).items()}

    assert outcome(tmp_path / "c" / "out") == outcome(tmp_path / "py")
    written = json.loads((tmp_path / "c" / "out" / "1.json").read_text())
    assert written.keys() == ItemResult.from_json(written).to_json().keys()


def test_a_bad_batch_starts_nothing_and_says_which_file(runner, tmp_path) -> None:
    # Given a batch whose second item's timeout is not a number
    lay_out({"items": [item(0, "print(0)"), item(1, "print(1)")]}, tmp_path / "batch")
    (tmp_path / "batch" / "1" / "timeout").write_text("soon\n")
    # When the runner reads it
    done = subprocess.run([str(runner), "--batch", str(tmp_path / "batch"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    # Then it fails with one line naming the file, and no item started
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"fanout runner: {tmp_path}/batch/1/timeout is not a number of seconds: 'soon'"]
    assert not list((tmp_path / "out").glob("*.started"))


def test_no_ready_batch_fails_after_the_ready_timeout(runner, tmp_path) -> None:
    # Given no agent ever writing the batch
    # When the runner waits 0.2 s for it
    done = subprocess.run([str(runner), "--batch", str(tmp_path / "batch"), "--out",
                           str(tmp_path / "out"), "--ready-timeout", "0.2"],
                          capture_output=True, text=True, timeout=30)
    # Then it fails (exit 3) saying so, and marks its exit for the agent
    assert done.returncode == 3 and "no batch" in done.stderr
    assert (tmp_path / "out" / "exit").read_text() == "no batch\n"


def test_install_copies_the_runner_into_the_shared_folder(runner, tmp_path) -> None:
    # When the init container runs `install DIR`
    done = subprocess.run([str(runner), "install", str(tmp_path)], capture_output=True)
    # Then DIR/runner is the same executable binary
    assert done.returncode == 0
    installed = tmp_path / "runner"
    assert installed.read_bytes() == runner.read_bytes()
    assert os.access(installed, os.X_OK)
    # And the folders the agent and the image's own user share are open to any user
    for folder in ("batch", "out"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o1777
