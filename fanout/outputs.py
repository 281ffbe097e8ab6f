"""Item outputs: where each item's task may write (``FANOUT_OUTPUT``) and what it wrote.

Every item of a run has a location of its own, given to each of its attempts as
``FANOUT_OUTPUT``:

- on AWS, the S3 prefix ``s3://<manifest bucket>/runs/<run_id>/outputs/<index>/``;
- locally, the absolute folder ``<records folder>/<run_id>/outputs/<index>/`` (the run's
  records folder, ``.fanout/runs/<run_id>/``), made before the item's task starts.

Where the locations are rooted is the deployment's *outputs root*: ``s3://<bucket>`` on
AWS, the absolute records folder locally (the functions' ``FANOUT_OUTPUTS``). When an item
ends, what is under its location is listed (:func:`list_outputs`): keys relative to the
location and sizes, at most :data:`OUTPUTS_LISTED` entries and :data:`OUTPUTS_LISTED_BYTES`
of them kept on the item's record (a DynamoDB item holds 400 KB), with the count and
bytes of everything found. The item record keeps it as ``outputs`` (the listing's
:meth:`OutputsListing.to_json`); users read it as :meth:`OutputsListing.fields`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanout.aws.clients import client
from fanout.schema import OUTPUTS_KEY

S3_SCHEME = "s3://"
#: Entries of an item's outputs kept on its record (the count and bytes cover them all).
OUTPUTS_LISTED = 100
#: ... and at most this many characters of them as JSON (keys can be 1,024 bytes each).
OUTPUTS_LISTED_BYTES = 16 * 1024
#: An item's S3 listing stops after this many pages (1,000 keys each): the count and
#: bytes then cover what was read, and the listing says it is partial.
OUTPUTS_PAGES = 20


def bucket_root(bucket: str) -> str:
    """The outputs root of a deployment on AWS: its manifest bucket."""
    return f"{S3_SCHEME}{bucket}"


def output_location(root: str, run_id: str, index: int) -> str:
    """The location of item ``index`` of ``run_id``: ``root`` is ``s3://<bucket>`` (AWS)
    or the absolute local records folder (``.fanout/runs`` resolved). Ends with ``/``."""
    if root.startswith(S3_SCHEME):
        return f"{root.rstrip('/')}/{OUTPUTS_KEY.format(run_id=run_id, index=index)}"
    return os.path.join(os.path.abspath(root), run_id, "outputs", str(index), "")


def is_s3(location: str) -> bool:
    return location.startswith(S3_SCHEME)


def split_s3(location: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> (``bucket``, ``some/prefix/``)."""
    bucket, _, prefix = location[len(S3_SCHEME):].partition("/")
    return bucket, prefix


@dataclass(frozen=True)
class OutputsListing:
    """What an item wrote: its location, the entries kept (``{"key", "size"}``, keys
    relative to the location, in key order) and the count and bytes of all it found."""

    location: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    bytes: int = 0
    #: The listing stopped before the end (over :data:`OUTPUTS_PAGES` pages).
    partial: bool = False

    @property
    def capped(self) -> bool:
        return self.count > len(self.entries) or self.partial

    def to_json(self) -> dict[str, Any]:
        """The form kept on the item record."""
        out: dict[str, Any] = {"location": self.location, "entries": self.entries,
                               "count": self.count, "bytes": self.bytes}
        if self.partial:
            out["partial"] = True
        return out

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> OutputsListing:
        return cls(location=str(value.get("location", "")),
                   entries=list(value.get("entries", [])), count=int(value.get("count", 0)),
                   bytes=int(value.get("bytes", 0)), partial=bool(value.get("partial")))

    def fields(self) -> dict[str, Any]:
        """The item's fields users read (``fanout items --json``): ``output`` (the location),
        ``outputs`` (the entries kept), ``outputs_count`` and ``outputs_bytes`` (of all
        found: more than the entries when the list is capped) and ``outputs_partial`` (the
        listing stopped early: count and bytes are of what was read)."""
        return {"output": self.location, "outputs": self.entries,
                "outputs_count": self.count, "outputs_bytes": self.bytes,
                "outputs_partial": self.partial}


#: The same fields for an item whose outputs are not recorded (it has not ended).
NO_OUTPUTS: dict[str, Any] = {"output": None, "outputs": None, "outputs_count": None,
                              "outputs_bytes": None, "outputs_partial": False}


def output_fields(recorded: dict[str, Any] | None) -> dict[str, Any]:
    """The fields users read of an item record's ``outputs`` (its record form, or None)."""
    return OutputsListing.from_json(recorded).fields() if recorded else dict(NO_OUTPUTS)


def size_text(n: int) -> str:
    """Bytes in a reader's units (``999 B``, ``1.2 KB``, ``3.4 GB``)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def gather(location: str, found: Iterator[tuple[str, int]], *, cap: int = OUTPUTS_LISTED,
           cap_bytes: int = OUTPUTS_LISTED_BYTES, partial: bool = False) -> OutputsListing:
    """Keep the first ``cap`` entries of ``found`` (``(key, size)`` in key order) that fit
    in ``cap_bytes`` of JSON; count and sum every one."""
    entries: list[dict[str, Any]] = []
    count = total = used = 0
    full = False
    for key, size in found:
        count += 1
        total += size
        if full:
            continue
        entry = {"key": key, "size": size}
        width = len(json.dumps(entry, separators=(",", ":"))) + 1
        if len(entries) >= cap or used + width > cap_bytes:
            full = True
            continue
        entries.append(entry)
        used += width
    return OutputsListing(location, entries, count, total, partial)


def list_outputs(location: str, *, s3: Any = None, cap: int = OUTPUTS_LISTED,
                 cap_bytes: int = OUTPUTS_LISTED_BYTES,
                 max_pages: int = OUTPUTS_PAGES) -> OutputsListing:
    """What is under an item's location: an S3 prefix (read with ``s3``, default the
    project's client, one ListObjectsV2 page at a time) or a local folder (nothing when
    it does not exist). At most ``cap`` entries are kept; the count and bytes cover all."""
    if is_s3(location):
        found, stopped = _s3_objects(location, s3 or client("s3"), max_pages)
        return gather(location, iter(found), cap=cap, cap_bytes=cap_bytes, partial=stopped)
    return gather(location, _local_files(Path(location)), cap=cap, cap_bytes=cap_bytes)


def every_output(location: str, *, s3: Any = None) -> list[tuple[str, int]]:
    """Every object under a location, ``(key, size)`` in key order, no cap: what
    :func:`download_outputs` copies."""
    if is_s3(location):
        return _s3_objects(location, s3 or client("s3"), max_pages=None)[0]
    return list(_local_files(Path(location)))


class UnsafeKey(ValueError):
    """An output key that would be written outside the folder it is downloaded to."""


def download_outputs(location: str, folder: Path, *, s3: Any = None) -> list[Path]:
    """Copy everything under ``location`` into ``folder`` (made), each key at its relative
    path; returns the files written. A key that would land outside ``folder`` (``..``, an
    absolute path) is refused with :class:`UnsafeKey` before anything is written."""
    found = every_output(location, s3=s3)
    root = folder.resolve()
    targets = []
    for key, _ in found:
        target = (root / key).resolve()
        if not target.is_relative_to(root) or target == root:
            raise UnsafeKey(f"output {key!r} of {location} would be written outside {folder}")
        targets.append((key, target))
    s3 = s3 or (client("s3") if is_s3(location) else None)
    written = []
    for key, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_s3(location):
            bucket, prefix = split_s3(location)
            s3.download_file(bucket, prefix + key, str(target))
        else:
            shutil.copyfile(Path(location) / key, target)
        written.append(target)
    return written


def _s3_objects(location: str, s3: Any, max_pages: int | None
                ) -> tuple[list[tuple[str, int]], bool]:
    """The objects under an S3 location, keys relative to it, and whether the listing
    stopped after ``max_pages`` pages with more to read."""
    bucket, prefix = split_s3(location)
    found: list[tuple[str, int]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for number, page in enumerate(paginator.paginate(Bucket=bucket, Prefix=prefix)):
        if max_pages is not None and number >= max_pages:
            return found, True
        for obj in page.get("Contents", []):
            key = obj["Key"][len(prefix):]
            if key and not key.endswith("/"):  # a "folder" marker is no output
                found.append((key, int(obj.get("Size", 0))))
    return found, False


def _local_files(folder: Path) -> Iterator[tuple[str, int]]:
    if not folder.is_dir():
        return
    found = [(p.relative_to(folder).as_posix(), p.stat().st_size)
             for p in folder.rglob("*") if p.is_file()]
    yield from sorted(found)
