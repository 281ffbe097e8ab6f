"""A rerun runs what its run ran, whatever the folder's cdk.json says now (issue 25).

The seed's case: an analyzer over a range of years where one year fails. The user then
points the folder's cdk.json at another program (the sample analyzer, which succeeds for
every year) and reruns the failed year: the rerun must run the recorded program, and
still fail, unless the current config is asked for — and then say so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E_CONFIG, ROOT

pytestmark = pytest.mark.slow

BROKEN = '''import sys
year = int(sys.argv[sys.argv.index("-y") + 1])
print(f"analyzing {year}", flush=True)
sys.exit(3 if year == 2003 else 0)
'''


def fanout(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fanout.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def as_json(done: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    assert done.returncode == code, done.stderr[-3000:]
    return json.loads(done.stdout)


def point_analyzer_at(config: Path, local_command: list[str]) -> None:
    document = json.loads(E2E_CONFIG.read_text())
    document["context"]["fanout"]["jobs"]["analyzer"]["local_command"] = local_command
    config.write_text(json.dumps(document, indent=2))


def test_a_rerun_runs_the_recorded_program_not_the_folders(tmp_path: Path) -> None:
    # Given a project whose cdk.json runs an analyzer that fails for 2003
    project = tmp_path / "project"
    project.mkdir()
    (project / "broken.py").write_text(BROKEN)
    config = project / "cdk.json"
    point_analyzer_at(config, [sys.executable, "broken.py"])
    spec = project / "years.json"
    spec.write_text(json.dumps({"job": "analyzer", "retry": {"max_attempts": 1},
                                "params": {"year": {"range": {"start": 2001,
                                                              "through": 2004}}}}))
    runs = project / ".fanout" / "runs"
    where = ("--local", "--records-dir", runs, "--config", config)
    first = as_json(fanout("local", spec, "--json", "--config", config, "--records-dir", runs,
                           cwd=project), code=1)
    run_id = first["run_id"]
    assert [(i["params"]["year"], i["status"]) for i in first["items"]] == [
        (2001, "SUCCEEDED"), (2002, "SUCCEEDED"), (2003, "FAILED"), (2004, "SUCCEEDED")]

    # When the folder's cdk.json is changed to the sample analyzer, and 2003 is rerun
    point_analyzer_at(config, [sys.executable, str(ROOT / "examples" / "analyzer"
                                                   / "analyzer.py"), "--work-seconds", "0"])
    rerun = fanout("rerun", run_id, "--failed", "--json", *where, cwd=project)

    # Then the rerun ran the recorded program, which still fails, and it said the folder's
    # config differs
    child = as_json(rerun, code=1)
    assert [(i["params"], i["status"]) for i in child["items"]] == [
        ({"year": 2003}, "FAILED")]
    assert "with the config it was made with" in rerun.stderr
    assert "local_command" in rerun.stderr and "broken.py" in rerun.stderr

    # And the item keeps its identity: its key, and its index in the first run
    (item,) = as_json(fanout("items", child["run_id"], "--json", *where, cwd=project))
    (parent_item,) = [i for i in as_json(fanout("items", run_id, "--json", *where,
                                                cwd=project)) if i["index"] == 2]
    assert (item["index"], item["original_index"], item["key"]) == (0, 2, parent_item["key"])

    # And the status of the first run answers for it and its rerun: 2003 still failed
    chain = as_json(fanout("status", run_id, "--json", *where, cwd=project))["across_reruns"]
    assert chain["runs"] == [run_id, child["run_id"]]
    assert (chain["total"], chain["succeeded"], chain["succeeded_on_rerun"]) == (4, 3, 0)
    assert [(m["index"], m["status"], m["run_id"]) for m in chain["not_succeeded"]] == [
        (2, "FAILED", child["run_id"])]

    # And the dashboard's rerun button (LocalRuns.rerun, in the background) takes the same
    # path: the recorded program, which still fails
    from fanout.runs.local import LocalRuns

    button = LocalRuns(runs, config)
    clicked = button.rerun(run_id, failed_only=True, indexes=None)
    ended = button.wait(clicked, timeout=240)
    assert ended is not None and ended["status"] == "FAILED", ended
    assert [i["status"] for i in button.list_items(clicked)] == ["FAILED"]

    # When the current config is asked for
    current = fanout("rerun", run_id, "--failed", "--current-config", "--json", *where,
                     cwd=project)

    # Then it says so, shows the difference, and runs the folder's program (which succeeds)
    assert as_json(current)["status"] == "SUCCEEDED"
    assert "with the current config" in current.stderr
    assert "analyzer.py" in current.stderr

    # And the first run's status now answers: every year succeeded, one on rerun
    text = fanout("status", run_id, *where, cwd=project)
    assert text.returncode == 0, text.stderr
    assert f"across run {run_id} and its 3 reruns: 4 of 4 items succeeded, 1 on rerun" \
        in text.stdout
