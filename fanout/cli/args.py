"""What the commands share: their common arguments, reading the spec and the config.

Commands import this module, never the root (:mod:`fanout.cli.main`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.cli import params
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
    from fanout.pipelines.validate import check_pipelines
    from fanout.spec.validate import check_schedule_specs

    config = load_config_file(path)
    check_schedule_specs(config)
    check_pipelines(config)
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
    """A JSON file (``-``: stdin) that a user gives; anything wrong is one clear problem."""
    if path != "-" and Path(path).is_dir():
        raise SpecError([Problem(field, f"{path} is a folder; give the {field}'s JSON file")])
    try:
        data = _stdin_bytes() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise SpecError([Problem(field, f"cannot read {path}: {exc.strerror}; check the "
                                        "path")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(field, f"{path} is not UTF-8 text (byte {exc.start}); save "
                                        "it as UTF-8")]) from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise SpecError([Problem(field, f"{path} is nested too deeply; a {field} is a few "
                                        "levels of objects and lists")]) from None
    except ValueError as exc:
        raise SpecError([Problem(field, f"{path} is not valid JSON ({exc})")]) from None


def _stdin_bytes() -> bytes:
    stream = getattr(sys.stdin, "buffer", None)  # a text stand-in (tests) has no buffer
    return stream.read() if stream is not None else sys.stdin.read().encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# --param: fanout/cli/params.py (re-exported here, where commands take their arguments).
scalar, parse_params, param_axis = params.scalar, params.parse_params, params.param_axis


def parse_logical_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError([Problem(
            "--logical-time", f"{text!r} is not an ISO date or datetime; write e.g. "
                              "2024-01-31 or 2024-01-31T02:00:00Z"
        )]) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def check_run_id(run_id: str | None) -> None:
    """Refuse a ``--run-id`` that is no Step Functions execution name (UsageError)."""
    from fanout.names import run_id_problem

    problem = None if run_id is None else run_id_problem(run_id)
    if problem:
        raise UsageError([problem])


def logical_time_iso(text: str | None) -> str | None:
    """``--logical-time`` checked and written as the spec's ``logical_time`` (UTC, ``Z``)."""
    when = parse_logical_time(text)
    return None if when is None else when.isoformat().replace("+00:00", "Z")
