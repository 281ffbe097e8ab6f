"""What a person sees of a local run: a progress bar while it runs, a table at the end.

Deliberately apart from :func:`fanout.cli.render.run_text`, which ``fanout status RUN
--local`` prints for the same run: ``fanout local`` ends with one row per item (params,
duration, why it waits or failed, in colour) and a closing sentence (``SUCCEEDED: 21
items, 21 succeeded, ... in 12.6s``) that the README shows (tests/e2e/test_doc_examples.py
holds it), where run_text is a RunView's header (trigger, started and finished), a counts
table and a console link that a local summary does not have. Printing both would say the
counts twice; replacing the sentence with the counts table would break what the README
promises. What both show the same way is the cost line: :func:`fanout.cli.render.cost_line`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fanout.cli.render import cost_line
from fanout.local.summary import Progress as RunProgress
from fanout.local.summary import RunSummary

STATUS_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "yellow",
                "ABORTED": "magenta", "REJECTED": "red", "RUNNING": "cyan", "PENDING": "dim",
                "WAITING": "blue"}


class ProgressBar:
    """succeeded / failed / running / pending and elapsed time, on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]{task.fields[succeeded]} succeeded[/] "
                       "[red]{task.fields[failed]} failed[/] "
                       "[cyan]{task.fields[running]} running[/] "
                       "[blue]{task.fields[waiting]} waiting to launch[/] "
                       "[dim]{task.fields[pending]} pending[/]"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self._task = self._bar.add_task("run", total=None, succeeded=0, failed=0, running=0,
                                        waiting=0, pending=0)

    def __enter__(self) -> ProgressBar:
        self._bar.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._bar.stop()

    def update(self, progress: RunProgress) -> None:
        self._bar.update(
            self._task, total=progress.total or None, completed=progress.done,
            succeeded=progress.succeeded, failed=progress.failed, running=progress.running,
            waiting=progress.waiting, pending=progress.pending,
        )


def waiting_text(waiting: dict[str, Any]) -> str:
    """``capacity unavailable since 12:00:03, 37 tries``."""
    since = str(waiting.get("since") or "")
    clock = since[11:19] if len(since) >= 19 else since
    tries = int(waiting.get("tries") or 0)
    text = f"{waiting.get('why', 'waiting')} since {clock}"
    return text + (f", {tries} tries" if tries else "")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0.01:
        return "<0.01s"
    return f"{seconds:.2f}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"run {summary.run_id} ({summary.job})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("params")
    table.add_column("status")
    table.add_column("attempts", justify="right")
    table.add_column("exit code", justify="right")
    table.add_column("duration", justify="right")
    reasons = any(item.reason for item in summary.items)
    if reasons:
        table.add_column("reason")
    for item in summary.items:
        style = STATUS_STYLE.get(item.status, "")
        status = item.status
        if item.waiting:
            status += f" ({waiting_text(item.waiting)})"
        cells = [
            str(item.index), _params(item.params), f"[{style}]{status}[/]",
            str(item.attempts), "" if item.exit_code is None else str(item.exit_code),
            _duration(item.duration_seconds),
        ]
        table.add_row(*cells, *([escape(item.reason or "")] if reasons else []))
    return table


def print_summary(console: Console, summary: RunSummary) -> None:
    console.print(summary_table(summary))
    style = STATUS_STYLE.get(summary.status, "")
    console.print(
        f"[bold {style}]{summary.status}[/]: {summary.total} items, "
        f"{summary.succeeded} succeeded, {summary.failed} failed, "
        f"{summary.timed_out} timed out, {summary.aborted} aborted "
        f"in {summary.elapsed_seconds:.1f}s"
    )
    launch = summary.launch
    if launch.get("throttled") or launch.get("capacity_refused") or launch.get("waits") \
            or launch.get("quota_refused"):
        quota = launch.get("quota_refused", 0)
        console.print(
            f"launches: {launch.get('run_task_calls', 0)} RunTask calls, "
            f"{launch.get('throttled', 0)} throttled, {launch.get('capacity_refused', 0)} "
            f"refused for capacity" + (f", {quota} over the vCPU quota" if quota else "")
            + f"; {launch.get('waits', 0)} attempts waited to launch")
    line = cost_line(summary.cost, label="estimated cost on AWS")
    if line:
        console.print(line)
    for problem in summary.problems:
        console.print(f"[red]{escape(problem)}[/]")
    if summary.orphans:
        console.print(f"[red]{summary.orphans} task(s) were still running after the run ended, "
                      "never stopped by the control plane (stopped on exit)[/]")
    for warning in summary.warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/]")
    console.print(f"records, logs and this summary: {summary.records}/")
