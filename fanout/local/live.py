"""The records of a local run while it runs: ``records.jsonl`` rewritten about once a second.

``fanout status|items --local`` and the dashboard read a run's records file
(docs/local-records.md). Without this, the file would hold only the run line until the run
ends, and a run whose items are mostly done would read as idle. :class:`LiveRecords` is a
thread of the ``fanout local`` process that writes the file in the same format from the
emulated table: the run line (status RUNNING, this process's id, the counters as the table
has them), one line per item (an item never launched is PENDING, with its params from the
run's manifest) and one per attempt. The file is replaced whole (written aside, renamed),
so a reader never sees half of it; when the run ends, the runner writes the final records
over the last snapshot. The log file of each attempt that has settled is written too
(``logs/``), once.

Cost, off the items' path: the table's records of the run are read from moto's memory
(no request, no lock held while reading: a copy of one partition's dict is atomic), and a
record is turned into its lines again only when one of its values changed, so a snapshot
of a run whose items are mostly settled costs a comparison per record and the file's
write. A snapshot is skipped when nothing changed, and the period stretches so that
snapshots take at most a tenth of the time (docs/local-records.md gives the figures).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.local.records import FORMAT, RECORDS, prices_of, size_of
from fanout.records.layout import from_attrs, run_pk
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
from fanout.records.views import item_detail, run_cost, run_view, task_size
from fanout.schema import MANIFEST_KEY, SORT_KEY

if TYPE_CHECKING:
    from fanout.config import FanoutConfig
    from fanout.local.stack import LocalStack

#: Seconds between snapshots (at least: see :attr:`LiveRecords.busy_share`).
PERIOD_SECONDS = 1.0

#: One record of the run's partition: its sort key, a fingerprint of its values (None: no
#: cheap fingerprint, always converted) and its attributes as plain values, on demand.
Fingerprint = tuple[Any, ...] | None


@dataclass
class Raw:
    sk: str
    fingerprint: Fingerprint
    attrs: Any  # a callable giving the plain attributes

    def plain(self) -> dict[str, Any]:
        value: dict[str, Any] = self.attrs()
        return value


def _line(record: str, value: dict[str, Any]) -> str:
    return json.dumps({"record": record, **value}, sort_keys=True, default=str)


@dataclass
class _Cached:
    key: tuple[Any, ...]
    item_line: str
    attempt_lines: list[str]
    attempts: list[AttemptRecord]
    status: str


@dataclass
class Snapshots:
    """The lines of a run's records file, rebuilt only where the table changed."""

    run_id: str
    config: FanoutConfig
    region: str
    #: Rendered items from the run's manifest (index -> its params, command, environment).
    manifest: dict[int, dict[str, Any]] = field(default_factory=dict)
    _items: dict[int, _Cached] = field(default_factory=dict)
    _pending: dict[int, str] = field(default_factory=dict)
    _last: str | None = None
    #: Records turned into lines again in the last snapshot (what it cost).
    converted: int = 0

    def lines(self, run: RunRecord, spec: Any, records: Iterable[Raw],
              pid: int) -> list[str] | None:
        """The file's lines, or None when they are the last ones given."""
        by_index: dict[int, tuple[Raw | None, list[Raw]]] = {}
        for raw in records:
            if not raw.sk.startswith("ITEM#"):
                continue
            index = int(raw.sk[5:13])
            item, attempts = by_index.get(index, (None, []))
            if "#A#" in raw.sk:
                attempts.append(raw)
            else:
                item = raw
            by_index[index] = (item, attempts)
        self.converted = 0
        size = task_size(run.settings, size_of(self.config, run.job))
        prices = prices_of(self.region, self.config)
        written: dict[int, _Cached] = {}
        for index, (item, attempts) in by_index.items():
            if item is None:  # an attempt seen before its item (a write in between)
                continue
            attempts.sort(key=lambda a: a.sk)
            key = (item.fingerprint, *(a.fingerprint for a in attempts))
            cached = self._items.get(index)
            if cached is None or cached.key != key or None in key:
                cached = self._convert(key, item, attempts, size, prices)
            written[index] = cached
        self._items = written
        every = [a for c in written.values() for a in c.attempts]
        view = run_view(run, spec=spec, cost=run_cost(run, every, prices,
                                                      size_of(self.config, run.job)))
        # Still running as far as a reader can tell: the final records say how it ended.
        view.update(status="RUNNING", finished_at=None, duration_seconds=None, reason=None,
                    trigger="local" if view["trigger"] == "cli" else view["trigger"])
        head = _line("run", {**view, "format": FORMAT, "pid": pid, "settings": run.settings,
                             "notified": False})
        out = [head]
        out += [written[i].item_line if i in written else self._pending_line(i)
                for i in range(run.total)]
        out += [written[i].item_line for i in sorted(written) if i >= run.total]
        out += [line for i in sorted(written) for line in written[i].attempt_lines]
        joined = "\n".join(out)
        if joined == self._last:
            return None
        self._last = joined
        return out

    def _convert(self, key: tuple[Any, ...], item: Raw, attempts: list[Raw], size: Any,
                 prices: Any) -> _Cached:
        self.converted += 1 + len(attempts)
        record: ItemRecord = from_attrs(ItemRecord, item.plain())
        tried: list[AttemptRecord] = [from_attrs(AttemptRecord, a.plain()) for a in attempts]
        detail = item_detail(record, tried, size=size, prices=prices)
        return _Cached(
            key=key,
            item_line=_line("item", {k: v for k, v in detail.items() if k != "attempt_list"}),
            attempt_lines=[_line("attempt", {"run_id": self.run_id, "index": record.index,
                                             **a}) for a in detail["attempt_list"]],
            attempts=tried, status=detail["status"])

    def settled(self) -> list[_Cached]:
        """The items whose attempts have all settled, as the last snapshot saw them."""
        return [c for c in self._items.values()
                if all(not a.is_open for a in c.attempts)]

    def _pending_line(self, index: int) -> str:
        line = self._pending.get(index)
        if line is None:
            rendered = self.manifest.get(index, {})
            record = ItemRecord(self.run_id, index, "PENDING",
                                params=rendered.get("params") or {},
                                command=list(rendered.get("command") or []),
                                environment=dict(rendered.get("environment") or {}))
            view = item_detail(record, [])
            line = _line("item", {k: v for k, v in view.items() if k != "attempt_list"})
            self._pending[index] = line
        return line


# --- the emulated table, read in memory ---------------------------------------------------


def _plain_value(value: Any) -> Any:
    kind = value.type
    if kind == "S" or kind == "BOOL":
        return value.value
    if kind == "N":
        return Decimal(value.value)
    if kind == "NULL":
        return None
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer().deserialize(value.to_json())


def _fingerprint(attrs: dict[str, Any]) -> Fingerprint:
    parts: list[Any] = []
    for name, value in attrs.items():
        if value.type not in ("S", "N", "BOOL", "NULL"):
            return None  # a map or a list could change inside: no cheap fingerprint
        parts.append((name, value.value))
    return tuple(parts)


def partition(table: Any, run_id: str) -> Iterator[Raw]:
    """The run's records in moto's table, each with a fingerprint of its values.

    Copies of moto's dicts are taken in one call each (atomic under the interpreter lock),
    so a writer in another thread never changes them under the walk; a record being
    changed at that instant is read as it was, or as it is: the next snapshot sees it.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType

    found = table.items.get(DynamoType({"S": run_pk(run_id)}))
    for moto_item in list(found.values()) if found else []:
        attrs = dict(moto_item.attrs)
        sk = attrs.get(SORT_KEY)
        if sk is None or sk.type != "S":
            continue
        yield Raw(str(sk.value), _fingerprint(attrs),
                  lambda attrs=attrs: {k: _plain_value(v) for k, v in attrs.items()})


class LiveRecords:
    """A thread writing a local run's records file while it runs (see the module)."""

    def __init__(self, folder: Path, stack: LocalStack, run_id: str, config: FanoutConfig,
                 period: float = PERIOD_SECONDS) -> None:
        self.folder = folder
        self.stack = stack
        self.run_id = run_id
        self.period = period
        self.snapshots = Snapshots(run_id, config, stack.region)
        self.written = 0
        #: Snapshots that failed (a record read mid-change); the next one tries again.
        self.failures = 0
        #: Seconds spent on snapshots, all together.
        self.busy_seconds = 0.0
        self._spec: Any = None
        self._manifest_read = False
        #: (index, attempt) of the attempts whose log file is written.
        self._logged: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fanout-live-records",
                                        daemon=True)

    def __enter__(self) -> LiveRecords:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        wait = self.period
        while not self._stop.wait(wait):
            began = time.monotonic()
            try:
                self.snapshot()
            except Exception:  # a live view is best effort; the final records are exact
                self.failures += 1
            spent = time.monotonic() - began
            self.busy_seconds += spent
            wait = max(self.period, 9 * spent)  # snapshots take at most a tenth of the time

    def snapshot(self) -> bool:
        """Write the records file once if the run's records changed; whether it did."""
        from moto.dynamodb.models import dynamodb_backends

        from fanout.records.dynamo import DynamoRecords

        store = DynamoRecords(self.stack.table)
        run = store.get_run(self.run_id)
        if run is None:  # Expand has not written it yet
            return False
        if self._spec is None:
            self._spec = store.get_spec(self.run_id)
        if not self._manifest_read:
            self._manifest_read = True
            self.snapshots.manifest = self._manifest()
        table = dynamodb_backends[self.stack.account][self.stack.region].get_table(
            self.stack.table)
        lines = self.snapshots.lines(run, self._spec, partition(table, self.run_id),
                                     os.getpid())
        if lines is None:
            return False
        if self._stop.is_set():
            return False  # the run is being closed: its final records come next
        self._logs(run.job)  # first: a reader that sees an attempt settled finds its log
        _replace(self.folder / RECORDS, lines)
        self.written += 1
        return True

    def _logs(self, job: str) -> None:
        """The log file of each attempt that has settled since the last snapshot (named as
        the final records name them); a running attempt's lines come when it settles."""
        from moto.logs.models import logs_backends

        group = logs_backends[self.stack.account][self.stack.region].groups.get(
            self.stack.log_groups.get(job, ""))
        for cached in self.snapshots.settled():
            for attempt in cached.attempts:
                key = (attempt.index, attempt.attempt)
                if key in self._logged or not attempt.log_stream or not attempt.task_arn:
                    continue
                stream = group.streams.get(attempt.log_stream) if group else None
                events = list(stream.events) if stream else []  # one atomic copy
                task_id = attempt.task_arn.rsplit("/", 1)[-1]
                path = self.folder / "logs" / \
                    f"item-{attempt.index}-attempt-{attempt.attempt}-{task_id}.log"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"{e.message}\n" for e in events))
                self._logged.add(key)

    def _manifest(self) -> dict[int, dict[str, Any]]:
        """The run's rendered items, from the manifest Expand wrote (empty if unreadable)."""
        import boto3

        try:
            body = boto3.client("s3", region_name=self.stack.region).get_object(
                Bucket=self.stack.bucket, Key=MANIFEST_KEY.format(run_id=self.run_id))["Body"]
            rendered = json.loads(body.read())
        except Exception:  # pending items then show without their params
            return {}
        return {int(i["index"]): i for i in rendered if isinstance(i, dict) and "index" in i}


def _replace(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.live.{os.getpid()}")
    with open(aside, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(aside, path)
