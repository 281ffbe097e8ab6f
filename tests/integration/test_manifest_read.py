"""Reading an items manifest back in chunks: every item, whatever the chunk boundaries."""

from __future__ import annotations

import io
import json

import pytest

from fanout.aws.s3 import _chunks, array_items, manifest_from, manifest_items, write_manifest
from tests.integration.conftest import BUCKET, World


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1 << 20])
def test_array_items_reads_every_item_across_chunk_boundaries(chunk_size: int) -> None:
    # Given a manifest as Expand writes it, with multi-byte characters and nested values
    lines = [json.dumps({"index": i, "params": {"city": "Zürich", "n": [i, {"k": "}]"}]}},
                        separators=(",", ":")) for i in range(50)]
    body = io.BytesIO(b"".join(_chunks(lines, 100)))
    # When it is read back chunk by chunk
    got = list(array_items(body, chunk_size=chunk_size))
    # Then every item comes back whole, in order
    assert got == [json.loads(line) for line in lines]


def test_array_items_of_an_empty_manifest() -> None:
    # Given an empty array, When read, Then no items
    assert list(array_items(io.BytesIO(b"[]"), chunk_size=1)) == []


def test_a_missing_manifest_has_no_items(world: World) -> None:
    # Given no manifest for a run (expired), When read, Then nothing (and no error)
    assert list(manifest_items(world.s3, BUCKET, "gone")) == []


def test_a_manifest_read_resumes_at_the_byte_offset_it_gave(world: World) -> None:
    # Given a manifest with multi-byte characters, in several parts
    lines = [json.dumps({"index": i, "params": {"city": "Zürich" * (i % 5)}},
                        separators=(",", ":"), ensure_ascii=False) for i in range(300)]
    write_manifest(world.s3, BUCKET, "runs/r/items.json", lines, part_size=5 * 1024 * 1024)
    # When one reader stops after item 122, and another (another invocation) resumes at the
    # offset the first gave
    first = manifest_from(world.s3, BUCKET, "r")
    read = [next(first) for _ in range(123)]
    offset = read[-1][1]
    rest = list(manifest_from(world.s3, BUCKET, "r", offset))
    # Then together they read every item once, in order
    assert [line for line, _ in read + rest] == [json.loads(line) for line in lines]
    # And resuming at the end gives nothing
    assert list(manifest_from(world.s3, BUCKET, "r", rest[-1][1])) == []


def test_a_packed_runs_manifest_reads_as_its_items_and_resumes_mid_batch(world: World) -> None:
    # Given a packed run's manifest: ten items in batches of four
    from fanout.runtime.packing import batch_lines

    lines = [json.dumps({"index": i, "params": {"n": i}}, separators=(",", ":"))
             for i in range(10)]
    write_manifest(world.s3, BUCKET, "runs/p/items.json", batch_lines(lines, 4))
    # When it is read, Then it gives its items, in index order
    assert [i["index"] for i in manifest_items(world.s3, BUCKET, "p")] == list(range(10))
    # When a reader stops after item 5 (mid-batch) and another resumes at its offset
    read = manifest_from(world.s3, BUCKET, "p")
    offset = next(end for item, end in read if item["index"] == 5)
    resumed = [item["index"] for item, _ in manifest_from(world.s3, BUCKET, "p", offset)]
    # Then it misses nothing after item 5 (the batch's earlier items come again first)
    assert resumed == [4, 5, 6, 7, 8, 9]
