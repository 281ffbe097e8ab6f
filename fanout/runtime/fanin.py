"""Fan-in on AWS: a step's items taken from an earlier step, and its ``FANOUT_INPUTS``.

Decide writes, before it starts the step (docs/decisions/0018-pipelines-on-aws.md):

- ``s3://<bucket>/pipelines/<pipeline run>/<step>/items.jsonl``: one line per SUCCEEDED
  item of the step named by ``items_from: {"step": S}`` (its params, plus ``input``: that
  item's output location), read by the step's run as an ordinary ``items_from`` object;
- ``.../<step>/inputs.jsonl``: the manifest of every output of the steps it needs, one
  line per object (``step``, ``run_id``, ``index``, ``params``, ``location``, ``key``,
  ``size``), the same lines as locally (:mod:`fanout.local.fanin`).

The writer pages through the item records of the source runs a page at a time, each page
written as a part object (``.../<step>/<kind>.parts/<n>.jsonl``), for as long as its time
budget allows; its cursor is kept on the step's record, so the next Decide invocation goes
on where this one stopped (a 100,000-item step takes several). Once every page is read,
the parts are joined into the one object the step names (a multipart upload when large).
An item's outputs are taken from its record when the listing there is complete, else its
prefix is listed. Only S3 URIs ever cross the pipeline's Step Functions state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fanout.outputs import bucket_root, every_output, output_location
from fanout.records.store import RecordsStore
from fanout.runtime.closing import Budget

#: The item key that carries an earlier step's item's output location (as locally).
INPUT_KEY = "input"
#: Item records read per page.
PAGE_RECORDS = 500
#: S3's smallest multipart part (but the last): parts are joined in pieces at least this big.
PART_BYTES = 8 * 1024 * 1024

Kind = Literal["items", "inputs"]


def fanin_prefix(pipeline_run_id: str, step: str) -> str:
    return f"pipelines/{pipeline_run_id}/{step}"


def fanin_key(pipeline_run_id: str, step: str, kind: Kind) -> str:
    return f"{fanin_prefix(pipeline_run_id, step)}/{kind}.jsonl"


@dataclass
class FaninCursor:
    """Where a writer stopped: which source run, after which item index, parts written."""

    source: int = 0
    after: int = -1
    parts: int = 0
    lines: int = 0
    done: bool = False
    #: Distinct items written so far (``items``: the step's item count).
    items: int = 0

    @classmethod
    def of(cls, value: dict[str, Any] | None) -> FaninCursor:
        return cls(**value) if value else cls()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def item_lines(kind: Kind, step: str, item: Any, bucket: str, s3: Any
               ) -> Iterator[dict[str, Any]]:
    """The lines one SUCCEEDED item gives: its item line, or one manifest line per output."""
    recorded = item.outputs or {}
    location = recorded.get("location") or output_location(bucket_root(bucket), item.run_id,
                                                           item.index)
    if kind == "items":
        yield {**item.params, INPUT_KEY: location}
        return
    entries = recorded.get("entries")
    complete = entries is not None and int(recorded.get("count", 0)) == len(entries) \
        and not recorded.get("partial")
    found = [(e["key"], int(e["size"])) for e in entries] if complete and entries is not None \
        else every_output(location, s3=s3)
    for key, size in found:
        yield {"step": step, "run_id": item.run_id, "index": item.index,
               "params": item.params, "location": location, "key": key, "size": size}


def write_fanin(kind: Kind, sources: list[tuple[str, str]], *, pipeline_run_id: str,
                step: str, store: RecordsStore, s3: Any, bucket: str, cursor: FaninCursor,
                budget: Budget, save: Any = None, page_records: int | None = None) -> bool:
    """Go on writing ``kind`` for ``step`` from ``sources`` (``(step, run_id)`` pairs) at
    ``cursor`` (updated in place; ``save(cursor)`` after each page) while ``budget``
    allows, one page at least; True once the object is complete."""
    if cursor.done:
        return True
    limit = page_records or PAGE_RECORDS
    prefix = fanin_prefix(pipeline_run_id, step)
    first = True
    while cursor.source < len(sources) and (first or budget.allows()):
        first = False
        source_step, run_id = sources[cursor.source]
        run = store.get_run(run_id, totals=False)
        total = run.total if run is not None else 0
        page, last = store.items_page(run_id, cursor.after, limit) if total else ([], total)
        lines = [line for item in page if item.status == "SUCCEEDED"
                 for line in item_lines(kind, source_step, item, bucket, s3)]
        cursor.items += sum(1 for item in page if item.status == "SUCCEEDED")
        if lines:
            body = "".join(json.dumps(line) + "\n" for line in lines).encode()
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{kind}.parts/{cursor.parts:06d}.jsonl",
                          Body=body)
            cursor.parts += 1
            cursor.lines += len(lines)
        if last >= total - 1:
            cursor.source, cursor.after = cursor.source + 1, -1
        else:
            cursor.after = last
        if save is not None:
            save(cursor)
    if cursor.source < len(sources):
        return False
    _join(s3, bucket, f"{prefix}/{kind}.parts", fanin_key(pipeline_run_id, step, kind),
          cursor.parts)
    cursor.done = True
    if save is not None:
        save(cursor)
    return True


def _join(s3: Any, bucket: str, parts_prefix: str, key: str, parts: int) -> None:
    """Concatenate the part objects into ``key``: one PutObject when small, else a
    multipart upload of pieces of at least :data:`PART_BYTES` (streamed, not held)."""
    def bodies() -> Iterator[bytes]:
        for n in range(parts):
            yield s3.get_object(Bucket=bucket, Key=f"{parts_prefix}/{n:06d}.jsonl")["Body"].read()

    pieces: list[bytes] = []
    size = 0
    upload: str | None = None
    uploaded: list[dict[str, Any]] = []
    for body in bodies():
        pieces.append(body)
        size += len(body)
        if size >= PART_BYTES:
            if upload is None:
                upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            number = len(uploaded) + 1
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                                  Body=b"".join(pieces))["ETag"]
            uploaded.append({"PartNumber": number, "ETag": etag})
            pieces, size = [], 0
    if upload is None:
        s3.put_object(Bucket=bucket, Key=key, Body=b"".join(pieces))
        return
    if pieces:
        number = len(uploaded) + 1
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                              Body=b"".join(pieces))["ETag"]
        uploaded.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                 MultipartUpload={"Parts": uploaded})
