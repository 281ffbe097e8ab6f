"""What the commands share: their common arguments, reading the spec and the config.

Commands import this module, never the root (:mod:`fanout.cli.main`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.errors import Problem, SpecError, UsageError

if TYPE_CHECKING:
    from fanout.config import FanoutConfig
    from fanout.spec.model import RunSpec


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


def add_stack_arguments(parser: argparse.ArgumentParser, *, json_flag: bool = True,
                        config: bool = True) -> None:
    parser.add_argument("--stack", metavar="NAME",
                        help="the deployed stack (default: the config's stack_name)")
    parser.add_argument("--region", metavar="REGION", help="AWS region (default: boto3's)")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON")
    if config:
        add_config_argument(parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", metavar="ID", help="the run id (default: made up)")
    parser.add_argument("--logical-time", metavar="ISO",
                        help="the run's logical time for relative dates (default: now)")


def load_config(args: argparse.Namespace) -> FanoutConfig:
    """The deployment config that ``--config`` names, its schedules' specs checked."""
    return load_config_path(args.config)


def load_config_path(path: str | Path) -> FanoutConfig:
    from fanout.config import load_config_file
    from fanout.spec.validate import check_schedule_specs

    config = load_config_file(path)
    check_schedule_specs(config)
    return config


def load_spec(args: argparse.Namespace, config: FanoutConfig) -> RunSpec:
    """The run spec from SPEC or from ``--job``/``--param``, parsed against the config."""
    from fanout.spec.validate import parse_spec

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
