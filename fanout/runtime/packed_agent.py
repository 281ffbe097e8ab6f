"""The agent sidecar of a packed task (docs/decisions/0021): the runner's link to S3.

The runner injected into the job's image (``runner/runner.c``) has no network and reads
no JSON. This agent, in fanout's own image next to it, downloads the batch attempt Launch
wrote (``runs/RUN/tasks/KEY/batch.json``), lays it out in the shared volume as the
runner's plain files, writes ``ready``, then uploads each ``I.started`` and ``I.json`` the
runner writes to ``runs/RUN/tasks/KEY/items/`` as they appear: S3 is the record of what
ran (docs/decisions/0020, settlement). It returns once the runner wrote ``exit`` and its
last results are uploaded.

``python -m fanout.runtime.packed_agent --entrypoint '["python", "/app/x.py"]' URL``: the
job image's entrypoint (put before each item's command) and the batch attempt's
``s3://BUCKET/runs/RUN/tasks/KEY/batch.json`` (or ``FANOUT_BATCH``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("fanout.packed_agent")

BATCH_DIR = Path("/fanout/batch")
OUT_DIR = Path("/fanout/out")
#: Where a batch attempt lives; its items' marks and results go under ``items/`` beside it.
BATCH_KEY = re.compile(r"^(runs/[^/]+/tasks/[^/]+/)batch\.json$")
#: What the runner writes per item (``I.json.partial`` is a result being written).
ITEM_FILE = re.compile(r"^(\d+)\.(started|json)$")
#: How often the output folder is looked at while the runner runs.
POLL_SECONDS = 0.2
#: After SIGTERM (StopTask, Spot), how long to wait for the runner's ``exit`` before a
#: last upload: less than ECS's default stopTimeout (30 s) between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 25.0


class BatchError(ValueError):
    """A batch attempt the runner cannot be given."""


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    @property
    def items_prefix(self) -> str:
        found = BATCH_KEY.match(self.key)
        assert found
        return f"{found[1]}items/"

    @classmethod
    def parse(cls, url: str) -> Location:
        found = re.match(r"^s3://([^/]+)/(.+)$", url)
        if not found or not BATCH_KEY.match(found[2]):
            raise BatchError(f"batch {url!r} is not s3://BUCKET/runs/RUN/tasks/KEY/batch.json")
        return cls(found[1], found[2])


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise BatchError(f"{where} is not a string without NUL")
    return value


def lay_out(batch: Mapping[str, Any], folder: Path, entrypoint: Sequence[str] = ()) -> list[int]:
    """Write the batch as the runner reads it (``order``, ``concurrency``, per item
    ``argv``, ``env``, ``attempt``, ``timeout``), ``ready`` last; the indexes in order.
    Nothing is written when the batch is bad."""
    items = batch.get("items")
    if not isinstance(items, list) or not items:
        raise BatchError("batch has no items")
    laid: list[tuple[int, dict[str, bytes]]] = []
    for n, item in enumerate(items):
        where = f"items[{n}]"
        if not isinstance(item, Mapping):
            raise BatchError(f"{where} is not an object")
        index, attempt = item.get("index"), item.get("attempt", 1)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise BatchError(f"{where}.index is not a whole number from 0")
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise BatchError(f"{where}.attempt is not a whole number from 1")
        argv = [*entrypoint, *(item.get("argv") or [])]
        if not argv:
            raise BatchError(f"{where}.argv is empty and the job has no entrypoint")
        args = [_text(a, f"{where}.argv") for a in argv]
        environment = item.get("environment") or {}
        if not isinstance(environment, Mapping):
            raise BatchError(f"{where}.environment is not an object")
        pairs = []
        for key, value in environment.items():
            if not _text(key, f"{where}.environment") or "=" in key:
                raise BatchError(f"{where}.environment has a bad name {key!r}")
            pairs.append(f"{key}={_text(value, f'{where}.environment.{key}')}")
        timeout = item.get("timeout_seconds") or 3600
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise BatchError(f"{where}.timeout_seconds is not a positive number")
        laid.append((index, {
            "argv": b"".join(a.encode() + b"\0" for a in args),
            "env": b"".join(p.encode() + b"\0" for p in pairs),
            "attempt": f"{attempt}\n".encode(),
            "timeout": f"{float(timeout)!r}\n".encode(),
        }))
    indexes = [i for i, _ in laid]
    if len(set(indexes)) != len(indexes):
        raise BatchError("batch lists an item twice")
    concurrency = batch.get("per_task_concurrency", 1)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise BatchError("per_task_concurrency is not a whole number from 1")
    folder.mkdir(parents=True, exist_ok=True)
    for index, files in laid:
        (folder / str(index)).mkdir(exist_ok=True)
        for name, data in files.items():
            (folder / str(index) / name).write_bytes(data)
    (folder / "concurrency").write_text(f"{concurrency}\n")
    (folder / "order").write_text("".join(f"{i}\n" for i in indexes))
    (folder / "ready").write_text("")
    return indexes


class Uploader:
    """Copies the runner's marks and results to S3, each once, marks before results."""

    def __init__(self, s3: Any, location: Location, out: Path) -> None:
        self.s3 = s3
        self.location = location
        self.out = out
        self.uploaded: set[str] = set()

    def sweep(self) -> int:
        """Upload what appeared since the last sweep; how many uploads failed."""
        names = [p.name for p in self.out.iterdir()] if self.out.is_dir() else []
        fresh = sorted((n for n in names if ITEM_FILE.match(n) and n not in self.uploaded),
                       key=lambda n: (n.endswith(".json"), int(n.split(".")[0])))
        failed = 0
        for name in fresh:
            try:
                body = (self.out / name).read_bytes()
                self.s3.put_object(
                    Bucket=self.location.bucket, Key=self.location.items_prefix + name,
                    Body=body, ContentType="application/json" if name.endswith(".json")
                    else "text/plain")
            except (OSError, BotoCoreError, ClientError) as exc:  # retried next sweep
                log.warning("fanout agent: cannot upload %s yet: %s", name, exc)
                failed += 1
                continue
            self.uploaded.add(name)
        return failed


def run(s3: Any, url: str, *, batch_dir: Path | None = None, out_dir: Path | None = None,
        entrypoint: Sequence[str] = (), stopping: threading.Event | None = None,
        poll_seconds: float = POLL_SECONDS, stop_grace_seconds: float = STOP_GRACE_SECONDS,
        ) -> int:
    """Lay the batch out, then upload until the runner wrote ``exit``: 0 when every file
    it wrote is in S3, 1 when some could not be uploaded."""
    batch_dir, out_dir = batch_dir or BATCH_DIR, out_dir or OUT_DIR
    location = Location.parse(url)
    batch = json.loads(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())
    indexes = lay_out(batch, batch_dir, entrypoint)
    log.info("fanout agent: %d items ready for the runner", len(indexes))
    stopping = stopping or threading.Event()
    uploader = Uploader(s3, location, out_dir)
    stopped_at: float | None = None
    while True:
        done = (out_dir / "exit").exists()
        uploader.sweep()
        if done:
            break
        if stopping.is_set():
            stopped_at = stopped_at or time.monotonic()
            if time.monotonic() - stopped_at > stop_grace_seconds:
                log.warning("fanout agent: the runner wrote no exit after the stop")
                break
        if stopping.is_set():
            time.sleep(poll_seconds)
        else:
            stopping.wait(poll_seconds)
    return 1 if uploader.sweep() else 0


def main(argv: Sequence[str]) -> int:
    """``[--entrypoint JSON] [s3://...batch.json]``: the entrypoint is the task
    definition's (the job's config), the batch Launch's (an argument or ``FANOUT_BATCH``)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="packed_agent")
    parser.add_argument("--entrypoint", default="[]")
    parser.add_argument("batch", nargs="?", default=os.environ.get("FANOUT_BATCH"))
    args = parser.parse_args(argv)
    try:
        entrypoint = json.loads(args.entrypoint)
        if not isinstance(entrypoint, list) or not all(isinstance(a, str) for a in entrypoint):
            raise BatchError("--entrypoint is not a JSON list of strings")
        if not args.batch:
            raise BatchError("no batch: pass s3://BUCKET/runs/RUN/tasks/KEY/batch.json "
                             "or set FANOUT_BATCH")
        import boto3

        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        return run(boto3.client("s3"), args.batch, entrypoint=entrypoint, stopping=stopping)
    except (BatchError, json.JSONDecodeError) as exc:
        print(f"fanout agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
