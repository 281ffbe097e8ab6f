"""``fanout outputs RUN [INDEX]`` on a local records folder: list, --json, --download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fanout.cli.main import main
from fanout.local.records import write_records
from fanout.outputs import list_outputs, output_location
from fanout.records.model import ItemRecord, RunRecord
from fanout.records.views import item_detail, run_view


def a_run(records: Path, wrote: dict[int, dict[str, bytes]], *, cap: int = 100) -> None:
    """Run r1 of three items, items 0 and 1 ended having written ``wrote``; item 2 runs."""
    items = []
    for index in range(3):
        location = output_location(str(records), "r1", index)
        for key, body in wrote.get(index, {}).items():
            Path(location, key).parent.mkdir(parents=True, exist_ok=True)
            Path(location, key).write_bytes(body)
        ended = index in wrote
        items.append(ItemRecord("r1", index, "SUCCEEDED" if ended else "RUNNING",
                                params={"year": 1999 + index},
                                outputs=list_outputs(location, cap=cap).to_json()
                                if ended else None))
    run = RunRecord("r1", "prog", "RUNNING", "2026-12-04T10:00:00Z", total=3)
    write_records(records / "r1", run_view(run), [item_detail(i, []) for i in items],
                  settings={})


def outputs(capsys: pytest.CaptureFixture[str], records: Path, *argv: str
            ) -> tuple[int, str, str]:
    code = main(["outputs", "r1", *argv, "--local", "--records-dir", str(records)])
    out, err = capsys.readouterr()
    return code, out, err


def test_outputs_lists_what_each_item_wrote(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Given items 0 and 1 ended having written files, item 2 still running
    a_run(tmp_path, {0: {"result.csv": b"a,b\n"}, 1: {"result.csv": b"c,d,e\n",
                                                       "plots/1.png": b"png"}})
    # When listed
    code, out, _ = outputs(capsys, tmp_path)
    # Then each output is a row with its item and size, the running item says so
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert ["0", "SUCCEEDED", "result.csv", "4"] in rows
    assert ["1", "SUCCEEDED", "plots/1.png", "3"] in rows
    assert "(not recorded: not ended)" in out
    assert out.splitlines()[-1] == "3 items, 3 outputs, 13 B"
    # And --json has each item's location and list
    code, out, _ = outputs(capsys, tmp_path, "1", "--json")
    [item] = json.loads(out)
    assert item["output"] == output_location(str(tmp_path), "r1", 1)
    assert item["outputs"] == [{"key": "plots/1.png", "size": 3},
                               {"key": "result.csv", "size": 6}]
    assert (item["outputs_count"], item["outputs_bytes"]) == (2, 9)


def test_a_capped_list_says_how_many_more(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    a_run(tmp_path, {0: {f"part-{n}": b"x" for n in range(5)}}, cap=2)
    code, out, _ = outputs(capsys, tmp_path, "0")
    assert code == 0 and "... and 3 more" in out
    assert out.splitlines()[-1] == "1 items, 5 outputs, 5 B"


def test_download_copies_every_output(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Given an item that wrote more than its record lists
    records = tmp_path / "records"
    a_run(records, {0: {"a.txt": b"A", "deep/b.txt": b"B", "c.txt": b"C"}, 1: {"x": b"X"}},
          cap=1)
    # When all are downloaded, then one item's
    code, out, _ = outputs(capsys, records, "--download", str(tmp_path / "all"))
    assert code == 0 and out.strip() == f"downloaded 4 files into {tmp_path / 'all'}"
    assert (tmp_path / "all" / "0" / "deep" / "b.txt").read_bytes() == b"B"
    assert (tmp_path / "all" / "1" / "x").read_bytes() == b"X"
    code, out, _ = outputs(capsys, records, "0", "--download", str(tmp_path / "one"))
    assert sorted(p.relative_to(tmp_path / "one").as_posix()
                  for p in (tmp_path / "one").rglob("*") if p.is_file()) == \
        ["a.txt", "c.txt", "deep/b.txt"]


def test_an_unknown_item_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_run(tmp_path, {})
    code, out, err = outputs(capsys, tmp_path, "7")
    assert code == 2 and out == ""
    assert err.strip() == "fanout: invalid argument: INDEX: run r1 has no item 7 (it has 3)"


def test_a_key_that_would_escape_the_folder_is_refused(tmp_path: Path) -> None:
    # Given an S3 prefix holding a key with ".." in it (S3 keys are any text)
    from fanout.outputs import UnsafeKey, download_outputs
    from fanout.testing.s3 import MemoryS3

    s3 = MemoryS3()
    s3.put_object(Bucket="b", Key="runs/r/outputs/0/ok.txt", Body=b"ok")
    s3.put_object(Bucket="b", Key="runs/r/outputs/0/../../../../evil", Body=b"x")
    # When downloaded / Then refused before anything is written
    with pytest.raises(UnsafeKey, match="outside"):
        download_outputs("s3://b/runs/r/outputs/0/", tmp_path / "d", s3=s3)
    assert not (tmp_path / "d").exists()
