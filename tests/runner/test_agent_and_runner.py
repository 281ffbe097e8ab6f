"""The packed task's two halves together: the agent (fanout/runtime/packed_agent.py) over
moto's S3 and the static runner in a shared folder, as the task definition pairs them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fanout.runtime.packed_agent import run
from fanout.runtime.packing import ItemResult, item_lines, settle_batch

BUCKET = "runs-bucket"
TASK = "runs/r1/tasks/t1/"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_a_batch_from_s3_runs_and_its_items_settle_from_s3(runner, s3, tmp_path) -> None:
    # Given a batch attempt in S3: a success, a failure and a timeout, for an image whose
    # entrypoint is `python -c`
    items = [{"index": 0, "attempt": 1, "argv": ["print('zero')"]},
             {"index": 1, "attempt": 2, "argv": ["import sys; sys.exit(5)"]},
             {"index": 2, "attempt": 1, "argv": ["import time; time.sleep(5)"],
              "timeout_seconds": 0.3}]
    s3.put_object(Bucket=BUCKET, Key=TASK + "batch.json", Body=json.dumps({"items": items}))
    volume = tmp_path / "fanout"
    # When the agent and the runner share the task's volume
    code: list[int] = []
    stopping = threading.Event()  # as ECS stops the agent once the runner's container ends
    agent = threading.Thread(target=lambda: code.append(run(
        s3, f"s3://{BUCKET}/{TASK}batch.json", batch_dir=volume / "batch",
        out_dir=volume / "out", entrypoint=[sys.executable, "-c"], stopping=stopping,
        poll_seconds=0.02, stop_grace_seconds=5)), daemon=True)
    agent.start()
    done = subprocess.run([str(runner), "--batch", str(volume / "batch"), "--out",
                           str(volume / "out"), "--grace", "0.2"],
                          capture_output=True, text=True, timeout=60)
    stopping.set()
    agent.join(30)
    # Then both ended well, the task's log has item 0's line under its prefix
    assert done.returncode == 0 and code == [0]
    assert list(item_lines(done.stdout.splitlines(), 0)) == ["zero"]
    # And S3 alone settles every item as it ended
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=TASK + "items/")["Contents"]
    names = {o["Key"].removeprefix(TASK + "items/") for o in listed}
    assert names == {f"{i}.{kind}" for i in range(3) for kind in ("started", "json")}
    results = {
        i: ItemResult.from_json(json.loads(s3.get_object(
            Bucket=BUCKET, Key=f"{TASK}items/{i}.json")["Body"].read()))
        for i in range(3)}
    assert [(r.exit_code, r.timed_out) for r in results.values()] == [
        (0, False), (5, False), (143, True)]
    settled = settle_batch([0, 1, 2], started=[0, 1, 2], results=results, runner_ran=True)
    assert all(s.spends_attempt and s.result == results[s.index] for s in settled)
