"""The batch runner of a packed task: the reference of the runner a packed Fargate task
runs (docs/decisions/0020).

It runs a batch's items in order, at most ``concurrency`` at once, each in its own
process group with the task's environment plus its own; marks each item started before it
starts and writes its result when it ends (``I.started``, ``I.json`` in ``results``);
prefixes every line of an item's output with its index and attempt; stops an item past its
timeout (SIGTERM, then SIGKILL after ``grace_seconds``) and goes on with the next; and once
asked to stop, starts no new item and passes the stop to the running ones.

``python -m fanout.local.packed BATCH.json RESULTS_DIR [CONCURRENCY]`` runs a batch file
(``{"entrypoint": [...], "items": [{"index", "attempt", "argv", "environment",
"timeout_seconds"}]}``): what the local mode runs as a packed task's process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fanout.runtime.packing import ItemResult, line_prefix

#: How many of an item's last lines its result keeps (the record's log tail).
TAIL_LINES = 20


@dataclass(frozen=True)
class BatchItem:
    """One item of a batch: what running it alone would be."""

    index: int
    attempt: int
    argv: Sequence[str]
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 3600.0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchItem:
        return cls(index=int(data["index"]), attempt=int(data["attempt"]),
                   argv=[str(a) for a in data["argv"]],
                   environment={str(k): str(v) for k, v in (data.get("environment") or {}).items()},
                   timeout_seconds=float(data.get("timeout_seconds") or 3600))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class BatchRunner:
    def __init__(self, items: Sequence[BatchItem], *, results: Path, out: IO[str],
                 concurrency: int = 1, grace_seconds: float = 10.0,
                 environment: Mapping[str, str] | None = None) -> None:
        self.items = list(items)
        self.results = results
        self.out = out
        self.concurrency = max(1, concurrency)
        self.grace_seconds = grace_seconds
        self.environment = dict(os.environ if environment is None else environment)
        self._stopping = threading.Event()
        self._out_lock = threading.Lock()
        self._running: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Start no new item; pass SIGTERM to the running ones (StopTask, a Spot notice)."""
        self._stopping.set()
        with self._lock:
            running = list(self._running.values())
        for process in running:
            _signal(process, signal.SIGTERM)

    def run(self) -> None:
        self.results.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="item") as pool:
            list(pool.map(self._run_item, self.items))

    def _run_item(self, item: BatchItem) -> None:
        if self._stopping.is_set():
            return  # never started: its attempt is not spent
        (self.results / f"{item.index}.started").write_text(_now())
        started = _now()
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        try:
            process = subprocess.Popen(
                list(item.argv), env={**self.environment, **item.environment},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        except OSError as exc:
            self._write_line(item, f"fanout: cannot start {item.argv[0]!r}: {exc.strerror}",
                             tail)
            self._finish(item, started, 127, False, tail)
            return
        # Its process group, for whatever kills the task outright (the local mode's SIGKILL
        # after the stop's grace: an item in a session of its own outlives its runner).
        (self.results / f"{item.index}.pid").write_text(str(process.pid))
        with self._lock:
            self._running[item.index] = process
        if self._stopping.is_set():
            _signal(process, signal.SIGTERM)
        pump = threading.Thread(target=self._pump, args=(item, process, tail), daemon=True)
        pump.start()
        timed_out = False
        try:
            process.wait(timeout=item.timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=self.grace_seconds)
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()
        pump.join()
        with self._lock:
            self._running.pop(item.index, None)
        code = process.returncode
        self._finish(item, started, code if code >= 0 else 128 - code, timed_out, tail,
                     interrupted=self._stopping.is_set() and not timed_out)

    def _pump(self, item: BatchItem, process: subprocess.Popen[bytes],
              tail: deque[str]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self._write_line(item, raw.decode("utf-8", "replace").rstrip("\r\n"), tail)

    def _write_line(self, item: BatchItem, text: str, tail: deque[str]) -> None:
        tail.append(text)
        with self._out_lock:
            self.out.write(line_prefix(item.index, item.attempt) + text + "\n")
            self.out.flush()

    def _finish(self, item: BatchItem, started: str, exit_code: int, timed_out: bool,
                tail: deque[str], *, interrupted: bool = False) -> None:
        result = ItemResult(index=item.index, attempt=item.attempt, exit_code=exit_code,
                            started=started, stopped=_now(), timed_out=timed_out,
                            log_tail=tuple(tail), interrupted=interrupted)
        partial = self.results / f"{item.index}.json.partial"
        partial.write_text(json.dumps(result.to_json()))
        partial.replace(self.results / f"{item.index}.json")  # a result is whole or absent


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


# --- the local mode's packed task (fanout.local.fargate) -----------------------------------


def is_packed(command: Sequence[str]) -> bool:
    """A packed task's command override: ``--batch LOCATION --concurrency C``."""
    return list(command[:1]) == ["--batch"] and len(command) > 1


def runner_argv(command: Sequence[str], entrypoint: Sequence[str],
                grace_seconds: float) -> list[str]:
    """What a packed task runs locally: this runner, on its batch with the job's
    ``local_command`` before each item's command (the image's entrypoint on AWS)."""
    location = Path(command[1])
    concurrency = str(command[3]) if len(command) > 3 else "1"
    batch = json.loads(location.read_text())
    batch.update(entrypoint=list(entrypoint), grace_seconds=grace_seconds)
    local = location.with_name("batch.local.json")
    local.write_text(json.dumps(batch))
    return [sys.executable, "-m", "fanout.local.packed", str(local),
            str(location.parent / "items"), concurrency]


def runner_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The task's environment, with this very ``fanout`` importable by the runner."""
    import fanout

    root = str(Path(fanout.__file__).resolve().parent.parent)
    rest = [environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else []
    return {**environment, "PYTHONPATH": os.pathsep.join([root, *rest])}


def kill_items(command: Sequence[str]) -> None:
    """SIGKILL the process groups of a packed task's items (``items/I.pid``)."""
    for mark in (Path(command[1]).parent / "items").glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.killpg(int(mark.read_text()), signal.SIGKILL)


def main(argv: Sequence[str]) -> int:
    batch = json.loads(Path(argv[0]).read_text())
    # The image's entrypoint (locally the job's local_command) comes before each command.
    entrypoint = [str(a) for a in batch.get("entrypoint") or []]
    items = [BatchItem.from_json(i) for i in batch["items"]]
    items = [BatchItem(i.index, i.attempt, [*entrypoint, *i.argv], i.environment,
                       i.timeout_seconds) for i in items]
    runner = BatchRunner(items,
                         results=Path(argv[1]), out=sys.stdout,
                         concurrency=int(argv[2]) if len(argv) > 2 else 1,
                         grace_seconds=float(batch.get("grace_seconds") or 10.0))
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
