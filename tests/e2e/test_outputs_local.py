"""Item outputs end to end: each item of a local run writes under its FANOUT_OUTPUT, and
what it wrote is recorded and listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fanout.cli.main import main
from tests.e2e.conftest import records_dir

pytestmark = pytest.mark.slow


def test_each_item_writes_its_own_output_and_it_is_recorded(
        e2e_stack, fanout_local, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the analyzer over three years (it writes result.json into FANOUT_OUTPUT)
    spec = tmp_path / "years.json"
    spec.write_text(json.dumps({"job": "analyzer", "params": {"year": {"range": {
        "start": 1999, "stop": 2002}}}, "command": ["-y", "{year}", "--work-seconds", "0"]}))
    # When it runs locally
    outcome = fanout_local(spec, "--config", e2e_stack)
    assert outcome.code == 0, outcome.stderr[-3000:]
    run_id = outcome.summary["run_id"]  # type: ignore[index]
    records = records_dir(tmp_path)
    # Then each item wrote into its own folder under the run's records
    for index, year in enumerate(range(1999, 2002)):
        written = records / run_id / "outputs" / str(index) / "result.json"
        assert json.loads(written.read_text())["year"] == year
    # And `fanout items --json` and `fanout outputs --json` list it, key and size
    assert main(["items", run_id, "--local", "--records-dir", str(records), "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["output"] for i in items] == [
        f"{records.resolve() / run_id / 'outputs' / str(i)}/" for i in range(3)]
    assert main(["outputs", run_id, "--local", "--records-dir", str(records), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    for item in listed:
        size = (records / run_id / "outputs" / str(item["index"]) / "result.json").stat().st_size
        assert item["outputs"] == [{"key": "result.json", "size": size}]
        assert (item["outputs_count"], item["status"]) == (1, "SUCCEEDED")
