"""An in-memory S3 with what item outputs need: put_object, download_file and
ListObjectsV2's paginator (pages of at most 1,000 keys in key order, as S3 returns them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PAGE_KEYS = 1000


@dataclass
class MemoryS3:
    #: (bucket, key) -> body
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    #: ListObjectsV2 pages served (a listing that stops early reads fewer).
    pages_read: int = 0

    def put_object(self, Bucket: str, Key: str, Body: bytes = b"",
                   **_: Any) -> dict[str, Any]:
        self.objects[(Bucket, Key)] = bytes(Body)
        return {}

    def download_file(self, Bucket: str, Key: str, Filename: str) -> None:
        with open(Filename, "wb") as out:
            out.write(self.objects[(Bucket, Key)])

    def get_paginator(self, operation: str) -> _Paginator:
        assert operation == "list_objects_v2", operation
        return _Paginator(self)


@dataclass
class _Paginator:
    s3: MemoryS3

    def paginate(self, Bucket: str, Prefix: str = "") -> Iterator[dict[str, Any]]:
        keys = sorted(k for b, k in self.s3.objects if b == Bucket and k.startswith(Prefix))
        for start in range(0, max(len(keys), 1), PAGE_KEYS):
            self.s3.pages_read += 1
            page = keys[start:start + PAGE_KEYS]
            yield {"KeyCount": len(page), **({"Contents": [
                {"Key": k, "Size": len(self.s3.objects[(Bucket, k)])} for k in page]}
                if page else {})}
