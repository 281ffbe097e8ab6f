"""Reruns hold to what their run recorded, and items keep their identity across them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fanout.config import FanoutConfig
from fanout.errors import SpecError
from fanout.local.made_with import differences
from fanout.records.model import ItemRecord, RunRecord
from fanout.runs.chain import across, across_text, item_key, with_identity
from fanout.runtime.rerun import resolve_rerun
from fanout.spec.model import resolve
from fanout.spec.validate import parse_spec
from fanout.testing.records import MemoryRecords

SPEC = {"job": "analyzer", "params": {"year": {"range": {"start": 2001, "through": 2003}}}}


def parent_run(config: FanoutConfig, store: MemoryRecords) -> None:
    """A finished run of SPEC whose item 1 (2002) failed, its settings as Expand records."""
    settings = resolve(parse_spec(SPEC, config), config.jobs["analyzer"])
    store.runs["parent"] = RunRecord(
        run_id="parent", job="analyzer", status="FAILED", started_at="2026-01-01T00:00:00Z",
        total=3, settings=json.loads(settings.model_dump_json()))
    for index, status in enumerate(["SUCCEEDED", "FAILED", "SUCCEEDED"]):
        store.item_records[("parent", index)] = ItemRecord(
            "parent", index, status, params={"year": 2001 + index})  # type: ignore[arg-type]


def test_a_run_records_its_jobs_image_tag(config: FanoutConfig) -> None:
    settings = resolve(parse_spec(SPEC, config), config.jobs["analyzer"])
    assert settings.image_tag == config.jobs["analyzer"].image_tag


def test_a_rerun_of_a_job_changed_since_is_refused_unless_the_current_config_is_asked(
        config: FanoutConfig, make_config: Any) -> None:
    # Given a run made with the job's image "latest", and a deployment now on "v2"
    store = MemoryRecords()
    parent_run(config, store)
    redeployed = make_config(image_tag="v2").jobs

    # When its failed items are rerun
    with pytest.raises(SpecError) as refused:
        resolve_rerun({"rerun_of": "parent", "select": "failed"}, store=store, s3=None,
                      bucket="b", jobs=redeployed)

    # Then the rerun is refused, naming what changed and how to run it anyway
    assert 'image_tag: "latest" -> "v2"' in refused.value.message
    assert "--current-config" in refused.value.message
    # And asked for the current config, it is the rerun of the failed item
    spec = resolve_rerun({"rerun_of": "parent", "select": "failed", "current_config": True},
                         store=store, s3=None, bucket="b", jobs=redeployed)
    assert (spec["items"], spec["parent_run"]) == ([{"year": 2002}], "parent")
    # And with the job unchanged, no flag is needed
    same = resolve_rerun({"rerun_of": "parent", "select": "failed"}, store=store, s3=None,
                         bucket="b", jobs=config.jobs)
    assert same["items"] == [{"year": 2002}]


def test_a_rerun_packs_its_items_as_its_run_did(config: FanoutConfig, make_config: Any) -> None:
    # Given a run made while the job packed "auto", and a deployment that now packs 1
    store = MemoryRecords()
    packing = make_config(entrypoint=["python", "/app/analyzer.py"],
                          defaults={"items_per_task": "auto"})
    parent_run(packing, store)
    # When its failed items are rerun / Then the rerun asks for what the run had
    spec = resolve_rerun({"rerun_of": "parent"}, store=store, s3=None, bucket="b",
                         jobs=config.jobs)
    assert (spec["items_per_task"], spec["per_task_concurrency"]) == ("auto", 1)


def test_the_definitions_differences_are_named_field_by_field() -> None:
    before = {"local_command": ["python3", "broken.py"], "defaults": {"timeout_seconds": 60},
              "cpu": 256}
    after = {"local_command": ["python3", "analyzer.py"], "defaults": {"timeout_seconds": 90},
             "cpu": 256}
    assert differences(before, after) == [
        'defaults.timeout_seconds: 60 -> 90',
        'local_command: ["python3", "broken.py"] -> ["python3", "analyzer.py"]']
    assert differences(before, before) == []


class Runs:
    """A RunsSource of finished runs: ``{run_id: (parent, {params: status})}``."""

    kind = "local"

    def __init__(self, runs: dict[str, tuple[str | None, list[tuple[dict[str, Any], str]]]]
                 ) -> None:
        self.runs = runs

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        if run_id not in self.runs:
            return None
        parent, items = self.runs[run_id]
        second = list(self.runs).index(run_id)  # started in the order given
        return {"run_id": run_id, "job": "analyzer", "parent_run_id": parent,
                "total": len(items), "started_at": f"2026-01-01T00:00:0{second}Z"}

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[dict[str, Any]]:
        every = [self.get_run(r) for r in reversed(list(self.runs))]
        return [r for r in every if r is not None][:limit]

    def list_items(self, run_id: str, status: str | None = None) -> list[dict[str, Any]]:
        return [{"run_id": run_id, "index": i, "params": p, "status": s}
                for i, (p, s) in enumerate(self.runs[run_id][1])]


YEARS = [{"year": y} for y in range(1999, 2020)]


def test_status_answers_for_a_run_and_its_reruns_by_each_items_latest_outcome() -> None:
    # Given 21 years where 2003 and 2010 failed, a rerun where 2003 succeeded and 2010 not,
    # and a rerun of that where 2010 succeeded
    first = [(p, "FAILED" if p["year"] in (2003, 2010) else "SUCCEEDED") for p in YEARS]
    runs = Runs({"r1": (None, first),
                 "r2": ("r1", [({"year": 2003}, "SUCCEEDED"), ({"year": 2010}, "FAILED")]),
                 "r3": ("r2", [({"year": 2010}, "SUCCEEDED")]),
                 "other": (None, [({"year": 2003}, "FAILED")])})
    run = runs.get_run("r1")
    assert run is not None

    # When the first run's answer is read across its reruns
    answer = across(runs, run)  # type: ignore[arg-type]

    # Then every year succeeded in the end, two of them on rerun
    assert answer is not None
    assert answer["runs"] == ["r1", "r2", "r3"]
    assert (answer["total"], answer["succeeded"], answer["succeeded_on_rerun"]) == (21, 21, 2)
    assert across_text(answer) == ("across run r1 and its 2 reruns: 21 of 21 items "
                                   "succeeded, 2 on rerun")
    # And from the middle of the chain, 2010 is answered by the rerun after it
    middle = runs.get_run("r2")
    assert middle is not None
    mid = across(runs, middle)  # type: ignore[arg-type]
    assert mid is not None and (mid["succeeded"], mid["total"]) == (2, 2)
    # And a run never rerun has no such answer
    lone = runs.get_run("other")
    assert lone is not None and across(runs, lone) is None  # type: ignore[arg-type]


def test_items_not_yet_succeeded_are_named_with_the_run_they_last_ran_in() -> None:
    first = [(p, "FAILED" if p["year"] == 2003 else "SUCCEEDED") for p in YEARS]
    runs = Runs({"r1": (None, first), "r2": ("r1", [({"year": 2003}, "TIMED_OUT")])})
    run = runs.get_run("r1")
    assert run is not None
    answer = across(runs, run)  # type: ignore[arg-type]
    assert answer is not None
    assert answer["not_succeeded"] == [{"index": 4, "key": item_key({"year": 2003}),
                                        "params": {"year": 2003}, "status": "TIMED_OUT",
                                        "run_id": "r2"}]
    assert across_text(answer).splitlines()[1] == (
        '  item 4 {"year":2003}: TIMED_OUT (last in run r2)')


def test_an_item_keeps_its_key_and_original_index_in_a_rerun() -> None:
    runs = Runs({"r1": (None, [(p, "FAILED") for p in YEARS]),
                 "r2": ("r1", [({"year": 2010}, "FAILED"), ({"year": 2003}, "FAILED")])})
    child = runs.get_run("r2")
    assert child is not None
    items = with_identity(runs, child, runs.list_items("r2"))  # type: ignore[arg-type]
    assert [(i["index"], i["original_index"]) for i in items] == [(0, 11), (1, 4)]
    assert items[1]["key"] == item_key({"year": 2003}) == item_key({"year": 2003})
    # The key is of the params as canonical JSON: key order does not matter, values do
    assert item_key({"a": 1, "b": "x"}) == item_key({"b": "x", "a": 1})
    assert item_key({"year": 2003}) != item_key({"year": "2003"})


class Kept:
    """A records folder's answer to ``made_with``."""

    def __init__(self, made: dict[str, Any] | None, records_dir: Any) -> None:
        self.made, self.records_dir = made, records_dir

    def made_with(self, run_id: str) -> dict[str, Any] | None:
        return self.made


def rerun_args(config: Any, current: bool) -> Any:
    import argparse

    return argparse.Namespace(config=str(config), current_config=current)


def test_a_local_rerun_takes_the_config_its_run_kept(tmp_path, capsys, cdk_json) -> None:
    from fanout.cli.rerun import made_with

    # Given a run made with a job whose local_command was broken.py, and today's cdk.json
    definition = {**json.loads(cdk_json.read_text())["context"]["fanout"]["jobs"]["analyzer"]}
    made = {"config": "/old/cdk.json", "folder": str(tmp_path), "job": "analyzer",
            "definition": {**definition, "local_command": ["python3", "broken.py"]}}
    spec = {"job": "analyzer", "items": [{"year": 2003}], "command": ["-y", "{year}"],
            "environment": {}}
    args = rerun_args(cdk_json, current=False)

    # When the rerun is prepared
    kept = made_with(Kept(made, tmp_path), "r1", args, spec)

    # Then it runs the kept copy in the run's folder, and says how today's config differs
    assert kept == spec
    assert (args.config, args.task_dir) == (str(tmp_path / "r1" / "cdk.json"), tmp_path)
    err = capsys.readouterr().err
    assert "with the config it was made with (/old/cdk.json as it was then)" in err
    assert 'local_command: ["python3", "broken.py"] -> ["python3", ' in err


def test_the_current_config_is_said_and_its_templates_used(tmp_path, capsys, cdk_json) -> None:
    from fanout.cli.rerun import made_with

    # Given a run whose command came from its job's definition then
    definition = {**json.loads(cdk_json.read_text())["context"]["fanout"]["jobs"]["analyzer"],
                  "command": ["--year", "{year}"]}
    made = {"config": "/old/cdk.json", "folder": str(tmp_path), "job": "analyzer",
            "definition": definition}
    spec = {"job": "analyzer", "items": [{"year": 2003}], "command": ["--year", "{year}"],
            "environment": {"A": "1"}}
    args = rerun_args(cdk_json, current=True)

    # When it is rerun with the current config
    current = made_with(Kept(made, tmp_path), "r1", args, spec)

    # Then the command is the job's as defined now (the run's own environment stays), the
    # config is today's, and stderr says both
    assert "command" not in current and current["environment"] == {"A": "1"}
    assert args.config == str(cdk_json)
    err = capsys.readouterr().err
    assert f"with the current config {cdk_json}, not the one it was made with" in err
    assert 'command: ["--year", "{year}"] -> ["-y", "{year}"]' in err


def test_a_run_that_kept_no_config_is_rerun_only_with_the_current_one(tmp_path, cdk_json):
    from fanout.cli.rerun import made_with
    from fanout.errors import UsageError

    with pytest.raises(UsageError) as refused:
        made_with(Kept(None, tmp_path), "r1", rerun_args(cdk_json, current=False),
                  {"job": "analyzer"})
    assert "recorded no config" in refused.value.message
    assert "--current-config" in refused.value.message
