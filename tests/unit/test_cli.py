"""The ``fanout`` command: ``expand``, bad input, the bad-spec corpus."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanout.cli.args import param_axis
from fanout.cli.main import main

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "specs"
EXPECTED: dict[str, list[str]] = json.loads((CORPUS / "expected.json").read_text())
EXAMPLES = REPO / "examples" / "specs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# --- the bad-spec corpus --------------------------------------------------------------------


def test_the_corpus_is_large_and_fully_tabled() -> None:
    # Given the corpus directory / Then every spec has expectations, and there are enough
    files = {p.name for p in CORPUS.glob("*.json")} - {"expected.json"}
    assert files == set(EXPECTED)
    assert len(files) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_bad_spec_exits_2_naming_the_field(
    name: str, capsys: pytest.CaptureFixture[str], cdk_json: Path
) -> None:
    # Given a bad spec from the corpus
    path = CORPUS / name
    # When it is expanded
    code, out, err = run(capsys, "expand", str(path), "--config", str(cdk_json))
    # Then the exit code is 2, nothing is printed on stdout, and one message names the fields
    assert code == 2
    assert out == ""
    assert err.startswith("fanout: invalid run spec")
    assert err.count("\n") == 1, "one message, on one line"
    for mention in EXPECTED[name]:
        assert mention in err, f"{mention!r} not in {err!r}"


@pytest.mark.parametrize("name", ["unknown_placeholder.json", "over_the_cap.json",
                                  "invalid_json.json"])
def test_a_bad_spec_exits_2_as_a_real_process(name: str, cdk_json: Path) -> None:
    # Given a bad spec / When the installed command runs in its own process
    done = subprocess.run(
        [sys.executable, "-m", "fanout.cli", "expand", str(CORPUS / name),
         "--config", str(cdk_json)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    # Then it exits 2 with the message on stderr only
    assert done.returncode == 2
    assert done.stdout == ""
    assert all(m in done.stderr for m in EXPECTED[name])


# --- good specs -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count", "first", "last"), [
    ("years.json", 21,
     {"index": 0, "params": {"year": 1999}, "command": ["-y", "1999"], "environment": {}},
     {"index": 20, "params": {"year": 2019}, "command": ["-y", "2019"], "environment": {}}),
    ("matrix.json", 14,
     {"index": 0, "params": {"year": 2015, "region": "us"},
      "command": ["-y", "2015", "--region", "us"], "environment": {"REGION": "us"}},
     {"index": 13, "params": {"year": 1999, "region": "us"},
      "command": ["-y", "1999", "--region", "us"], "environment": {"REGION": "us"}}),
    ("backfill.json", 31,
     {"index": 0, "params": {"day": "2024-01-01"}, "command": ["-y", "2024"],
      "environment": {"AS_OF": "2024-01-01"}},
     {"index": 30, "params": {"day": "2024-01-31"}, "command": ["-y", "2024"],
      "environment": {"AS_OF": "2024-01-31"}}),
])
def test_the_example_specs_expand(
    name: str, count: int, first: dict[str, Any], last: dict[str, Any],
    capsys: pytest.CaptureFixture[str], cdk_json: Path,
) -> None:
    # Given an example spec
    path = str(EXAMPLES / name)
    # When expanded, and counted
    code, out, err = run(capsys, "expand", path, "--config", str(cdk_json))
    count_code, count_out, _ = run(capsys, "expand", path, "--count", "--config", str(cdk_json))
    # Then the items are the expected ones, and --count prints just their number
    items = lines(out)
    assert code == 0 and "warning" not in err  # stderr says only how its ranges were read
    assert len(items) == count
    assert items[0] == first
    assert items[-1] == last
    assert (count_code, count_out) == (0, f"{count}\n")


def test_the_matrix_example_drops_its_excludes(
    capsys: pytest.CaptureFixture[str], cdk_json: Path
) -> None:
    # Given the matrix example (apac excluded for 2015 and 2016)
    _, out, _ = run(capsys, "expand", str(EXAMPLES / "matrix.json"), "--config", str(cdk_json))
    # When its items are listed
    pairs = [(i["params"]["year"], i["params"]["region"]) for i in lines(out)]
    # Then apac starts in 2017 and the included 1999 comes last
    assert pairs[:4] == [(2015, "us"), (2015, "eu"), (2016, "us"), (2016, "eu")]
    assert pairs[4:7] == [(2017, "us"), (2017, "eu"), (2017, "apac")]
    assert pairs[-1] == (1999, "us")


def test_spec_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cdk_json: Path
) -> None:
    # Given a spec on stdin
    spec = {"job": "analyzer", "params": {"year": [2001, 2002]}}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(spec)))
    # When expanded from "-"
    code, out, _ = run(capsys, "expand", "-", "--config", str(cdk_json))
    # Then its items are printed
    assert code == 0
    assert [i["command"] for i in lines(out)] == [["-y", "2001"], ["-y", "2002"]]


def test_job_and_params_instead_of_a_file(
    capsys: pytest.CaptureFixture[str], cdk_json: Path
) -> None:
    # Given --job and every --param form
    code, out, err = run(
        capsys, "expand", "--job", "analyzer", "--config", str(cdk_json),
        "--param", "year=1999:2003:2", "--param", "region=us,eu",
        "--param", "day=2024-01-01:2024-01-03", "--param", "x=5",
    )
    # When expanded / Then the product of the axes is printed, numbers as numbers
    assert code == 0
    # (and the axes the job's `-y {year}` does not use are warned about, one line each)
    assert err.splitlines() == [
        f"fanout: warning: params.{name}: no template uses this axis, so its items differ "
        f"in nothing the task sees; put {{{name}}} in the command or the environment, or "
        "drop it" for name in ("region", "day", "x")] + [
        # (and how each range was read: its stop is not among its values)
        "fanout: params.year: 1999..2001 by 2 (stop 2003 excluded), 2 values",
        "fanout: params.day: 2024-01-01..2024-01-02 (stop 2024-01-03 excluded), 2 values"]
    items = lines(out)
    assert len(items) == 2 * 2 * 2 * 1
    assert items[0]["params"] == {"year": 1999, "region": "us", "day": "2024-01-01", "x": 5}
    assert items[-1]["params"] == {"year": 2001, "region": "eu", "day": "2024-01-02", "x": 5}


@pytest.mark.parametrize(("text", "axis"), [
    ("1999:2020", {"range": {"start": 1999, "stop": 2020}}),
    ("2020:1999:-1", {"range": {"start": 2020, "stop": 1999, "step": -1}}),
    ("us,eu", ["us", "eu"]),
    ("1,2.5,x", [1, 2.5, "x"]),
    ("2024-01-01:2024-02-01:1d", {"dates": {"start": "2024-01-01", "stop": "2024-02-01",
                                            "step": "1d"}}),
    ("today-7d:today", {"dates": {"start": "today-7d", "stop": "today"}}),
    ("2024-01-01T00:00:00Z:2024-01-02T00:00:00Z:6h",
     {"dates": {"start": "2024-01-01T00:00:00Z", "stop": "2024-01-02T00:00:00Z",
                "step": "6h"}}),
    ("5", [5]),
    ("s3://bucket/key", ["s3://bucket/key"]),
])
def test_param_forms(text: str, axis: Any) -> None:
    # Given a --param value / When read / Then it is the axis the contract says
    assert param_axis(text) == axis


@pytest.mark.parametrize(("argv", "mention"), [
    (["--param", "year"], "--param: 'year' is not NAME=VALUE"),
    (["--param", "year=1:3", "--param", "year=4"], "--param year: given twice"),
    (["--param", "year=1:3", "--param", "=4"], "--param"),
])
def test_bad_params_exit_2(
    argv: list[str], mention: str, capsys: pytest.CaptureFixture[str], cdk_json: Path
) -> None:
    # Given a bad --param / When expanded
    code, out, err = run(capsys, "expand", "--job", "analyzer", "--config", str(cdk_json),
                         *argv)
    # Then exit 2 naming it
    assert (code, out) == (2, "")
    assert mention in err


def test_spec_file_and_job_together_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], cdk_json: Path
) -> None:
    code, out, err = run(capsys, "expand", str(EXAMPLES / "years.json"), "--job", "analyzer",
                         "--config", str(cdk_json))
    assert (code, out) == (2, "")
    assert "--job" in err


def test_no_spec_at_all_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], cdk_json: Path
) -> None:
    code, out, err = run(capsys, "expand", "--config", str(cdk_json))
    assert (code, out) == (2, "")
    assert "SPEC" in err


def test_argparse_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Given an unknown option / When run / Then argparse's own exit 2
    with pytest.raises(SystemExit) as exc:
        main(["expand", "--no-such-option"])
    assert exc.value.code == 2
    assert capsys.readouterr().out == ""


def test_no_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    assert "give a command" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("fanout 0.")


def test_logical_time_and_run_id_reach_the_items(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cdk_json: Path
) -> None:
    # Given a relative backfill whose command names the run
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"job": "analyzer", "params": {
        "day": {"dates": {"start": "today-2d", "stop": "today"}}},
        "command": ["{day}", "{run_id}"]}))
    # When expanded at a logical time with a run id
    code, out, _ = run(capsys, "expand", str(spec), "--config", str(cdk_json),
                       "--logical-time", "2024-03-10T23:59:00Z", "--run-id", "nightly-1")
    # Then the days are those before the logical day, and the run id is rendered
    assert code == 0
    assert [i["command"] for i in lines(out)] == [["2024-03-08", "nightly-1"],
                                                  ["2024-03-09", "nightly-1"]]


def test_a_bad_logical_time_exits_2(capsys: pytest.CaptureFixture[str], cdk_json: Path) -> None:
    code, out, err = run(capsys, "expand", str(EXAMPLES / "years.json"), "--config",
                         str(cdk_json), "--logical-time", "last tuesday")
    assert (code, out) == (2, "")
    assert "--logical-time" in err


def test_items_from_with_a_local_copy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cdk_json: Path
) -> None:
    # Given a spec reading items from S3, and a local copy of the object
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"job": "analyzer", "items_from": "s3://bucket-a/years.jsonl"}))
    copy = tmp_path / "years.jsonl"
    copy.write_text('{"year": 2001}\n{"year": 2002}\n')
    # When expanded without the copy, and with it
    without = run(capsys, "expand", str(spec), "--config", str(cdk_json))
    code, out, _ = run(capsys, "expand", str(spec), "--items", str(copy),
                       "--config", str(cdk_json))
    # Then without it the error names items_from; with it the items expand
    assert without[0] == 2
    assert "items_from" in without[2]
    assert code == 0
    assert [i["command"] for i in lines(out)] == [["-y", "2001"], ["-y", "2002"]]


def test_a_bad_config_exits_2_naming_its_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a cdk.json whose job has a cpu Fargate does not offer
    bad = tmp_path / "cdk.json"
    bad.write_text(json.dumps({"context": {"fanout": {"jobs": {"analyzer": {"cpu": 300}}}}}))
    # When expanding against it
    code, out, err = run(capsys, "expand", str(EXAMPLES / "years.json"), "--config", str(bad))
    # Then exit 2 naming the job's field
    assert (code, out) == (2, "")
    assert "invalid fanout config: fanout.jobs.analyzer.cpu: 300 is not a Fargate task size" \
        in err


def test_the_config_comes_from_fanout_config_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    cdk_json: Path,
) -> None:
    # Given FANOUT_CONFIG naming the repository's cdk.json, run from elsewhere
    monkeypatch.setenv("FANOUT_CONFIG", str(cdk_json))
    monkeypatch.chdir(tmp_path)
    # When expanding without --config
    code, out, _ = run(capsys, "expand", str(EXAMPLES / "years.json"), "--count")
    # Then the config was found
    assert (code, out) == (0, "21\n")


def test_local_without_moto_says_what_to_install(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a machine without moto (the [local] extra not installed)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "moto" else real(name, *a))
    # When `fanout local` is asked for a run
    code, out, err = run(capsys, "local", str(EXAMPLES / "years.json"))
    # Then it exits 2, naming what to install, and runs nothing
    assert code == 2 and out == ""
    assert "needs moto" in err and "pip install 'fanout[local]'" in err
