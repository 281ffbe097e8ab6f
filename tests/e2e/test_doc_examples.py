"""Every example in README.md and docs/ does what the page says it does.

The fenced blocks are read from the pages themselves: a command is run (``fanout expand``
for real; ``fanout local`` against the local mode, with placeholders such as ``spec.json``
given a small real file; a command for a deployed stack is parsed, and its spec expanded),
a spec is expanded, a config fragment is loaded, an output shown is compared with what
the command prints. A block this file does not know how to check fails the test, so a new
example is checked from the day it is written.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT

#: The user's pages (docs/decisions/ holds design records, whose blocks are sketches).
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

#: Commands that need a real AWS account or a Docker engine: shown, never run here.
NOT_RUN_HERE = {
    "node_modules/.bin/cdk": "deploys to (or bootstraps) an AWS account",
    "aws": "the AWS CLI against a real account",
    "docker": "needs a Docker engine and a registry",
    "eval": "runs the push commands a deployed stack printed",
    "cd": "a change of folder for the commands after it",
    "export": "sets the shell's AWS profile and region",
}
#: Placeholders in examples, and the real thing a test gives in their place.
SMALL_SPEC = {"job": "analyzer", "params": {"year": {"range": {"start": 1999, "stop": 2002}}}}
#: Error messages shown in the docs, with the input that the page says produces each.
ERROR_EXAMPLES = {
    "fanout: invalid run spec (2 problems): job: unknown job 'analyser'": {
        "job": "analyser", "params": {"year": {"range": {"start": 1999, "stop": 1990}}}},
}
#: Subcommands that act on a deployed stack (or, with --local, on local runs).
DEPLOYED = {"start", "status", "items", "runs", "logs", "rerun", "stop", "ui"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> Iterator[Block]:
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            yield Block(page, text.count("\n", 0, match.start()) + 1, match[1], match[2])


def commands(block: Block) -> list[tuple[list[str], str]]:
    """The block's command lines (continuations joined) as argv, each with its comment."""
    joined = block.text.replace("\\\n", " ")
    found = []
    for raw in joined.splitlines():
        line, _, comment = raw.partition("#")
        if not line.strip():
            continue
        line = line.split("|")[0]  # `| head -2`, `| jq .failed`: what the shell adds
        found.append((shlex.split(line), comment.strip()))
    return found


def is_command_block(block: Block) -> bool:
    first = block.text.lstrip().split(None, 1)[0] if block.text.strip() else ""
    return block.lang in ("sh", "bash", "shell", "console") or first in (
        "fanout", ".venv/bin/fanout", "make")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def fanout(*args: str, stdin: str | None = None) -> Result:
    """``fanout ARGS`` in this process (as fast as ``fanout expand`` gets), from ROOT."""
    import contextlib
    import io
    import os

    from fanout.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_stdin, cwd = sys.stdin, os.getcwd()
    sys.stdin = io.StringIO(stdin or "")
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.stdin = saved_stdin
        os.chdir(cwd)
    return Result(code, out.getvalue(), err.getvalue())


def fanout_process(*args: str, timeout: float = 180) -> Result:
    """``fanout ARGS`` as its own process (what the local mode needs: signals, moto)."""
    result = subprocess.run([sys.executable, "-m", "fanout.cli", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout, check=False)
    return Result(result.returncode, result.stdout, result.stderr)


ALL = list(blocks())


def test_the_pages_have_examples():
    # A page parser that finds nothing would make every test below pass vacuously.
    assert len(ALL) >= 20
    assert sum(is_command_block(b) for b in ALL) >= 8


# --- classification: every block is checked by one of the tests below ----------------------


def kind(block: Block) -> str:
    text = block.text.strip()
    if block.lang == "mermaid":
        return "diagram"
    if is_command_block(block):
        return "commands"
    if text.startswith("fanout: "):
        return "error"
    if text.startswith("run ") and "┏" in text:
        return "table"
    if text.startswith('{"index":'):
        return "expand-line"
    if block.lang == "json":
        return "json"
    if block.lang == "python":
        return "python"
    if re.match(r"^[\w.]+(, [\w.]+)*/? +\S", text) and "/" in text:
        return "tree"
    return "unknown"


@pytest.mark.parametrize("block", ALL, ids=str)
def test_every_block_is_one_this_file_checks(block):
    assert kind(block) != "unknown", f"{block}: teach tests/e2e/test_doc_examples.py this " \
                                     f"example:\n{block.text}"


# --- commands ----------------------------------------------------------------------------


def command_lines(local: bool = False) -> list[tuple[Block, list[str], str]]:
    """Every command line; ``fanout local`` ones only when ``local`` (they run apart)."""
    return [(b, argv, comment) for b in ALL if kind(b) == "commands"
            for argv, comment in commands(b)
            if local or (fanout_args(argv) or [""])[0] != "local"]


def fanout_args(argv: list[str]) -> list[str] | None:
    if argv and argv[0] in ("fanout", ".venv/bin/fanout"):
        return argv[1:]
    return None


@pytest.mark.parametrize(("block", "argv", "comment"), command_lines(),
                         ids=[f"{b}:{' '.join(a)[:60]}" for b, a, _ in command_lines()])
def test_command(block, argv, comment, tmp_path, request):
    args = fanout_args(argv)
    if args is None:
        if argv[0] == "make":
            targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M)
            assert argv[1] in targets, f"{block}: no make target {argv[1]}"
            return
        assert argv[0] in NOT_RUN_HERE, f"{block}: unknown command {argv}"
        return
    sub = args[0]
    if sub == "expand":
        result = fanout(*args)
        assert result.returncode == 0, f"{block}: {result.stderr}"
        if "--count" in args and comment.isdigit():
            assert result.stdout.strip() == comment, f"{block}: says {comment}"
        return
    assert sub in DEPLOYED, f"{block}: unknown subcommand {sub}"
    import contextlib
    import io

    from fanout.cli.main import build_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            build_parser().parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"{block}: `fanout {' '.join(args)}` does not parse (exit {exc.code}): "
                    f"{err.getvalue()}")
    if sub == "start":  # what it would send is checked as `fanout expand` checks it
        spec_args = [a for a in args[1:] if a not in ("--wait", "--json")]
        result = fanout("expand", "--count", *spec_args)
        assert result.returncode == 0, f"{block}: {result.stderr}"


def local_commands() -> list[tuple[Block, list[str]]]:
    """Each distinct ``fanout local`` command of the pages once (with the first page)."""
    found: list[tuple[Block, list[str]]] = []
    for block, argv, _ in command_lines(local=True):
        args = fanout_args(argv)
        if args and args[0] == "local":
            found.append((block, args))
        elif argv[:2] == ["make", "demo"]:
            recipe = re.search(r"^demo:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.M)
            assert recipe is not None
            found.append((block, shlex.split(recipe[1])[1:]))
    distinct: dict[tuple[str, ...], tuple[Block, list[str]]] = {}
    for block, args in found:
        distinct.setdefault(tuple(args), (block, args))
    return list(distinct.values())


@pytest.mark.slow
@pytest.mark.parametrize(("block", "args"), local_commands(),
                         ids=[f"{b}:{' '.join(a)[:60]}" for b, a in local_commands()])
def test_local_command(block, args, seed_stack, tmp_path):
    # Placeholders become real files: spec.json a small spec, other/cdk.json a copy of the
    # deployment config.
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SMALL_SPEC))
    other = ROOT / "cdk.json"
    real = [str(spec) if a == "spec.json" else str(other) if a == "other/cdk.json" else a
            for a in args]
    result = fanout_process(*real, "--records-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, f"{block}: {result.stderr[-3000:]}"
    if "--json" in real:
        summary = json.loads(result.stdout)
        assert summary["status"] == "SUCCEEDED"
    else:
        assert "SUCCEEDED:" in result.stdout
        _compare_with_readme_table(result.stdout)


def _compare_with_readme_table(output: str) -> None:
    """The README's table has the columns and the closing lines the real one has."""
    (shown,) = [b for b in ALL if kind(b) == "table"]
    lines = shown.text.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    got = next(line for line in output.splitlines() if line.startswith("┃"))
    assert header.split() == got.split(), (header, got)
    pattern = re.compile(r"SUCCEEDED: \d+ items, \d+ succeeded, 0 failed, 0 timed out, "
                         r"0 aborted in [\d.]+s")
    assert pattern.match(next(line for line in lines if line.startswith("SUCCEEDED")))
    assert pattern.search(output)
    assert "records, logs and this summary:" in output  # (the path may wrap)


# --- specs, fragments, outputs ------------------------------------------------------------


def json_blocks() -> list[Block]:
    return [b for b in ALL if kind(b) == "json"]


def _json_of(block: Block) -> Any:
    text = block.text.strip()
    if text.startswith('"'):  # a fragment of an object (``"schedules": [...]``)
        text = "{" + text + "}"
    return json.loads(text)


@pytest.mark.parametrize("block", json_blocks(), ids=str)
def test_json_example(block, tmp_path):
    document = _json_of(block)
    if "schedules" in document:  # a config fragment: the config with it loads everywhere
        config = json.loads((ROOT / "cdk.json").read_text())
        config["context"]["fanout"].update(document)
        path = tmp_path / "cdk.json"
        path.write_text(json.dumps(config))
        for schedule in document["schedules"]:
            if "pipeline" in schedule:  # a configured pipeline's: the config loads, checked
                from fanout.cli.args import load_config_path

                assert schedule["pipeline"] in load_config_path(path).pipelines, str(block)
                continue
            result = fanout("expand", "--count", "--config", str(path), "-",
                            stdin=json.dumps(schedule["spec"]))
            assert result.returncode == 0, f"{block}: {result.stderr}"
        return
    if "cost" in document:  # the config's price overrides: they load, and price a run
        from fanout.config import load_config_file
        from fanout.cost import prices_for

        config = json.loads((ROOT / "cdk.json").read_text())
        config["context"]["fanout"].update(document)
        path = tmp_path / "cdk.json"
        path.write_text(json.dumps(config))
        overrides = load_config_file(path).cost.prices
        for region, fields in document["cost"]["prices"].items():
            priced = prices_for(region, overrides).model_dump()
            for key, value in fields.items():
                merged = {**priced[key], **value} if isinstance(value, dict) else value
                assert priced[key] == merged, f"{block}: {region} {key}"
        return
    if {"notifications", "secrets", "dashboard"} & set(document):  # config fragments: they load
        from fanout.config import load_config

        config = json.loads((ROOT / "cdk.json").read_text())["context"]["fanout"]
        if "secrets" in document:  # a job's
            config["jobs"]["analyzer"].update(document)
        else:
            config.update(document)
        load_config(config)
        return
    if "steps" in document:  # a pipeline: it passes its checks against cdk.json
        from fanout.config import load_config_file
        from fanout.pipelines.validate import parse_pipeline

        parse_pipeline(document, load_config_file(ROOT / "cdk.json"))
        return
    if "rerun_of" in document:
        from fanout.spec.model import RerunSpec

        RerunSpec.model_validate(document)
        return
    if "job" not in document:  # a part of a spec: on the matrix example's job and axes
        base = json.loads((ROOT / "examples" / "specs" / "matrix.json").read_text())
        document = {"job": base["job"], "params": base["params"], **document}
    result = fanout("expand", "--count", "-", stdin=json.dumps(document))
    assert result.returncode == 0, f"{block}: {result.stderr}"
    assert int(result.stdout) > 0


@pytest.mark.parametrize("block", [b for b in ALL if kind(b) == "expand-line"], ids=str)
def test_expand_output_example_is_what_expand_prints(block):
    shown = [json.loads(line) for line in block.text.strip().splitlines()]
    result = fanout("expand", "examples/specs/matrix.json")
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    for line in shown:
        assert line in printed, f"{block}: not printed by fanout expand: {line}"


@pytest.mark.parametrize("block", [b for b in ALL if kind(b) == "error"], ids=str)
def test_error_example_is_what_the_cli_says(block):
    shown = block.text.strip()
    spec = next((s for prefix, s in ERROR_EXAMPLES.items() if shown.startswith(prefix)), None)
    assert spec is not None, f"{block}: add the input of this error to ERROR_EXAMPLES"
    result = fanout("expand", "-", stdin=json.dumps(spec))
    assert result.returncode == 2
    assert result.stderr.strip() == shown


@pytest.mark.parametrize("block", [b for b in ALL if kind(b) == "python"], ids=str)
def test_python_example_imports_what_is_there(block):
    import ast
    import importlib

    tree = ast.parse(block.text)  # it is Python
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imports, f"{block}: a Python example imports what it uses"
    for node in imports:
        module = importlib.import_module(str(node.module))
        for alias in node.names:
            assert hasattr(module, alias.name), f"{block}: {node.module} has no {alias.name}"


@pytest.mark.parametrize("block", [b for b in ALL if kind(b) == "tree"], ids=str)
def test_file_tree_names_what_is_there(block):
    for line in block.text.splitlines():
        head = line.split("  ")[0].strip()
        for name in filter(None, (n.strip() for n in head.split(","))):
            assert (ROOT / name).exists(), f"{block}: {name} does not exist"
