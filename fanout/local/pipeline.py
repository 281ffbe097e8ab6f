"""``fanout local PIPELINE.json``: a pipeline's steps, each an ordinary local run.

Each step is started as ``fanout local STEP_SPEC --json --run-id <pipeline run>.<step>``
in its own process: the very local run machinery (its records, logs, ``fanout status``,
``--local`` commands), one emulated AWS per step, so that steps with no order between
them run at the same time. The step's spec carries ``pipeline_run`` (the pipeline run id
and the step). The pipeline run's own record is ``<records dir>/<pipeline run>/pipeline.json``
(docs/pipelines.md), rewritten whenever a step changes.

A step starts when everything it needs has ended (and SUCCEEDED, unless ``when:
always``); otherwise it is SKIPPED with the reason. When the pipeline's
``timeout_seconds`` pass, its running steps are stopped (SIGTERM: they end ABORTED) and
the steps not started are SKIPPED; the pipeline ends TIMED_OUT.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fanout.local.fanin import succeeded_items, write_inputs, write_step_items
from fanout.pipelines.model import Pipeline
from fanout.pipelines.plan import decide, pipeline_status, skip_all_pending

PIPELINE_RECORD = "pipeline.json"
FORMAT = "fanout.local-pipeline/1"
#: Where a step fed by an earlier one names its items (the local run puts the file there).
ITEMS_BUCKET = "fanout-pipelines"
INPUTS_ENV = "FANOUT_INPUTS"


@dataclass
class StepState:
    """A step of a pipeline run, as its record says."""

    status: str = "PENDING"
    #: The step's run in this pipeline run (None: not started, or carried over).
    run_id: str | None = None
    #: Every run that makes up the step, first to last (a rerun adds one).
    runs: list[str] = field(default_factory=list)
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    total: int | None = None
    succeeded: int | None = None
    #: For a rerun: run this step as ``fanout rerun RUN --failed`` of its last run.
    rerun_of: str | None = None


@dataclass
class PipelineOptions:
    config_path: Path
    records_dir: Path
    run_id: str
    #: What every step's ``fanout local`` is given on top (``--reconcile-seconds 0.2``...).
    step_args: list[str] = field(default_factory=list)
    python: str = sys.executable
    #: A rerun: the pipeline run it repeats, and the steps' states to start from.
    parent: str | None = None
    start_from: dict[str, StepState] = field(default_factory=dict)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LocalPipeline:
    """One pipeline run on the local control plane."""

    def __init__(self, pipeline: Pipeline, document: dict[str, Any], options: PipelineOptions,
                 say: Callable[[str], None] = lambda _: None) -> None:
        self.pipeline, self.document, self.options, self.say = pipeline, document, options, say
        self.folder = options.records_dir / options.run_id
        self.steps = {n: options.start_from.get(n, StepState()) for n in pipeline.steps}
        self.status = "RUNNING"
        self.reason: str | None = None
        self.started_at = now()
        self.finished_at: str | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._ended: queue.Queue[str] = queue.Queue()
        self._interrupted = threading.Event()

    def interrupt(self) -> None:
        """Stop the pipeline (Ctrl-C, SIGTERM): safe from a signal handler."""
        self._interrupted.set()

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        timeout = self.pipeline.timeout_seconds
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write()
        while True:
            self._advance()
            self._write()
            if not self._procs:
                break
            if self._interrupted.is_set() or (timeout and time.monotonic() - started > timeout):
                self._stop("the pipeline was interrupted" if self._interrupted.is_set()
                           else f"the pipeline timed out after {timeout} s")
            wait = 0.5 if not timeout or self.status != "RUNNING" \
                else max(0.0, min(0.5, timeout - time.monotonic() + started))
            try:
                self._collect(self._ended.get(timeout=wait))
            except queue.Empty:
                continue
        if self.status == "RUNNING":
            self.status = pipeline_status({n: s.status for n, s in self.steps.items()})
        self.finished_at = now()
        self._write()
        return self.summary()

    def _advance(self) -> None:
        """Start what can start and skip what cannot run, until nothing changes."""
        if self.status != "RUNNING":
            return
        while True:
            decision = decide(self.pipeline, {n: s.status for n, s in self.steps.items()})
            for name, reason in decision.skip.items():
                self._end(name, "SKIPPED", reason)
            for name in decision.start:
                self._start(name)
            if not decision.skip and not decision.start:
                return

    def _stop(self, reason: str) -> None:
        """Stop the running steps (they end ABORTED) and skip the ones not started."""
        if self.status != "RUNNING":
            return
        self.status = "ABORTED" if self._interrupted.is_set() else "TIMED_OUT"
        self.reason = reason
        self.say(f"{reason}: stopping its running steps")
        for name, reason_ in skip_all_pending({n: s.status for n, s in self.steps.items()},
                                              reason).items():
            self._end(name, "SKIPPED", reason_)
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def _end(self, name: str, status: str, reason: str | None) -> None:
        step = self.steps[name]
        step.status, step.reason, step.finished_at = status, reason, now()
        self.say(f"step {name}: {status}" + (f" ({reason})" if reason else ""))

    def _start(self, name: str) -> None:
        state = self.steps[name]
        run_id = f"{self.options.run_id}.{name}"
        steps_dir = self.folder / "steps"
        steps_dir.mkdir(parents=True, exist_ok=True)
        if state.rerun_of:  # the failed items of its last run, as that run was made
            args = ["rerun", state.rerun_of, "--local", "--failed",
                    "--pipeline-run", self.options.run_id, "--pipeline-step", name]
        else:
            spec, extra = self._step_spec(name, steps_dir)
            if spec is None:
                return
            path = steps_dir / f"{name}.spec.json"
            path.write_text(json.dumps(spec, indent=2) + "\n")
            args = ["local", str(path), *extra, *self.options.step_args]
        args += ["--json", "--run-id", run_id, "--records-dir", str(self.options.records_dir),
                 "--config", str(self.options.config_path)]
        with open(steps_dir / f"{name}.out.json", "wb") as out, \
                open(steps_dir / f"{name}.err.log", "wb") as err:
            proc = subprocess.Popen([self.options.python, "-m", "fanout.cli", *args],
                                    stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self._procs[name] = proc
        state.status, state.run_id, state.started_at = "RUNNING", run_id, now()
        state.runs = [*state.runs, run_id]
        self.say(f"step {name}: started (run {run_id})")
        threading.Thread(target=self._await, args=(name, proc), name=f"pipeline-step-{name}",
                         daemon=True).start()

    def _await(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self._ended.put(name)

    def _step_spec(self, name: str, steps_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
        """The step's run spec (its items and ``FANOUT_INPUTS`` made from what it needs),
        and the arguments it takes; None when it cannot run (it is SKIPPED)."""
        step = self.pipeline.steps[name]
        records = self.options.records_dir
        spec = {**step.spec, **self.pipeline.shared,
                "pipeline_run": {"run_id": self.options.run_id, "step": name}}
        extra: list[str] = []
        if step.items_from_step is not None:
            source = step.items_from_step
            items = succeeded_items(records, self.steps[source].runs)
            if not items:
                self._end(name, "SKIPPED", f"step {source} has no succeeded item to take "
                                           "items from")
                return None, []
            path = steps_dir / f"{name}.items.jsonl"
            write_step_items(path, items)
            spec["items_from"] = f"s3://{ITEMS_BUCKET}/{self.options.run_id}/{name}/items.jsonl"
            extra += ["--items", str(path)]
        if step.needs:
            inputs = steps_dir / f"{name}.inputs.jsonl"
            write_inputs(inputs, records, {n: self.steps[n].runs for n in step.needs})
            spec["environment"] = {**self._environment(spec), INPUTS_ENV: str(inputs.resolve())}
        return spec, extra

    def _environment(self, spec: dict[str, Any]) -> dict[str, str]:
        if isinstance(spec.get("environment"), dict):
            return dict(spec["environment"])
        from fanout.config import load_config_file

        job = load_config_file(self.options.config_path).jobs[str(spec["job"])]
        return dict(job.environment)

    def _collect(self, name: str) -> None:
        """A step's process ended: its run's status, from the summary it printed."""
        proc = self._procs.pop(name)
        steps_dir = self.folder / "steps"
        try:
            summary = json.loads((steps_dir / f"{name}.out.json").read_text())
        except (OSError, ValueError):
            summary = None
        state = self.steps[name]
        if isinstance(summary, dict) and summary.get("status"):
            state.total, state.succeeded = summary.get("total"), summary.get("succeeded")
            problems = summary.get("problems") or []
            status = str(summary["status"])
            reason = None if status == "SUCCEEDED" else (
                f"{summary.get('failed', 0)} failed, {summary.get('timed_out', 0)} timed out, "
                f"{summary.get('aborted', 0)} aborted of {summary.get('total')}"
                + (f": {problems[0]}" if problems else ""))
        elif self.status != "RUNNING":  # stopped before its run started: nothing launched
            status, reason = "ABORTED", self.reason
        else:
            status = "REJECTED" if proc.returncode == 2 else "FAILED"
            reason = _last_line(steps_dir / f"{name}.err.log") or f"exit {proc.returncode}"
        self._end(name, status, reason)

    def summary(self) -> dict[str, Any]:
        """What ``fanout local PIPELINE --json`` prints (and the record holds)."""
        return {
            "pipeline_run_id": self.options.run_id, "pipeline": self.pipeline.name,
            "status": self.status, "reason": self.reason, "started_at": self.started_at,
            "finished_at": self.finished_at, "timeout_seconds": self.pipeline.timeout_seconds,
            "parent_pipeline_run": self.options.parent,
            "records": str(self.folder),
            "steps": {n: {**{k: v for k, v in asdict(s).items()
                             if k != "rerun_of"},
                          "needs": list(self.pipeline.steps[n].needs),
                          "when": self.pipeline.steps[n].when}
                      for n, s in self.steps.items()},
        }

    def _write(self) -> None:
        record = {**self.summary(), "format": FORMAT, "pid": os.getpid(),
                  "spec": self.document, "config": str(self.options.config_path)}
        path = self.folder / PIPELINE_RECORD
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        aside.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(aside, path)


def _last_line(path: Path) -> str | None:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1].strip()[:400] if lines else None

