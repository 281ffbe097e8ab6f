"""``fanout local SPEC``: arguments and the command (the heavy modules load on use)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from fanout.cli.args import add_run_arguments, add_spec_arguments, spec_document
from fanout.cli.exits import exit_for
from fanout.errors import Problem, UsageError


def add(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "local", help="run a spec on the local control plane (emulated AWS, local processes)",
        description="Run the synthesized control plane on an emulated AWS: the state machine, "
                    "the handlers in process, each task a local process. Exit 0 when the run "
                    "succeeded, 1 when it failed or was aborted, 2 on bad input.",
    )
    add_spec_arguments(parser)
    add_run_arguments(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the run summary as one JSON object")
    parser.add_argument("--concurrency", type=int, metavar="N",
                        help="tasks at once (overrides the spec's max_concurrency)")
    parser.add_argument(
        "--faults", metavar="F=X,...",
        help="inject faults: throttle, capacity, spot, lose_event, duplicate_event, "
             "launch_crash as fractions 0..1; launch_latency=SECONDS (RunTask answers that "
             "long after its task started); capacity_outage=SECONDS (every RunTask refused "
             "for capacity during the run's first SECONDS); vcpu_quota=VCPUS (the account's "
             "Fargate vCPU quota: RunTask over it is refused and the item waits); "
             "ddb_conflict (a fraction: DynamoDB transactions meeting on an item cancelled "
             "with TransactionConflict); ddb_hot_key=WCU (writes to one item beyond WCU a "
             "second throttled); and seed=N",
    )
    parser.add_argument(
        "--launch-rate", metavar="BURST,PER_SECOND",
        help="put an emulated Fargate launch bucket in front of RunTask (Fargate: 100,20); "
             "the launch gate paces to it",
    )
    parser.add_argument("--docker", action="store_true",
                        help="run each task's image with Docker instead of a local process")
    parser.add_argument("--reconcile-seconds", type=float, default=1.0, metavar="S",
                        help="how often Reconcile runs (default 1s)")
    parser.add_argument("--records-dir", default=".fanout/runs", metavar="DIR",
                        help="where each run's records, logs and summary go")
    parser.add_argument(
        "--notify", nargs="?", const="-", metavar="URL",
        help="when the run ends, print the message its notifications carry (Slack, Teams, "
             "webhooks); with a URL, post it there instead (a Slack or Teams incoming webhook "
             "gets a chat message, any other URL the JSON message)")
    parser.add_argument("--items", metavar="FILE",
                        help="for a spec with items_from: a local copy of the object "
                             "(JSON, JSON Lines or CSV), read where the spec names it")
    parser.set_defaults(func=run_local)


def parse_launch_rate(text: str | None) -> Any:
    """``BURST,PER_SECOND`` -> the emulated bucket; a bad value is a usage error (exit 2)."""
    from fanout.errors import Problem, UsageError
    from fanout.local.tasks import LaunchRate

    if not text:
        return None
    burst, _, rate = text.partition(",")
    try:
        parsed = LaunchRate(int(burst), float(rate))
    except ValueError:
        parsed = None
    if parsed is None or parsed.burst < 1 or parsed.per_second <= 0:
        raise UsageError([Problem("--launch-rate", f"{text!r} is not BURST,PER_SECOND "
                                  "(a whole burst of at least 1 and a rate above 0)")])
    return parsed


#: What to install when moto, which the local mode runs on, is not there.
INSTALL_LOCAL = "pip install 'fanout[local]' (or make setup)"

#: What ends a local run cleanly: Ctrl-C, ``kill``, a closed terminal or dropped SSH session.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOTHING_LAUNCHED = "fanout local: interrupted before the run started; nothing launched"


def run_local(args: argparse.Namespace) -> int:
    return execute(args, None)


def execute(args: argparse.Namespace, raw: Any | None) -> int:
    """Run a spec document (``None``: the one SPEC/``--job`` name) on the local control plane,
    as ``fanout local`` does (``fanout rerun --local`` runs its rerun spec through here)."""
    import importlib.util

    if importlib.util.find_spec("moto") is None:
        raise UsageError([Problem("fanout local", f"needs moto, which is not installed: "
                                                  f"{INSTALL_LOCAL}")])
    # First of all: a signal from here on ends the run the one clean way, whatever it finds.
    stop_asked: list[Any] = []
    previous = {sig: signal.signal(sig, lambda *_: stop_asked.append(True))
                for sig in STOP_SIGNALS}
    try:
        return _run_local(args, raw, stop_asked)
    except KeyboardInterrupt:  # a Ctrl-C that came while the handlers were being swapped
        _say(NOTHING_LAUNCHED)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_local(args: argparse.Namespace, raw: Any | None, stop_asked: list[Any]) -> int:
    from rich.console import Console

    from fanout.cli.args import logical_time_iso
    from fanout.cli.render import print_json
    from fanout.cli.render_local import ProgressBar, print_summary
    from fanout.local.faults import Faults
    from fanout.local.runner import Interrupted, LocalOptions, LocalRun

    concurrency = getattr(args, "concurrency", None)
    reconcile_seconds = getattr(args, "reconcile_seconds", 1.0)
    if concurrency is not None and concurrency < 1:
        raise UsageError([Problem("--concurrency", "must be at least 1")])
    if reconcile_seconds <= 0:
        raise UsageError([Problem("--reconcile-seconds", "must be more than 0")])
    notify = getattr(args, "notify", None)
    if notify and notify != "-" and not notify.startswith(("https://", "http://")):
        raise UsageError([Problem("--notify", "takes a webhook's http(s) URL, or nothing to "
                                              "print the message")])
    logical_time = logical_time_iso(getattr(args, "logical_time", None))
    items = getattr(args, "items", None)
    options = LocalOptions(
        config_path=Path(args.config), concurrency=concurrency,
        faults=Faults.parse(getattr(args, "faults", None)),
        docker=getattr(args, "docker", False), run_id=args.run_id,
        reconcile_seconds=reconcile_seconds, records_dir=Path(args.records_dir),
        items_file=Path(items) if items else None, logical_time=logical_time,
        launch_rate=parse_launch_rate(getattr(args, "launch_rate", None)),
        task_dir=getattr(args, "task_dir", None),
    )
    if raw is None:
        raw = spec_document(args)
    from fanout.pipelines.model import is_pipeline_document

    if is_pipeline_document(raw):  # a pipeline: its steps are local runs (docs/pipelines.md)
        from fanout.cli.pipeline import run_local_pipeline

        return run_local_pipeline(args, raw)
    err = Console(stderr=True)
    show_progress = err.is_terminal and not args.json
    bar = ProgressBar(err) if show_progress else None
    local = LocalRun(options, on_progress=bar.update if bar else None)
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: local.interrupt())
    if stop_asked:
        local.interrupt()
    try:
        # stdout is the summary's: whatever the handlers print (metrics, logs) goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            if bar is not None:
                with bar:
                    summary = local.run(raw)
            else:
                summary = local.run(raw)
    except Interrupted:
        _say(NOTHING_LAUNCHED)
        return 1
    # A closed terminal (SIGHUP) cannot show the summary; its records are written already.
    with contextlib.suppress(OSError):
        if args.json:
            print_json(summary.to_json())
        else:
            print_summary(Console(), summary)
        for note in local.notes:
            print(f"fanout local: {note}", file=sys.stderr)
        notify = getattr(args, "notify", None)
        if notify and local.notification is not None:
            notify_local(notify, local.notification, sys.stderr if args.json else sys.stdout)
    return exit_for(summary.status)


def notify_local(target: str, message: dict[str, Any], out: Any) -> None:
    """Print the run's notification (``-``), or post it to the webhook URL ``target``; a
    post that fails is said on stderr (never with the URL) and does not change the exit."""
    from fanout.runtime.webhooks import WebhookFailed, body_of, kind_of_url, post, text_of

    if target == "-":
        print("\n" + text_of(message), file=out)
        return
    kind = kind_of_url(target)
    try:
        post(target, body_of(kind, message))
    except WebhookFailed as exc:
        print(f"fanout local: notification not posted: the {kind} webhook {exc}",
              file=sys.stderr)
    else:
        print(f"fanout local: notification posted to the {kind} webhook", file=sys.stderr)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr)
