"""Expand under moto: manifest, run record, rejected specs, items_from."""

from __future__ import annotations

import pytest

from tests.integration.conftest import BUCKET, World
from tests.integration.helpers import manifest, start_run, store


def test_expand_writes_manifest_and_run_record(world: World) -> None:
    # Given a spec over three years
    # When Expand runs
    state = start_run("run-1")
    # Then the state after it says where the items are and how to run them
    assert state == {
        "run_id": "run-1", "job": "analyzer", "total": 3, "bucket": BUCKET,
        "manifest_key": "runs/run-1/items.json", "results_prefix": "runs/run-1/results",
        "max_concurrency": 5,
        "tolerated_failure_percent": 0.0, "timeout_seconds": 600,
        # The run's whole life (168 h): an item may wait that long for its launch.
        "callback_timeout_seconds": 168 * 3600,
    }
    # And the manifest is a JSON array the ItemReader reads, one object per item
    items = manifest(world, "run-1")
    assert [i["params"]["year"] for i in items] == [1999, 2000, 2001]
    assert items[0] == {"index": 0, "params": {"year": 1999}, "command": ["-y", "1999"],
                        "environment": {}}
    # And the run record holds totals, policy, trigger and logical time
    run = store().get_run("run-1")
    assert run is not None and run.status == "RUNNING"
    assert run.totals() == {"total": 3, "pending": 3, "running": 0, "succeeded": 0,
                            "failed": 0, "timed_out": 0, "aborted": 0, "waiting": 0}
    assert run.settings["retry"]["max_attempts"] == 3
    assert (run.trigger, run.logical_time) == ("console", "2026-11-20T10:00:00.000000Z")


def test_manifest_is_streamed_in_parts_of_at_least_5_mib(world: World) -> None:
    # Given many lines
    from fanout.aws.s3 import write_manifest

    lines = (f'{{"index":{i},"pad":"{"x" * 200}"}}' for i in range(60_000))
    # When written with 5 MiB parts
    parts = write_manifest(world.s3, BUCKET, "big.json", lines, part_size=5 * 1024 * 1024)
    # Then it took several parts and reads back as one array
    import json

    body = json.loads(world.s3.get_object(Bucket=BUCKET, Key="big.json")["Body"].read())
    assert parts >= 2
    assert len(body) == 60_000 and body[-1]["index"] == 59_999


def test_bad_spec_is_rejected_naming_every_field(world: World) -> None:
    # Given a spec with two bad fields
    spec = {"job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 1990}}},
            "max_concurrency": 0}
    # When Expand runs
    with pytest.raises(Exception) as raised:
        start_run("run-bad", spec)
    # Then the execution fails with Fanout.InvalidRunSpec naming both fields
    assert type(raised.value).__name__ == "Fanout.InvalidRunSpec"
    assert "params.year" in str(raised.value) and "max_concurrency" in str(raised.value)
    # And the run is recorded REJECTED, with no manifest and no task
    run = store().get_run("run-bad")
    assert run is not None and run.status == "REJECTED"
    assert "max_concurrency" in (run.summary or "")
    assert run.expires_at is not None  # a finished run's record expires
    assert world.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert world.tasks() == []


def test_spec_over_the_item_cap_is_rejected(world: World) -> None:
    # Given a spec of 60 items where the deployment allows 50
    spec = {"job": "analyzer", "params": {"year": {"range": {"start": 1900, "stop": 1960}}}}
    # When Expand runs, Then it is refused naming params
    with pytest.raises(Exception, match="params") as raised:
        start_run("run-big", spec)
    assert type(raised.value).__name__ == "Fanout.InvalidRunSpec"


@pytest.mark.parametrize(("key", "body"), [
    ("in/years.json", b'[{"year": 2010}, {"year": 2011}]'),
    ("in/years.jsonl", b'{"year": 2010}\n{"year": 2011}\n'),
    ("in/years.csv", b"year\n2010\n2011\n"),
])
def test_items_from_s3(world: World, key: str, body: bytes) -> None:
    # Given items in an S3 object
    world.s3.create_bucket(Bucket="inputs")
    world.s3.put_object(Bucket="inputs", Key=key, Body=body)
    # When Expand reads them
    state = start_run("run-from", {"job": "analyzer", "items_from": f"s3://inputs/{key}"})
    # Then the manifest holds one item per row, rendered
    assert state["total"] == 2
    assert [i["command"] for i in manifest(world, "run-from")] == [["-y", "2010"], ["-y", "2011"]]


def test_items_from_missing_object_is_a_bad_spec(world: World) -> None:
    # Given an items_from that does not exist
    world.s3.create_bucket(Bucket="inputs")
    # When Expand runs, Then the spec is rejected naming items_from
    with pytest.raises(Exception, match="items_from"):
        start_run("run-missing", {"job": "analyzer", "items_from": "s3://inputs/none.json"})
    run = store().get_run("run-missing")
    assert run is not None and run.status == "REJECTED"


def test_a_rerun_of_chosen_items_runs_exactly_those(world: World) -> None:
    from fanout.runtime import context
    from fanout.testing.callbacks import MemoryCallbacks
    from tests.integration.helpers import launch, stopped

    context.use(callbacks=MemoryCallbacks())
    # Given a finished parent run of 3 items (1999, 2000, 2001), item 1 failed
    start_run("parent", {"job": "analyzer", "retry": {"max_attempts": 1},
                         "params": {"year": {"range": {"start": 1999, "stop": 2002}}}})
    for index, kind in enumerate(["success", "exit-1", "success"]):
        stopped(kind, launch(world, "parent", index, f"t{index}")["task_arn"], "parent", index, 1)
    assert store().finish_run("parent", "FAILED", "2026-11-20T10:05:00Z", "done")
    # When a rerun selects items 2 and 0 (as the console's rerun spec can)
    start_run("child", {"rerun_of": "parent", "select": [2, 0]})
    # Then the rerun's items are exactly those, in index order, linked to the parent
    assert [m["params"] for m in manifest(world, "child")] == [{"year": 1999}, {"year": 2001}]
    child = store().get_run("child")
    assert child is not None and child.parent_run == "parent" and child.total == 2
    # And an index the parent does not have is refused, naming it
    with pytest.raises(Exception, match="has no item 7") as raised:
        start_run("child-bad", {"rerun_of": "parent", "select": [7]})
    assert type(raised.value).__name__ == "Fanout.InvalidRunSpec"
