"""The ``fanout`` command.

Each subcommand is an ``add_<name>(subparsers)`` function that declares its arguments and
sets ``func`` to a small ``run_<name>(args) -> int``; :data:`COMMANDS` lists them. Heavy
modules are imported inside the run functions, so ``fanout expand`` starts quickly.

Exit codes: 0 success, 1 the run failed, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.errors import FanoutInputError, Problem, SpecError, UsageError

if TYPE_CHECKING:
    from fanout.config import FanoutConfig
    from fanout.spec import RunSpec

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2



# --- shared arguments --------------------------------------------------------------------


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH",
        default=os.environ.get("FANOUT_CONFIG", "cdk.json"),
        help="the deployment config (cdk.json; default $FANOUT_CONFIG or ./cdk.json)",
    )


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """SPEC (a file or ``-`` for stdin), or ``--job J --param k=v ...`` instead."""
    parser.add_argument("spec", nargs="?", metavar="SPEC",
                        help="run spec JSON file, or - for stdin")
    parser.add_argument("--job", metavar="J", help="the job, instead of a SPEC file")
    parser.add_argument(
        "--param", action="append", default=[], metavar="K=V",
        help="an axis, with --job: year=1999:2020[:step], region=us,eu, "
             "day=2024-01-01:2024-02-01:1d, x=5",
    )
    add_config_argument(parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", metavar="ID", help="the run id (default: made up)")
    parser.add_argument("--logical-time", metavar="ISO",
                        help="the run's logical time for relative dates (default: now)")


def load_config(args: argparse.Namespace) -> FanoutConfig:
    from fanout.config import load_config_file

    return load_config_file(args.config)


def load_spec(args: argparse.Namespace, config: FanoutConfig) -> RunSpec:
    """The run spec from SPEC or from ``--job``/``--param``, parsed against the config."""
    from fanout.spec import parse_spec

    return parse_spec(spec_document(args), config)


def spec_document(args: argparse.Namespace) -> Any:
    """The raw run spec (not yet validated) that the arguments give."""
    if args.spec is not None and (args.job or args.param):
        raise UsageError([Problem("--job", "give a SPEC file or --job/--param, not both")])
    if args.spec is None:
        if not args.job:
            raise UsageError([Problem("SPEC", "give a run spec file (or -), or --job")])
        document: dict[str, Any] = {"job": args.job}
        if args.param:
            document["params"] = parse_params(args.param)
        return document
    return read_json(args.spec, "spec")


def read_json(path: str, field: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise SpecError([Problem(field, f"cannot read {path}: {exc.strerror}")]) from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise SpecError([Problem(field, f"{path} is not valid JSON ({exc})")]) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_INSTANT = (
    r"(?:\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|(?:today|now)(?:[+-]\d+[wdhm])?)"
)
_DATES = re.compile(rf"({_INSTANT}):({_INSTANT})(?::(\d+[wdhm]))?")
_RANGE = re.compile(r"([+-]?\d+):([+-]?\d+)(?::([+-]?\d+))?")


def scalar(text: str) -> str | int | float:
    """A ``--param`` value: numbers become numbers, anything else stays text."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``--param`` values as the ``params`` of a run spec; bad ones raise UsageError."""
    params: dict[str, Any] = {}
    problems: list[Problem] = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            problems.append(Problem("--param", f"{pair!r} is not NAME=VALUE"))
            continue
        if name in params:
            problems.append(Problem(f"--param {name}", "given twice"))
            continue
        params[name] = param_axis(value)
    if problems:
        raise UsageError(problems)
    return params


def param_axis(value: str) -> Any:
    """``1999:2020[:step]`` a range, ``a:b[:1d]`` dates, ``a,b`` a list, else one value."""
    match = _RANGE.fullmatch(value)
    if match:
        axis: dict[str, int] = {"start": int(match[1]), "stop": int(match[2])}
        if match[3] is not None:
            axis["step"] = int(match[3])
        return {"range": axis}
    match = _DATES.fullmatch(value)
    if match:
        dates = {"start": match[1], "stop": match[2]}
        if match[3] is not None:
            dates["step"] = match[3]
        return {"dates": dates}
    return [scalar(v) for v in value.split(",")]


def parse_logical_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError([Problem(
            "--logical-time", f"{text!r} is not an ISO date or datetime"
        )]) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def new_run_id(job: str) -> str:
    """A run id unique enough for a person starting runs by hand: job, time, random."""
    import secrets

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{job}-{stamp}-{secrets.token_hex(3)}"[:80]


# --- expand ------------------------------------------------------------------------------


def add_expand(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "expand", help="validate a run spec and print its items as JSON Lines (no AWS)",
        description="Validate a run spec and print its items as JSON Lines: "
                    "index, params, command, environment.",
    )
    add_spec_arguments(parser)
    add_run_arguments(parser)
    parser.add_argument("--count", action="store_true", help="print only the item count")
    parser.add_argument(
        "--items", metavar="PATH",
        help="for a spec with items_from: a local copy of the object (JSON, JSON Lines, CSV)",
    )
    parser.set_defaults(func=run_expand)


def run_expand(args: argparse.Namespace) -> int:
    from fanout.expand import plan_run, read_items

    config = load_config(args)
    spec = load_spec(args, config)
    items = None
    if args.items is not None:
        fmt = spec.source_format()
        if fmt is None:
            raise UsageError([Problem("--items", "the spec has no items_from")])
        try:
            data = sys.stdin.buffer.read() if args.items == "-" else Path(args.items).read_bytes()
        except OSError as exc:
            raise UsageError([Problem("--items", f"cannot read {args.items}: {exc.strerror}")]) \
                from None
        items = read_items(data, fmt)
    plan = plan_run(
        spec, config, run_id=args.run_id or "expand",
        logical_time=parse_logical_time(args.logical_time), items=items,
    )
    out = sys.stdout
    if args.count:
        out.write(f"{plan.count}\n")
        return EXIT_OK
    write = out.write
    batch: list[str] = []
    for line in plan.json_lines():
        batch.append(line)
        if len(batch) >= 4096:
            batch.append("")
            write("\n".join(batch))
            batch.clear()
    if batch:
        batch.append("")
        write("\n".join(batch))
    out.flush()
    return EXIT_OK


# --- local (the local mode lives in fanout/local/) ----------------------------------------


def add_local(subparsers: Any) -> None:
    from fanout.local.cli import add_local as add

    add(subparsers)


# --- start, status, items, runs, logs, rerun (a deployed stack: fanout/remote.py) --------


def add_remote(subparsers: Any) -> None:
    from fanout.remote import add_commands

    add_commands(subparsers)


def add_runs(subparsers: Any) -> None:
    from fanout.cli_runs import add_commands

    add_commands(subparsers)


# --- the command -------------------------------------------------------------------------

#: Every subcommand's ``add_<name>``; a new subcommand is one function and one entry here.
COMMANDS: list[Callable[[Any], None]] = [add_expand, add_local, add_remote, add_runs]


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("fanout")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    # Lazy: the package metadata is read only when --version is asked for.
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"fanout {version()}")
        parser.exit(EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fanout",
        description="Run one container many times in parallel on AWS Fargate.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_usage(sys.stderr)
        print("fanout: error: give a command", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return func(args)
    except FanoutInputError as exc:
        print(f"fanout: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader went away (``| head``): not an error of the run; silence the flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
