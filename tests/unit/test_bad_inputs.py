"""A corpus of bad inputs, as a new user gives them: spec, config, --param, flags, files.

Each must end the same way: exit 2, one line on stderr that names the field and says the
fix, nothing launched (the local mode never reaches synthesis) and nothing written. The
table is the test: a row is a case. (tests/specs/ holds the run spec's own corpus.)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"

SPEC = {"job": "prog", "items": [{"code": 0, "sleep": 0, "fail": 0}]}
JOB_ARGS = ["--job", "prog", "--param", "code=0", "--param", "sleep=0", "--param", "fail=0"]
ANALYZER = ["--job", "analyzer"]


def config_document() -> dict[str, Any]:
    """The e2e deployment, its local commands made absolute (the tests run elsewhere)."""
    document: dict[str, Any] = json.loads((E2E / "cdk.json").read_text())
    jobs = document["context"]["fanout"]["jobs"]
    jobs["prog"]["local_command"] = [sys.executable, str(E2E / "prog.py")]
    jobs["analyzer"]["local_command"] = [sys.executable,
                                         str(ROOT / "examples" / "analyzer" / "analyzer.py")]
    return document


def fanout_context(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """A config change applied to ``context.fanout``."""
    return lambda document: change(document["context"]["fanout"])


def spec_with(**changes: Any) -> dict[str, Any]:
    return {**SPEC, **changes}


@dataclass
class Case:
    id: str
    #: The command line after ``fanout``; ``SPEC`` stands for the case's spec file, ``CONFIG``
    #: for its config file (given with --config unless the case names one).
    args: list[str]
    #: What the line must say: the field, and words of the fix.
    says: list[str]
    spec: Any = None
    #: Raw bytes for the spec file (wins over ``spec``).
    spec_bytes: bytes | None = None
    config: Callable[[dict[str, Any]], Any] | None = None
    config_bytes: bytes | None = None
    files: dict[str, bytes] = field(default_factory=dict)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(fanout: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = fanout
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return fanout_context(change)


def _schedule(**fields: Any) -> Callable[[dict[str, Any]], Any]:
    schedule = {"name": "nightly", "expression": "cron(0 2 * * ? *)",
                "spec": {"job": "prog", "items": [{"code": 0, "sleep": 0, "fail": 0}]},
                **fields}
    return _set("schedules", [schedule])


NESTED = b"[" * 100_000 + b"]" * 100_000

CASES = [
    # --- the run spec: strict types, bounds, meanings ---------------------------------
    Case("concurrency-boolean", ["expand", "SPEC"], ["max_concurrency", "whole number"],
         spec=spec_with(max_concurrency=True)),
    Case("timeout-string", ["expand", "SPEC"], ["timeout_seconds", "whole number"],
         spec=spec_with(timeout_seconds="60")),
    Case("tolerated-boolean", ["expand", "SPEC"], ["tolerated_failure_percent", "number"],
         spec=spec_with(tolerated_failure_percent=False)),
    Case("attempts-fraction", ["expand", "SPEC"], ["retry.max_attempts", "whole number"],
         spec=spec_with(retry={"max_attempts": 2.5})),
    Case("attempts-over-bound", ["expand", "SPEC"], ["retry.max_attempts", "at most"],
         spec=spec_with(retry={"max_attempts": 1000})),
    Case("delay-over-bound", ["expand", "SPEC"], ["retry.delay_seconds", "at most"],
         spec=spec_with(retry={"delay_seconds": 10**9})),
    Case("backoff-boolean", ["expand", "SPEC"], ["retry.backoff_rate", "number"],
         spec=spec_with(retry={"backoff_rate": True})),
    Case("concurrency-over-aws", ["expand", "SPEC"], ["max_concurrency", "at most"],
         spec=spec_with(max_concurrency=10**6)),
    Case("range-stop-huge", ["expand", "SPEC"], ["params.n.range.stop", "at most"],
         spec={"job": "prog", "params": {"n": {"range": {"start": 0, "stop": 10**30}}},
               "command": ["{n}"]}),
    Case("range-start-huge-negative", ["expand", "SPEC"], ["params.n.range.start", "at least"],
         spec={"job": "prog", "params": {"n": {"range": {"start": -10**30, "stop": 0}}},
               "command": ["{n}"]}),
    Case("range-start-boolean", ["expand", "SPEC"], ["params.n.range.start", "whole number"],
         spec={"job": "prog", "params": {"n": {"range": {"start": True, "stop": 3}}},
               "command": ["{n}"]}),
    Case("dates-format-collapses", ["expand", "SPEC"], ["params.d.dates.format", "same value"],
         spec={"job": "prog", "command": ["{d}"], "params": {"d": {"dates": {
             "start": "2024-01-01", "stop": "2024-01-05", "format": "%Y"}}}}),
    Case("capacity-lowercase", ["expand", "SPEC"], ["capacity", "FARGATE_SPOT"],
         spec=spec_with(capacity="fargate")),
    # --- packing (docs/decisions/0020) ----------------------------------------------
    Case("items-per-task-zero", ["expand", "SPEC"], ["items_per_task", "whole number", "auto"],
         spec=spec_with(items_per_task=0)),
    Case("items-per-task-fraction", ["expand", "SPEC"], ["items_per_task", "not 2.5"],
         spec=spec_with(items_per_task=2.5)),
    Case("items-per-task-word", ["expand", "SPEC"], ["items_per_task", '"auto"', "'many'"],
         spec=spec_with(items_per_task="many")),
    Case("per-task-concurrency-over-k", ["expand", "SPEC"],
         ["per_task_concurrency", "more than items_per_task (2)"],
         spec=spec_with(items_per_task=2, per_task_concurrency=3)),
    Case("packing-a-job-that-forbids-it", ["expand", "SPEC"],
         ["items_per_task", "packable: false"],
         spec=spec_with(items_per_task=5), config=_set("jobs.prog.packable", False)),
    Case("job-defaults-pack-an-unpackable-job", ["expand", "SPEC"],
         ["jobs.prog", "packable is false"],
         config=fanout_context(lambda f: f["jobs"]["prog"].update(
             packable=False, defaults={**f["jobs"]["prog"]["defaults"], "items_per_task": 5}))),
    # the same through `fanout local`, which runs packed specs
    Case("local-items-per-task-zero", ["local", "SPEC"], ["items_per_task", "whole number"],
         spec=spec_with(items_per_task=0)),
    Case("local-items-per-task-fraction", ["local", "SPEC"], ["items_per_task", "not 2.5"],
         spec=spec_with(items_per_task=2.5)),
    Case("local-per-task-concurrency-over-k", ["local", "SPEC"],
         ["per_task_concurrency", "more than items_per_task (2)"],
         spec=spec_with(items_per_task=2, per_task_concurrency=3)),
    Case("local-packing-a-job-that-forbids-it", ["local", "SPEC"],
         ["items_per_task", "packable: false"],
         spec=spec_with(items_per_task=5), config=_set("jobs.prog.packable", False)),
    Case("local-packed-with-docker", ["local", "SPEC", "--docker"],
         ["--docker", "items_per_task 5", "drop --docker"], spec=spec_with(items_per_task=5)),
    Case("packing-without-entrypoint", ["local", "SPEC"], ["items_per_task", "entrypoint"],
         spec=spec_with(items_per_task="auto"), config=_set("jobs.prog.entrypoint", [])),
    Case("command-a-string", ["expand", "SPEC"], ["command", "list"],
         spec=spec_with(command="--exit 0")),
    Case("environment-number", ["expand", "SPEC"], ["environment.X", "string"],
         spec=spec_with(environment={"X": 1})),
    Case("item-nested-object", ["expand", "SPEC"],
         ["items[0].code", "a string, a number or true/false"],
         spec={"job": "prog", "items": [{"code": {"a": 1}, "sleep": 0, "fail": 0}]}),
    Case("items-from-uppercase-bucket", ["expand", "SPEC"], ["items_from", "s3://"],
         spec={"job": "prog", "items_from": "s3://My_Bucket/items.json"}),
    Case("logical-time-in-spec", ["expand", "SPEC"], ["logical_time", "ISO"],
         spec=spec_with(logical_time="yesterday")),
    # --- files -----------------------------------------------------------------------
    Case("spec-not-utf8", ["expand", "SPEC"], ["spec", "UTF-8"],
         spec_bytes=b'{"job": "\xff\xfe"}'),
    Case("spec-deeply-nested", ["expand", "SPEC"], ["spec", "nested"], spec_bytes=NESTED),
    Case("spec-a-directory", ["expand", "adir"], ["spec", "is a folder"],
         files={"adir/x": b""}),
    Case("spec-missing", ["expand", "nothere.json"], ["spec", "nothere.json"]),
    Case("items-file-missing", ["expand", "SPEC", "--items", "nothere.csv"],
         ["--items", "nothere.csv"],
         spec={"job": "prog", "items_from": "s3://bucket-1/items.csv"}),
    Case("items-without-items-from", ["expand", "SPEC", "--items", "SPEC"],
         ["--items", "items_from"], spec=SPEC),
    Case("config-a-directory", ["expand", "SPEC", "--config", "adir"],
         ["--config", "is a folder"], spec=SPEC, files={"adir/x": b""}),
    Case("config-missing", ["expand", "SPEC", "--config", "nothere.json"],
         ["nothere.json", "no such file"], spec=SPEC),
    Case("config-not-utf8", ["expand", "SPEC"], ["cdk.json", "UTF-8"], spec=SPEC,
         config_bytes=b'{"context": {"fanout": {"stack_name": "\xff"}}}'),
    Case("config-a-list", ["expand", "SPEC"], ["cdk.json", "JSON object"], spec=SPEC,
         config_bytes=b"[1, 2]"),
    Case("config-context-a-list", ["expand", "SPEC"], ["context", "object"], spec=SPEC,
         config_bytes=b'{"context": []}'),
    Case("config-without-fanout", ["expand", "SPEC"], ["context.fanout", "cdk.json"],
         spec=SPEC, config_bytes=b'{"context": {}}'),
    # --- the config ------------------------------------------------------------------
    Case("log-retention-not-cloudwatch", ["expand", "SPEC"],
         ["limits.log_retention_days", "one of"], spec=SPEC,
         config=_set("limits.log_retention_days", 45)),
    Case("cron-five-fields", ["expand", "SPEC"], ["schedules[0].expression", "takes six"],
         spec=SPEC, config=_schedule(expression="cron(0 2 * * *)")),
    Case("rate-bad-unit", ["expand", "SPEC"], ["schedules[0].expression", "minutes"],
         spec=SPEC, config=_schedule(expression="rate(5 fortnights)")),
    Case("rate-singular-mismatch", ["expand", "SPEC"], ["schedules[0].expression", "rate(1 hour)"],
         spec=SPEC, config=_schedule(expression="rate(1 hours)")),
    Case("at-bad-date", ["expand", "SPEC"], ["schedules[0].expression", "yyyy-mm-ddThh:mm:ss"],
         spec=SPEC, config=_schedule(expression="at(2024-13-01T00:00:00)")),
    Case("unknown-expression", ["expand", "SPEC"], ["schedules[0].expression", "cron("],
         spec=SPEC, config=_schedule(expression="every day")),
    Case("time-zone-unknown", ["expand", "SPEC"], ["schedules[0].timezone", "IANA"],
         spec=SPEC, config=_schedule(timezone="Mars/Olympus")),
    Case("schedule-window-over", ["expand", "SPEC"],
         ["schedules[0].flexible_window_minutes", "at most 1440"], spec=SPEC,
         config=_schedule(flexible_window_minutes=2000)),
    Case("schedule-name-bad", ["expand", "SPEC"], ["schedules[0].name", "letters"],
         spec=SPEC, config=_schedule(name="night ly")),
    Case("job-cpu-not-fargate", ["expand", "SPEC"], ["jobs.prog.cpu", "Fargate"], spec=SPEC,
         config=_set("jobs.prog.cpu", 300)),
    Case("job-concurrency-boolean", ["expand", "SPEC"],
         ["jobs.prog.defaults.max_concurrency", "whole number"], spec=SPEC,
         config=_set("jobs.prog.defaults.max_concurrency", True)),
    Case("config-error-is-not-a-spec-error", ["expand", "SPEC"],
         ["invalid fanout config", "jobs.prog.memory"], spec=SPEC,
         config=_set("jobs.prog.memory", 3)),
    # --- --param ---------------------------------------------------------------------
    Case("param-dates-bad-step", ["expand", *ANALYZER, "--param", "day=2024-01-01:2024-02-01:1x"],
         ["--param day", "step"]),
    Case("param-relative-without-unit", ["expand", *ANALYZER, "--param", "d=today-7:today"],
         ["--param d", "today-7d"]),
    Case("param-empty-value", ["expand", *ANALYZER, "--param", "year=1,"],
         ["--param year", "empty"]),
    Case("param-range-step-zero", ["expand", *ANALYZER, "--param", "year=1999:2020:0"],
         ["--param year", "step"]),
    Case("param-range-backwards", ["expand", *ANALYZER, "--param", "year=2020:1999"],
         ["params.year.range", "before"]),
    Case("param-no-equals", ["expand", *ANALYZER, "--param", "year"], ["--param", "NAME=VALUE"]),
    Case("param-bad-name", ["expand", *ANALYZER, "--param", "1y=3"], ["--param", "identifier"]),
    Case("param-twice", ["expand", *ANALYZER, "--param", "year=1", "--param", "year=2"],
         ["--param year", "once"]),
    Case("param-with-spec", ["expand", "SPEC", "--param", "year=1"], ["--job", "not both"],
         spec=SPEC),
    # --- flags -----------------------------------------------------------------------
    Case("logical-time-word", ["expand", *JOB_ARGS, "--logical-time", "yesterday"],
         ["--logical-time", "ISO"]),
    Case("local-logical-time-word", ["local", *JOB_ARGS, "--logical-time", "yesterday"],
         ["--logical-time", "ISO"]),
    Case("expand-run-id-slash", ["expand", *JOB_ARGS, "--run-id", "a/b"], ["--run-id", "'/'"]),
    Case("local-run-id-dotdot", ["local", *JOB_ARGS, "--run-id", "../../x"], ["--run-id", "'/'"]),
    Case("local-concurrency-zero", ["local", *JOB_ARGS, "--concurrency", "0"],
         ["--concurrency", "at least 1"]),
    Case("local-reconcile-zero", ["local", *JOB_ARGS, "--reconcile-seconds", "0"],
         ["--reconcile-seconds", "more than 0"]),
    Case("local-fault-over-one", ["local", *JOB_ARGS, "--faults", "throttle=2"],
         ["--faults", "throttle"]),
    Case("local-fault-unknown", ["local", *JOB_ARGS, "--faults", "thunder=0.1"],
         ["--faults", "thunder"]),
    Case("local-records-dir-a-file", ["local", *JOB_ARGS, "--records-dir", "afile"],
         ["--records-dir", "is a file"], files={"afile": b"mine"}),
    Case("local-no-local-command", ["local", *JOB_ARGS], ["jobs.prog.local_command", "--docker"],
         config=_set("jobs.prog.local_command", [])),
    Case("no-spec-no-job", ["expand"], ["SPEC", "--job"]),
    Case("local-config-a-list", ["local", *JOB_ARGS], ["cdk.json", "JSON object"],
         config_bytes=b"[]"),
    # --- what AWS or the operating system would refuse later ---------------------------
    Case("nul-in-environment", ["expand", "SPEC"], ["environment.X", "NUL byte"],
         spec=spec_with(environment={"X": "a\x00b"})),
    Case("nul-in-command", ["local", "SPEC"], ["command[1]", "NUL byte", "remove it"],
         spec=spec_with(command=["--code", "0\x00"])),
    Case("nul-in-param", ["expand", *ANALYZER, "--param", "year==19\x0099"],
         ["params.year[0]", "NUL byte"]),
    Case("nul-in-item", ["expand", "SPEC"], ["items[0].fail", "NUL byte"],
         spec={"job": "prog", "items": [{"code": 0, "sleep": 0, "fail": "\x00"}]}),
    Case("nul-in-items-from", ["expand", "SPEC", "--items", "items.json"],
         ["items_from", "item 1: fail", "NUL byte"],
         spec={"job": "prog", "items_from": "s3://bucket-1/items.json"},
         files={"items.json": json.dumps([{"code": 0, "sleep": 0, "fail": 0},
                                          {"code": 0, "sleep": 0, "fail": "\x00"}]).encode()}),
    Case("nul-in-job-command", ["expand", "SPEC"], ["job prog command", "NUL byte"],
         spec=SPEC, config=_set("jobs.prog.command", ["--code", "{code}\x00"])),
    Case("exclude-matches-no-item", ["expand", "SPEC"],
         ["exclude[0]", '{"code":"0"} matches no item of items', "2020 and"],
         spec=spec_with(exclude=[{"code": "0"}])),
    Case("exclude-matches-no-item-from", ["expand", "SPEC", "--items", "items.json"],
         ["exclude[1]", "matches no item of items_from"],
         spec={"job": "prog", "items_from": "s3://bucket-1/items.json",
               "exclude": [{"code": 1}, {"code": 7}]},
         files={"items.json": json.dumps([{"code": c, "sleep": 0, "fail": 0}
                                          for c in (0, 1, 2)]).encode()}),
    Case("spec-over-execution-input", ["start", "SPEC"],
         ["spec", "over Step Functions' limit of 262,144", "items_from"],
         spec=spec_with(items=[{"code": i, "sleep": 0, "fail": 0, "note": "x" * 200}
                               for i in range(1500)])),
    Case("fault-twice", ["local", *JOB_ARGS, "--faults", "spot=0.1,seed=3,spot=0.2"],
         ["--faults", "spot: given twice"]),
    # --- argparse: one line and where to read more -------------------------------------
    Case("unknown-flag", ["start", "SPEC", "--bogus"],
         ["unrecognized arguments: --bogus", "(try 'fanout start --help')"], spec=SPEC),
    Case("missing-run", ["status"], ["RUN", "(try 'fanout status --help')"]),
    Case("bad-choice", ["items", "r", "--status", "DONE"],
         ["--status", "invalid choice", "(try 'fanout items --help')"]),
    Case("unknown-command", ["frob"], ["invalid choice: 'frob'", "(try 'fanout --help')"]),
]


def prepare(case: Case, workdir: Path) -> list[str]:
    """Write the case's config, spec and files into ``workdir``; the command line."""
    document = config_document()
    if case.config is not None:
        case.config(document)
    config = workdir / "cdk.json"
    config.write_bytes(case.config_bytes if case.config_bytes is not None
                       else json.dumps(document).encode())
    spec = workdir / "spec.json"
    if case.spec_bytes is not None:
        spec.write_bytes(case.spec_bytes)
    elif case.spec is not None:
        spec.write_text(json.dumps(case.spec))
    for name, data in case.files.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_bytes(data)
    args = [str(spec) if a == "SPEC" else a for a in case.args]
    return args if "--config" in args else [*args, "--config", str(config)]


def run(args: list[str], workdir: Path) -> tuple[int, str, str]:
    """``fanout ARGS`` in this process, from ``workdir``: exit code, stdout, stderr."""
    from fanout.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line_and_touches_nothing(case, tmp_path, monkeypatch):
    from fanout.local import synth

    def no_synthesis(*_: Any, **__: Any) -> Any:
        raise AssertionError("reached synthesis: a bad input went past the checks")

    monkeypatch.setattr(synth, "synthesize", no_synthesis)
    workdir = tmp_path / "work"
    workdir.mkdir()

    # Given the case's files
    args = prepare(case, workdir)
    before = listing(workdir)

    # When the command runs
    code, stdout, stderr = run(args, workdir)

    # Then exit 2, one line on stderr naming the field and the fix, nothing on stdout
    assert code == 2, f"exit {code}: {stderr}"
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fanout: "), lines[0]
    for words in case.says:
        assert words in lines[0], f"{words!r} not in: {lines[0]}"
    for jargon in ("pydantic", "Input should", "String should match pattern", "Traceback",
                   "errors.pydantic.dev", "type=", "[type"):
        assert jargon not in lines[0], lines[0]
    # And nothing was written: no records folder, no new file
    assert listing(workdir) == before


def test_an_unknown_run_names_where_it_was_looked_for_without_a_region(tmp_path, monkeypatch):
    # Given no local run of that id and no AWS region to find the stack in
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "cdk.json").write_text(json.dumps(config_document()))

    # When its status is asked for without --local
    code, stdout, stderr = run(["status", "prog-20260101T000000Z-abcdef"], workdir)

    # Then one line names the run, the records folder looked in, and why the stack was not
    assert (code, stdout) == (2, "")
    (line,) = stderr.strip().splitlines()
    assert "no run 'prog-20260101T000000Z-abcdef' in the local records (.fanout/runs)" in line
    assert "--region" in line and line.startswith("fanout: ")
