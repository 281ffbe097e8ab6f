"""Item outputs: each item's location (FANOUT_OUTPUT) and the listing of what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fanout.outputs import (
    OUTPUTS_LISTED,
    OutputsListing,
    bucket_root,
    list_outputs,
    output_fields,
    output_location,
)
from fanout.schema import TASK_ENV_OUTPUT, container_overrides
from fanout.testing.s3 import MemoryS3


def test_an_item_location_on_aws_is_its_prefix_under_the_run_in_the_manifest_bucket() -> None:
    # Given a deployment whose manifest bucket is fanout-manifests
    root = bucket_root("fanout-manifests")
    # When item 7 of a run is placed / Then it has a prefix of its own under the run
    assert output_location(root, "analyzer-20240101", 7) == \
        "s3://fanout-manifests/runs/analyzer-20240101/outputs/7/"
    assert output_location(root, "analyzer-20240101", 8) != output_location(root, "r", 7)


def test_an_item_location_locally_is_an_absolute_folder_under_the_run_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the records folder named relatively, as `fanout local` is given it
    monkeypatch.chdir(tmp_path)
    # When item 3 is placed
    location = output_location(".fanout/runs", "run-1", 3)
    # Then it is the absolute folder <records>/<run_id>/outputs/3/
    assert location == str(tmp_path / ".fanout" / "runs" / "run-1" / "outputs" / "3") + "/"
    assert Path(location).is_absolute()


def test_the_overrides_carry_the_location_as_fanout_output() -> None:
    overrides = container_overrides("analyzer", ["-y", "1999"], {}, run_id="r", index=0,
                                    attempt=1, output="s3://b/runs/r/outputs/0/")
    env = {e["name"]: e["value"] for e in overrides["containerOverrides"][0]["environment"]}
    assert env[TASK_ENV_OUTPUT] == "s3://b/runs/r/outputs/0/"
    # and an item variable of the same name does not win over it
    overrides = container_overrides("analyzer", [], {TASK_ENV_OUTPUT: "elsewhere"},
                                    run_id="r", index=0, attempt=1, output="s3://b/x/")
    env = {e["name"]: e["value"] for e in overrides["containerOverrides"][0]["environment"]}
    assert env[TASK_ENV_OUTPUT] == "s3://b/x/"


def test_a_listing_of_an_s3_prefix_has_keys_relative_to_the_item_and_their_sizes() -> None:
    # Given item 0 wrote two objects, item 1 one, and a folder marker
    s3 = MemoryS3()
    location = output_location(bucket_root("b"), "r", 0)
    s3.put_object(Bucket="b", Key="runs/r/outputs/0/result.csv", Body=b"a,b\n")
    s3.put_object(Bucket="b", Key="runs/r/outputs/0/plots/year.png", Body=b"x" * 10)
    s3.put_object(Bucket="b", Key="runs/r/outputs/0/plots/", Body=b"")
    s3.put_object(Bucket="b", Key="runs/r/outputs/1/result.csv", Body=b"other")
    # When item 0's outputs are listed
    listing = list_outputs(location, s3=s3)
    # Then only its own, relative to its location, in key order
    assert listing.entries == [{"key": "plots/year.png", "size": 10},
                               {"key": "result.csv", "size": 4}]
    assert listing.fields() == {"output": location, "outputs": listing.entries,
                                "outputs_count": 2, "outputs_bytes": 14,
                                "outputs_partial": False}


def test_a_listing_of_a_local_folder_walks_it(tmp_path: Path) -> None:
    location = output_location(str(tmp_path), "r", 2)
    Path(location, "deep").mkdir(parents=True)
    Path(location, "deep", "b.txt").write_text("hello")
    Path(location, "a.json").write_text("{}")
    assert list_outputs(location).entries == [{"key": "a.json", "size": 2},
                                              {"key": "deep/b.txt", "size": 5}]


def test_a_location_never_written_lists_nothing(tmp_path: Path) -> None:
    nowhere = str(tmp_path / "nowhere") + "/"
    assert list_outputs(nowhere).fields() == {
        "output": nowhere, "outputs": [], "outputs_count": 0, "outputs_bytes": 0,
        "outputs_partial": False}
    assert list_outputs("s3://b/runs/r/outputs/0/", s3=MemoryS3()).entries == []


def test_a_listing_over_the_cap_keeps_the_first_and_counts_them_all() -> None:
    # Given an item that wrote 2,500 objects of 3 bytes (three S3 pages)
    s3 = MemoryS3()
    location = "s3://b/runs/r/outputs/0/"
    for n in range(2500):
        s3.put_object(Bucket="b", Key=f"runs/r/outputs/0/part-{n:05d}", Body=b"abc")
    # When listed
    listing = list_outputs(location, s3=s3)
    # Then the first entries are kept, and the count and bytes cover every object
    assert len(listing.entries) == OUTPUTS_LISTED
    assert listing.entries[0] == {"key": "part-00000", "size": 3}
    fields = listing.fields()
    assert fields["outputs_count"] == 2500 and fields["outputs_bytes"] == 7500
    assert s3.pages_read == 3


def test_long_keys_are_capped_by_their_size_too() -> None:
    # Given 50 keys of 1,000 characters (S3 allows 1,024 bytes)
    s3 = MemoryS3()
    for n in range(50):
        s3.put_object(Bucket="b", Key=f"p/{n:02d}" + "k" * 998, Body=b"1")
    listing = list_outputs("s3://b/p/", s3=s3, cap_bytes=16 * 1024)
    # Then what is kept stays within the bytes cap, and the count says how many there are
    assert len(json.dumps(listing.entries)) <= 16 * 1024
    assert 0 < len(listing.entries) < 50 and listing.count == 50


def test_a_listing_stops_after_its_pages_and_says_so() -> None:
    s3 = MemoryS3()
    for n in range(2001):
        s3.put_object(Bucket="b", Key=f"p/{n:05d}", Body=b"")
    listing = list_outputs("s3://b/p/", s3=s3, max_pages=2)
    assert listing.count == 2000 and listing.partial
    assert listing.fields()["outputs_partial"] is True


def test_a_listing_reads_back_from_its_record_form() -> None:
    listing = OutputsListing("s3://b/p/", [{"key": "a", "size": 1}], count=3, bytes=9)
    assert OutputsListing.from_json(json.loads(json.dumps(listing.to_json()))) == listing
    assert output_fields(listing.to_json())["outputs_count"] == 3
    # an item not ended yet has every field, null
    assert output_fields(None) == {"output": None, "outputs": None, "outputs_count": None,
                                   "outputs_bytes": None, "outputs_partial": False}


def test_a_listing_that_fails_is_recorded_partial_and_never_stops_the_settling() -> None:
    # Given an S3 that refuses the listing (a missing grant, a throttle)
    from fanout.runtime.settle import outputs_under

    class Refusing(MemoryS3):
        def get_paginator(self, operation: str) -> Any:
            raise RuntimeError("AccessDenied")

    # When an ending item's outputs are listed
    listed = outputs_under("s3://b", s3=Refusing())("r", 4)
    # Then its location is kept and the listing says it is incomplete
    assert listed is not None and listed["location"] == "s3://b/runs/r/outputs/4/"
    assert output_fields(listed)["outputs_partial"] is True
