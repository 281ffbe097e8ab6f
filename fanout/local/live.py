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

Cost, off the items' path (a thread of its own; the items' handlers never wait on it):
the table's records of the run are read from moto's memory (no request, no lock held: a
copy of one partition's dict is atomic), and a record is turned into its lines again only
when its fingerprint (its attribute names and values) changed, so a snapshot of a run
whose items are mostly settled costs a comparison per record and the file's write, and
leaves the garbage collector nothing new to scan. A snapshot is skipped when nothing
changed, and the period stretches so that snapshots use at most a tenth of a core
(docs/local-records.md gives the figures).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.cost import AttemptUsage
from fanout.cost import run_cost as _run_cost
from fanout.local.logs import attempt_lines
from fanout.local.records import RECORDS, prices_of, size_of
from fanout.records.layout import from_attrs, run_pk
from fanout.records.local_format import FORMAT
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord
from fanout.records.views import item_detail, run_view, task_size, usage, view_of
from fanout.schema import MANIFEST_KEY, SORT_KEY

if TYPE_CHECKING:
    from fanout.config import FanoutConfig
    from fanout.local.stack import LocalStack

#: Seconds between snapshots, at least (longer when one takes over a tenth of it in CPU).
PERIOD_SECONDS = 1.0
#: While the run's record (its counters) stays the same, its items' records are looked at
#: this often only: every change of an item's status changes the counters in the same
#: write, so what waits is an attempt's details (its task started, a retry's wait).
QUIET_SECONDS = 5.0

#: A fingerprint of a record's values (None: no cheap one; the record is always converted).
Fingerprint = tuple[Any, ...] | None
#: One record of the run's partition: its sort key, its fingerprint, its attributes (turned
#: into plain values by :attr:`Snapshots.plain`, only when the fingerprint changed).
Raw = tuple[str, Fingerprint, Any]


def _line(record: str, value: dict[str, Any]) -> str:
    return json.dumps({"record": record, **value}, sort_keys=True, default=str)


@dataclass
class _Cached:
    item_line: str
    attempt_lines: list[str]
    #: What the item's attempts cost (the run's cost is summed from these).
    usages: list[AttemptUsage]


_GONE = object()


@dataclass
class Snapshots:
    """The lines of a run's records file, rebuilt only where the table changed.

    Only what changed is kept: a record whose fingerprint is the one seen last leaves
    nothing behind (no copy, no new object that outlives the snapshot), so a snapshot of a
    large run gives the interpreter's garbage collector next to nothing to scan.
    """

    run_id: str
    config: FanoutConfig
    region: str
    #: Rendered items from the run's manifest (index -> its params, command, environment).
    manifest: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: A record's attributes as plain values (the table's own, read from moto: see
    #: :func:`plain_attrs`).
    plain: Callable[[Any], dict[str, Any]] = dict
    _items: dict[int, _Cached] = field(default_factory=dict)
    _pending: dict[int, str] = field(default_factory=dict)
    _fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    _sources: dict[str, Any] = field(default_factory=dict)
    _members: dict[str, set[str]] = field(default_factory=dict)
    _last_run: RunRecord | None = None
    #: Records turned into lines again in the last snapshot (what it cost).
    converted: int = 0
    #: Items converted in the last snapshot whose attempts had all settled.
    settled: list[tuple[int, list[AttemptRecord]]] = field(default_factory=list)

    def lines(self, run: RunRecord, spec: Any, records: Iterable[Raw],
              pid: int) -> list[str] | None:
        """The file's lines, or None when nothing changed since the last ones given."""
        seen: set[str] = set()
        dirty: set[str] = set()
        for sk, fingerprint, source in records:
            if not sk.startswith("ITEM#"):
                continue
            seen.add(sk)
            if fingerprint is None or self._fingerprints.get(sk, _GONE) != fingerprint:
                prefix = sk[:13]  # ITEM#<index:08d>: the item's own sort key
                self._fingerprints[sk], self._sources[sk] = fingerprint, source
                self._members.setdefault(prefix, set()).add(sk)
                dirty.add(prefix)
        for sk in self._fingerprints.keys() - seen:  # put back by a cancelled transaction
            del self._fingerprints[sk], self._sources[sk]
            self._members[sk[:13]].discard(sk)
            dirty.add(sk[:13])
        self.converted, self.settled = 0, []
        if not dirty and run == self._last_run:
            return None
        self._last_run = run
        size = task_size(run.settings, size_of(self.config, run.job))
        prices = prices_of(self.region, self.config)
        for prefix in dirty:
            index = int(prefix[5:])
            if prefix not in self._sources:  # an attempt seen before its item: not yet
                self._items.pop(index, None)
                continue
            attempts = sorted(self._members[prefix] - {prefix})
            self._items[index] = self._convert(prefix, attempts, size, prices)
        written = self._items
        cost = _run_cost((u for c in written.values() for u in c.usages), items=run.total,
                         size=size, prices=prices)
        view = run_view(run, spec=spec, cost=cost)
        # Still running as far as a reader can tell: the final records say how it ended.
        view.update(status="RUNNING", finished_at=None, duration_seconds=None, reason=None,
                    trigger="local" if view["trigger"] == "cli" else view["trigger"])
        head = _line("run", {**view, "format": FORMAT, "pid": pid, "settings": run.settings,
                             "notified": False})
        out = [head]
        out += [written[i].item_line if i in written else self._pending_line(i)
                for i in range(run.total)]
        indexes = sorted(written)
        out += [written[i].item_line for i in indexes if i >= run.total]
        out += [line for i in indexes for line in written[i].attempt_lines]
        return out

    def forget(self) -> None:
        """Start over: the next snapshot converts every record (after one that failed)."""
        for kept in (self._items, self._fingerprints, self._sources, self._members):
            kept.clear()
        self._last_run = None

    def _convert(self, prefix: str, attempts: list[str], size: Any, prices: Any) -> _Cached:
        self.converted += 1 + len(attempts)
        record: ItemRecord = from_attrs(ItemRecord, self.plain(self._sources[prefix]))
        tried: list[AttemptRecord] = [from_attrs(AttemptRecord, self.plain(self._sources[sk]))
                                      for sk in attempts]
        detail = item_detail(record, tried, size=size, prices=prices)
        if all(not a.is_open for a in tried):
            self.settled.append((record.index, tried))
        return _Cached(
            item_line=_line("item", view_of(detail)),
            attempt_lines=[_line("attempt", {"run_id": self.run_id, "index": record.index,
                                             **a}) for a in detail["attempts"]],
            usages=[usage(a) for a in tried])

    def _pending_line(self, index: int) -> str:
        line = self._pending.get(index)
        if line is None:
            rendered = self.manifest.get(index, {})
            record = ItemRecord(self.run_id, index, "PENDING",
                                params=rendered.get("params") or {},
                                command=list(rendered.get("command") or []),
                                environment=dict(rendered.get("environment") or {}))
            view = item_detail(record, [])
            line = _line("item", view_of(view))
            self._pending[index] = line
        return line


# --- the emulated table, read in memory ---------------------------------------------------


_VALUE = attrgetter("value")
_TYPE = attrgetter("type")
_SCALARS = frozenset({"S", "N", "BOOL", "NULL"})


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


def plain_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """A moto item's attributes as plain values (what DynamoRecords reads from a response)."""
    return {k: _plain_value(v) for k, v in dict(attrs).items()}  # dict(): one atomic copy


def _fingerprint(attrs: dict[str, Any]) -> Fingerprint:
    values = tuple(attrs.values())  # one atomic copy
    if not _SCALARS.issuperset(map(_TYPE, values)):
        return None  # a map or a list could change inside: no cheap fingerprint
    # A record's values are immutable strings, numbers and flags: equal values, same lines.
    return (*attrs, *map(_VALUE, values))


def partition(table: Any, run_id: str) -> Iterator[Raw]:
    """The run's records in moto's table, each with a fingerprint of its values.

    Copies of moto's dicts are taken in one call each (atomic under the interpreter lock),
    so a writer in another thread never changes them under the walk; a record being
    changed at that instant is read as it was, or as it is: the next snapshot sees it.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType

    found = table.items.get(DynamoType({"S": run_pk(run_id)}))
    for moto_item in list(found.values()) if found else []:
        attrs = moto_item.attrs  # read when converted: a change since is seen next time
        sk = attrs.get(SORT_KEY)
        if sk is not None and sk.type == "S":
            yield sk.value, _fingerprint(attrs), attrs


class LiveRecords:
    """A thread writing a local run's records file while it runs (see the module)."""

    def __init__(self, folder: Path, stack: LocalStack, run_id: str, config: FanoutConfig,
                 period: float = PERIOD_SECONDS) -> None:
        self.folder = folder
        self.stack = stack
        self.run_id = run_id
        self.period = period
        self.snapshots = Snapshots(run_id, config, stack.region, plain=plain_attrs)
        self.written = 0
        #: Snapshots that failed (a record read mid-change); the next one tries again.
        self.failures = 0
        #: Seconds spent on snapshots, all together: wall time, and this thread's CPU time.
        self.busy_seconds = 0.0
        self.cpu_seconds = 0.0
        self.snapshots_taken = 0
        self._spec: Any = None
        self._manifest_read = False
        self._run: RunRecord | None = None
        self._scanned = 0.0
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
            began, cpu = time.monotonic(), time.thread_time()
            try:
                self.snapshot()
            except Exception:  # a live view is best effort; the final records are exact
                self.failures += 1
                self.snapshots.forget()  # the next snapshot starts over
            used = time.thread_time() - cpu
            self.busy_seconds += time.monotonic() - began
            self.cpu_seconds += used
            self.snapshots_taken += 1
            # Snapshots use at most a tenth of a core (CPU time: on a loaded machine, the
            # wall time of a snapshot is mostly its wait for the interpreter lock).
            wait = max(self.period, 9 * used)

    def snapshot(self) -> bool:
        """Write the records file once if the run's records changed; whether it did."""
        from moto.dynamodb.models import dynamodb_backends

        from fanout.records.dynamo import DynamoRecords

        store = DynamoRecords(self.stack.table)
        run = store.get_run(self.run_id)
        if run is None:  # Expand has not written it yet
            return False
        if run == self._run and time.monotonic() - self._scanned < QUIET_SECONDS:
            return False
        self._run, self._scanned = run, time.monotonic()
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
        for _, attempts in self.snapshots.settled:
            for attempt in attempts:
                key = (attempt.index, attempt.attempt)
                if key in self._logged or not attempt.log_stream or not attempt.task_arn:
                    continue
                stream = group.streams.get(attempt.log_stream) if group else None
                events = list(stream.events) if stream else []  # one atomic copy
                task_id = attempt.task_arn.rsplit("/", 1)[-1]
                path = self.folder / "logs" / \
                    f"item-{attempt.index}-attempt-{attempt.attempt}-{task_id}.log"
                path.parent.mkdir(parents=True, exist_ok=True)
                messages = [e.message for e in events]
                packed = any(m.startswith(f"[fanout item={attempt.index} ") for m in messages)
                lines = attempt_lines(messages, attempt.index, attempt.attempt, packed=packed)
                path.write_text("".join(f"{line}\n" for line in lines))
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
        return rendered_items(rendered)


def rendered_items(manifest: Any) -> dict[int, dict[str, Any]]:
    """The items of a manifest by index; a packed run's manifest holds batches of items
    (docs/decisions/0020)."""
    elements = manifest if isinstance(manifest, list) else []
    items = [m for e in elements if isinstance(e, dict)
             for m in (e.get("items") or [] if "batch" in e else [e])]
    return {int(i["index"]): i for i in items if isinstance(i, dict) and "index" in i}


def _replace(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.live.{os.getpid()}")
    with open(aside, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(aside, path)
