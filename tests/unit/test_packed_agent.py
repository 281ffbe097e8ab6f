"""The agent sidecar of a packed task (docs/decisions/0021) over moto's S3: it lays the
batch out for the runner and uploads what the runner writes, as it appears."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from fanout.runtime.packed_agent import BatchError, Location, lay_out, run

BUCKET = "runs-bucket"
KEY = "runs/r1/tasks/t7/batch.json"
URL = f"s3://{BUCKET}/{KEY}"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put_batch(s3: Any, items: list[dict[str, Any]], concurrency: int = 1) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(
        {"items": items, "per_task_concurrency": concurrency}))


def until(condition: Callable[[], bool], what: str) -> None:
    """Await a condition another thread makes true (10 s at most)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def in_s3(s3: Any, name: str) -> bool:
    try:
        s3.head_object(Bucket=BUCKET, Key=f"runs/r1/tasks/t7/items/{name}")
    except ClientError:
        return False
    return True


def test_the_batch_is_laid_out_as_the_runners_plain_files(tmp_path) -> None:
    # Given a batch of two items, the job's image having an entrypoint
    batch = {"items": [{"index": 4, "attempt": 2, "argv": ["-y", "1999"],
                        "environment": {"REGION": "eu"}, "timeout_seconds": 90},
                       {"index": 5, "attempt": 1, "argv": ["-y", "2000"]}],
             "per_task_concurrency": 2}
    # When the agent lays it out
    indexes = lay_out(batch, tmp_path, entrypoint=["python", "/app/analyzer.py"])
    # Then the runner finds the order, the concurrency and each item's files, then ready
    assert indexes == [4, 5]
    assert (tmp_path / "order").read_text() == "4\n5\n"
    assert (tmp_path / "concurrency").read_text() == "2\n"
    assert (tmp_path / "4" / "argv").read_bytes() == b"python\0/app/analyzer.py\0-y\0001999\0"
    assert (tmp_path / "4" / "env").read_bytes() == b"REGION=eu\0"
    assert (tmp_path / "4" / "attempt").read_text() == "2\n"
    assert (tmp_path / "4" / "timeout").read_text() == "90.0\n"
    assert (tmp_path / "5" / "env").read_bytes() == b""
    assert (tmp_path / "ready").exists()


@pytest.mark.parametrize(("batch", "says"), [
    ({"items": []}, "batch has no items"),
    ({"items": [{"index": 0, "argv": ["a\0b"]}]}, "items[0].argv is not a string without NUL"),
    ({"items": [{"index": 0, "argv": ["a"], "environment": {"A=B": "c"}}]},
     "items[0].environment has a bad name 'A=B'"),
    ({"items": [{"index": 0, "argv": []}]}, "items[0].argv is empty and the job has no entrypoint"),
    ({"items": [{"index": 0, "argv": ["a"]}, {"index": 0, "argv": ["b"]}]},
     "batch lists an item twice"),
])
def test_a_bad_batch_is_refused_and_nothing_is_written(tmp_path, batch, says) -> None:
    # When the agent is given a batch the runner could not run
    with pytest.raises(BatchError) as refused:
        lay_out(batch, tmp_path / "batch")
    # Then it names what is wrong, and the runner gets no ready (nothing at all)
    assert str(refused.value) == says
    assert not (tmp_path / "batch").exists()


def test_a_batch_outside_a_tasks_folder_is_refused() -> None:
    # A batch is only ever read from a task's folder, whose items/ the role may write
    with pytest.raises(BatchError) as refused:
        Location.parse(f"s3://{BUCKET}/inputs/batch.json")
    assert str(refused.value) == (f"batch 's3://{BUCKET}/inputs/batch.json' is not "
                                  "s3://BUCKET/runs/RUN/tasks/KEY/batch.json")
    assert Location.parse(URL).items_prefix == "runs/r1/tasks/t7/items/"


def test_marks_and_results_reach_s3_as_the_runner_writes_them(s3, tmp_path) -> None:
    # Given a batch of one item in S3, and the agent running beside a fake runner
    put_batch(s3, [{"index": 0, "attempt": 1, "argv": ["true"]}])
    batch, out = tmp_path / "batch", tmp_path / "out"
    out.mkdir()
    code: list[int] = []
    agent = threading.Thread(target=lambda: code.append(
        run(s3, URL, batch_dir=batch, out_dir=out, poll_seconds=0.01)))
    agent.start()
    # When the runner starts the item (once the batch is ready)
    until(lambda: (batch / "ready").exists(), "the batch is ready")
    (out / "0.started").write_text("2026-12-05T07:00:00.000+00:00")
    # Then its mark is in S3 while it still runs
    until(lambda: in_s3(s3, "0.started"), "0.started uploaded")
    assert not in_s3(s3, "0.json") and agent.is_alive()
    # And when it ends, its result follows, and the agent ends once the runner exits
    result = {"index": 0, "attempt": 1, "exit_code": 0, "started": "a", "stopped": "b",
              "timed_out": False, "log_tail": []}
    (out / "0.json.partial").write_text("{")  # a result being written is never uploaded
    (out / "0.json").write_text(json.dumps(result))
    (out / "exit").write_text("done\n")
    agent.join(10)
    assert code == [0]
    body = s3.get_object(Bucket=BUCKET, Key="runs/r1/tasks/t7/items/0.json")["Body"].read()
    assert json.loads(body) == result
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {KEY, "runs/r1/tasks/t7/items/0.started", "runs/r1/tasks/t7/items/0.json"}


class FlakyS3:
    """moto's S3, whose first put of each key fails."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.failed: set[str] = set()

    def get_object(self, **kwargs: Any) -> Any:
        return self.s3.get_object(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] not in self.failed:
            self.failed.add(kwargs["Key"])
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}},
                              "PutObject")
        return self.s3.put_object(**kwargs)


def test_an_upload_that_fails_is_retried_before_the_agent_ends(s3, tmp_path) -> None:
    # Given a runner that already ran its item and exited, and S3 refusing each first put
    put_batch(s3, [{"index": 3, "attempt": 1, "argv": ["true"]}])
    out = tmp_path / "out"
    out.mkdir()
    (out / "3.started").write_text("t")
    (out / "3.json").write_text("{}")
    (out / "exit").write_text("done\n")
    # When the agent runs
    code = run(FlakyS3(s3), URL, batch_dir=tmp_path / "batch", out_dir=out, poll_seconds=0.01)
    # Then both files are in S3 in the end, and it ends well
    assert code == 0
    assert in_s3(s3, "3.started") and in_s3(s3, "3.json")


def test_a_stopped_task_whose_runner_never_exits_ends_after_the_grace(s3, tmp_path) -> None:
    # Given a stop (SIGTERM) and a runner that wrote one mark and never its exit
    put_batch(s3, [{"index": 0, "attempt": 1, "argv": ["true"]}])
    out = tmp_path / "out"
    out.mkdir()
    (out / "0.started").write_text("t")
    stopping = threading.Event()
    stopping.set()
    # When the agent runs with a short grace
    code = run(s3, URL, batch_dir=tmp_path / "batch", out_dir=out, stopping=stopping,
               poll_seconds=0.01, stop_grace_seconds=0.1)
    # Then it uploaded what there was and ended
    assert code == 0 and in_s3(s3, "0.started")


def test_the_agent_refuses_a_bad_batch_with_one_line(s3, tmp_path, capsys, monkeypatch) -> None:
    # Given a batch in S3 with no items, named as Launch names it (FANOUT_BATCH)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"items": []}')
    from fanout.runtime import packed_agent
    monkeypatch.setattr(packed_agent, "BATCH_DIR", tmp_path / "batch")
    monkeypatch.setenv("FANOUT_BATCH", URL)
    # When the agent's command runs as the task definition gives it
    code = packed_agent.main(["--entrypoint", '["python", "/app/analyzer.py"]'])
    # Then it exits 2 with one line, and the runner gets nothing
    assert code == 2
    assert capsys.readouterr().err == "fanout agent: batch has no items\n"
    assert not (tmp_path / "batch").exists()


def test_the_agent_runs_the_batch_launch_names(s3, tmp_path, monkeypatch) -> None:
    # Given a batch of one item and a runner that already wrote its result and exit
    put_batch(s3, [{"index": 0, "attempt": 1, "argv": ["-y", "1999"]}])
    from fanout.runtime import packed_agent
    monkeypatch.setattr(packed_agent, "BATCH_DIR", tmp_path / "batch")
    monkeypatch.setattr(packed_agent, "OUT_DIR", tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "0.json").write_text("{}")
    (tmp_path / "out" / "exit").write_text("done\n")
    # When the agent's command runs with the job's entrypoint and the batch's URL
    code = packed_agent.main(["--entrypoint", '["python", "/app/analyzer.py"]', URL])
    # Then the runner's argv has the entrypoint first, and the result is in S3
    assert code == 0
    assert (tmp_path / "batch" / "0" / "argv").read_bytes() == \
        b"python\0/app/analyzer.py\0-y\0001999\0"
    assert in_s3(s3, "0.json")
