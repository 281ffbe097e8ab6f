"""The run's items manifest on S3: written as a multipart upload, read back as a stream.

The manifest (``runs/<run_id>/items.json``, docs/decisions/0001) can hold millions of
items; readers take the lines they need as they pass, so memory does not grow with it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

from fanout.schema import MANIFEST_KEY

#: Bytes read from S3 at a time.
CHUNK_SIZE = 1024 * 1024
#: S3 multipart parts must be at least 5 MiB (but the last).
PART_SIZE = 8 * 1024 * 1024


def array_items(body: Any, chunk_size: int = CHUNK_SIZE) -> Iterator[dict[str, Any]]:
    """The objects of a JSON array of objects, read from ``body`` (``.read(n)``) in chunks."""
    for value, _ in array_items_at(body, chunk_size=chunk_size):
        yield value


def array_items_at(body: Any, start: int = 0, chunk_size: int = CHUNK_SIZE
                   ) -> Iterator[tuple[dict[str, Any], int]]:
    """Each object of a JSON array read from ``body``, with the byte offset just past it
    (``start`` is the offset ``body`` begins at: a read resumed there goes on from it)."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")()
    buffer, pos, eof, offset = "", 0, False, start
    while True:
        while pos < len(buffer) and buffer[pos] in " \t\r\n,[":
            pos += 1
            offset += 1
        if pos < len(buffer):
            if buffer[pos] == "]":
                return
            try:
                # An object is complete only once its closing brace has been read, so a
                # chunk that ends inside one fails to decode rather than decoding short.
                value, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError:
                if eof:
                    raise
            else:
                offset += len(buffer[pos:end].encode())
                yield value, offset
                pos = end
                continue
        elif eof:
            return
        chunk = body.read(chunk_size)
        eof = not chunk
        buffer = buffer[pos:] + text.decode(chunk or b"", final=eof)
        pos = 0


def manifest_items(s3: Any, bucket: str, run_id: str) -> Iterator[dict[str, Any]]:
    """The manifest lines of ``run_id`` in index order (a packed run's batches give their
    items); none when it cannot be read (removed by the bucket's lifecycle rule, or never
    written)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=MANIFEST_KEY.format(run_id=run_id))["Body"]
    except Exception:  # botocore's NoSuchKey / AccessDenied
        return
    for element in array_items(body):
        yield from element["items"] if "batch" in element else (element,)


def manifest_from(s3: Any, bucket: str, run_id: str, offset: int = 0
                  ) -> Iterator[tuple[dict[str, Any], int]]:
    """The manifest lines of ``run_id`` from byte ``offset`` on (an offset this gave), each
    with the offset just past it: a reader that stops can resume there, in another process.
    None when the manifest cannot be read."""
    key = MANIFEST_KEY.format(run_id=run_id)
    try:
        body = s3.get_object(Bucket=bucket, Key=key,
                             **({"Range": f"bytes={offset}-"} if offset else {}))["Body"]
    except Exception:  # botocore's NoSuchKey / AccessDenied / InvalidRange (read to its end)
        return
    begun = offset
    for element, end in array_items_at(body, offset):
        if "batch" not in element:
            yield element, end
        else:  # a packed run's batch (docs/decisions/0020): its items, in index order
            members = element["items"]
            # Read on from mid-batch, the reader starts at the batch again: its items
            # already read come again, before the ones it wanted.
            for n, item in enumerate(members):
                yield item, end if n == len(members) - 1 else begun
        begun = end


def _chunks(lines: Iterable[str], size: int) -> Iterator[bytes]:
    """The JSON array ``[line,line,...]`` in parts of at least ``size`` bytes (last smaller)."""
    buffer = bytearray(b"[")
    first = True
    for line in lines:
        if not first:
            buffer += b","
        buffer += line.encode()
        first = False
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]"
    yield bytes(buffer)


def write_manifest(s3: Any, bucket: str, key: str, lines: Iterable[str],
                   part_size: int = PART_SIZE) -> int:
    """Stream the items into a JSON array object with a multipart upload; returns parts."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key,
                                        ContentType="application/json")
    parts = []
    try:
        for number, chunk in enumerate(_chunks(lines, part_size), start=1):
            done = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                  PartNumber=number, Body=chunk)
            parts.append({"PartNumber": number, "ETag": done["ETag"]})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": parts})
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
        raise
    return len(parts)
