"""End-to-end runs of ``fanout local``: the CLI in a subprocess, as a user runs it.

The stack is synthesized once per session (per config); each run then reuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
E2E_CONFIG = HERE / "cdk.json"
SPECS = HERE / "specs"


@dataclass
class Outcome:
    code: int
    summary: dict[str, Any] | None
    stdout: str
    stderr: str

    def items(self) -> list[dict[str, Any]]:
        assert self.summary is not None, self.stderr[-3000:]
        return sorted(self.summary["items"], key=lambda i: i["index"])


def _synthesize(config: Path) -> None:
    from fanout.config import load_config_file
    from fanout.local.synth import synthesize

    synthesize(config, load_config_file(config).stack_name)


@pytest.fixture(scope="session")
def e2e_stack() -> Path:
    """The test deployment (jobs ``prog`` and ``analyzer``), synthesized once."""
    _synthesize(E2E_CONFIG)
    return E2E_CONFIG


@pytest.fixture(scope="session")
def seed_stack() -> Path:
    """The repository's own deployment (``cdk.json``), synthesized once."""
    _synthesize(ROOT / "cdk.json")
    return ROOT / "cdk.json"


def fanout_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "fanout.cli", "local", *map(str, args)]


def parse(code: int, stdout: str, stderr: str) -> Outcome:
    try:
        summary = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        summary = None
    return Outcome(code, summary, stdout, stderr)


@pytest.fixture
def pid_dir(tmp_path: Path) -> Path:
    """Where the test program writes the pid of every process it runs as."""
    path = tmp_path / "pids"
    path.mkdir()
    return path


@pytest.fixture
def fanout_local(tmp_path: Path, pid_dir: Path) -> Callable[..., Outcome]:
    """Run ``fanout local ... --json`` to its end; returns the exit code and summary."""

    def run(*args: str | Path, timeout: float = 150) -> Outcome:
        env = {**os.environ, "PROG_PID_DIR": str(pid_dir)}
        result = subprocess.run(
            fanout_command(*args, "--json", "--records-dir", records_dir(tmp_path)),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        return parse(result.returncode, result.stdout, result.stderr)

    return run


def records_dir(tmp_path: Path) -> Path:
    """Where a test's runs are written: ``.fanout/runs`` under the test's directory."""
    return tmp_path / ".fanout" / "runs"


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def pids(pid_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in pid_dir.glob("*.pid") if p.read_text().strip()]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)



def signalled_run(args: list[str | Path], sig: int, ready: Callable[[], bool], what: str, *,
                  env: dict[str, str] | None = None, ready_timeout: float = 90,
                  end_timeout: float = 60) -> tuple[int, str, str]:
    """Run ``fanout ARGS``, send it ``sig`` once ``ready()`` holds, and return its exit code,
    stdout and stderr; the process is killed if it outlives the test."""
    process = subprocess.Popen(fanout_command(*args), cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(ready, ready_timeout, what)
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=end_timeout)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stdout, stderr

@contextmanager
def moto_table(*patches: Callable[[], Callable[[], None]], keys: tuple[str, ...] = ("pk",),
               indexes: dict[str, tuple[str, ...]] | None = None) -> Iterator[Any]:
    """A DynamoDB client on emulated AWS holding table ``t``, with local-mode patches on.

    ``keys`` are the table's string key attributes (hash, then range); ``indexes`` maps
    an index name to its string key attributes. Each patch is installed on the way in and
    undone on the way out, last first.
    """
    import boto3

    from fanout.local.aws import REGION, emulated_aws

    indexes = indexes or {}

    def schema(names: tuple[str, ...]) -> list[dict[str, str]]:
        kinds = ("HASH", "RANGE")[:len(names)]
        return [{"AttributeName": n, "KeyType": k} for n, k in zip(names, kinds, strict=True)]

    attributes = sorted({*keys, *(a for names in indexes.values() for a in names)})
    with emulated_aws():
        restores = [patch() for patch in patches]
        try:
            ddb = boto3.client("dynamodb", region_name=REGION)
            table: dict[str, Any] = {
                "TableName": "t", "BillingMode": "PAY_PER_REQUEST", "KeySchema": schema(keys),
                "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"}
                                         for a in attributes]}
            if indexes:
                table["GlobalSecondaryIndexes"] = [
                    {"IndexName": name, "KeySchema": schema(names),
                     "Projection": {"ProjectionType": "ALL"}} for name, names in indexes.items()]
            ddb.create_table(**table)
            yield ddb
        finally:
            for restore in reversed(restores):
                restore()
