"""The ``fanout`` command: the root parser, built from a list of command modules.

Each command module has ``add(subparsers)``, which declares its arguments and sets
``func`` to a small ``run_<name>(args) -> int``; :data:`COMMANDS` lists them, and a new
command is one module and one entry here. Heavy modules are imported inside the run
functions, so ``fanout expand`` starts quickly. Exit codes: :mod:`fanout.cli.exits`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from fanout.cli import expand, local, outputs, remote, rerun, runs, ui
from fanout.cli.exits import EXIT_BAD_INPUT, EXIT_OK
from fanout.errors import FanoutInputError

#: Every command module's ``add``; a new command is one module and one entry here.
COMMANDS: list[Callable[[Any], None]] = [expand.add, local.add, remote.add, runs.add,
                                         outputs.add, rerun.add, ui.add]


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


class Parser(argparse.ArgumentParser):
    """argparse with a usage error in one line and where to read more, not the whole usage
    (exit 2, as every bad input)."""

    #: The root's command parsers by name (an unknown argument is said by its command's).
    commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        root = self.prog.split()[0]
        print(f"{root}: error: {message} (try '{self.prog} --help')", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> Parser:
    parser = Parser(
        prog="fanout",
        description="Run one container many times in parallel on AWS Fargate.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    parser.commands = dict(subparsers.choices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Said by the command's parser, so the hint names the command's --help.
        words = list(sys.argv[1:] if argv is None else argv)
        command = next((parser.commands[w] for w in words if w in parser.commands), parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        print("fanout: error: give a command (try 'fanout --help')", file=sys.stderr)
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

