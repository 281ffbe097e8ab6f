"""The records of runs, items and attempts: one store interface, a DynamoDB form and a fake.

Layout (docs/decisions/0001): run ``RUN#<id>``/``RUN``; the run's spec as given
``RUN#<id>``/``SPEC``; item ``RUN#<id>``/``ITEM#<index:08d>``; attempt
``RUN#<id>``/``ITEM#<index:08d>#A#<n:03d>``; task ``TASK#<arn>``/``TASK``.
Every change of an item's status is one transaction with the run's counters, so run totals
always equal the count of item states; the run record stays small (the spec, which can be
large, is its own record) because every such transaction pays for its size. Every record
carries ``expires_at`` (TTL) from its first write. Writes that could race are conditional,
and each method says with its return value whether it won.

boto3 is imported lazily: this module is on the Lambda import path.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fanout.schema import INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RunStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "REJECTED"]
ItemStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
TERMINAL: tuple[ItemStatus, ...] = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: Run counters, by item status (``pending`` is ``total`` minus the others).
COUNTED: tuple[ItemStatus, ...] = ("RUNNING", *TERMINAL)
OPEN = "OPEN"


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def item_sk(index: int) -> str:
    return f"ITEM#{index:08d}"


def attempt_sk(index: int, attempt: int) -> str:
    return f"ITEM#{index:08d}#A#{attempt:03d}"


def counter(status: ItemStatus) -> str:
    return f"n_{status.lower()}"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    job: str
    status: RunStatus
    started_at: str
    total: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    trigger: str = "console"
    logical_time: str = ""
    execution_arn: str = ""
    parent_run: str | None = None
    finished_at: str | None = None
    summary: str | None = None
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: TTL (epoch seconds), from the first write: the end of the run's life + record_ttl_days.
    expires_at: int | None = None

    def count(self, status: ItemStatus) -> int:
        if status == "PENDING":
            return self.total - sum(self.counts.get(s, 0) for s in COUNTED)
        return self.counts.get(status, 0)

    def totals(self) -> dict[str, int]:
        """``total`` and one count per item status, lower case (what users read)."""
        out = {"total": self.total, "pending": self.count("PENDING")}
        out.update({s.lower(): self.count(s) for s in COUNTED})
        return out


@dataclass(frozen=True)
class ItemRecord:
    run_id: str
    index: int
    status: ItemStatus
    params: dict[str, Any] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    #: Attempts started so far; the last one is open while ``open_attempt`` is set.
    attempts: int = 0
    open_attempt: int | None = None
    exit_code: int | None = None
    #: Launch the next attempt on on-demand Fargate (after a Spot interruption).
    on_demand: bool = False
    #: Why the item ended, one line in a user's words (its last attempt's reason).
    reason: str | None = None
    #: The last lines of its last attempt's log (failed items only).
    log_tail: list[str] | None = None
    expires_at: int | None = None


@dataclass(frozen=True)
class AttemptRecord:
    run_id: str
    index: int
    attempt: int
    client_token: str
    task_token: str
    status: str = "LAUNCHING"  # LAUNCHING, RUNNING, then the class's item status or RETRY
    capacity: str = "FARGATE"
    created_at: str = ""
    deadline: str = ""
    task_arn: str | None = None
    launch_lease_until: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    log_stream: str | None = None
    stop_class: str | None = None
    #: How the attempt ended in a user's words ("exit code 3", "Spot interruption").
    reason: str | None = None
    #: The last lines (at most 20, 4 KB) of its log, for an attempt that did not succeed.
    log_tail: list[str] | None = None
    event_version: int | None = None
    #: The answer owed to the state machine, kept until it is given (heals a crash).
    answer: dict[str, Any] | None = None
    answered: bool = False
    expires_at: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("LAUNCHING", "RUNNING")


@dataclass(frozen=True)
class Settlement:
    """How an attempt ended and what happens to its item."""

    status: str  # the attempt's final status: an item status, or RETRY
    item_status: ItemStatus | None  # None: the item stays RUNNING for another attempt
    stop_class: str
    stopped_at: str
    answer: dict[str, Any]
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: str | None = None
    duration_seconds: float | None = None
    log_stream: str | None = None
    event_version: int | None = None
    on_demand: bool = False
    reason: str | None = None
    log_tail: list[str] | None = None


class RecordsStore(Protocol):
    """What the control plane reads and writes. Every write that can race says if it won."""

    def create_run(self, run: RunRecord, spec: Any = None) -> bool:
        """Write the run record once, and its spec as given (``SPEC``) before it."""
        ...
    def get_run(self, run_id: str) -> RunRecord | None: ...
    def get_spec(self, run_id: str) -> Any:
        """The run's spec as given; None when the run has no spec record."""
        ...
    def finish_run(self, run_id: str, status: RunStatus, finished_at: str, summary: str,
                   expires_at: int | None = None) -> bool:
        """Close a RUNNING run (once). ``expires_at`` replaces the TTL from its creation."""
        ...
    def get_item(self, run_id: str, index: int) -> ItemRecord | None: ...
    def items(self, run_id: str) -> Iterator[ItemRecord]: ...
    def get_attempt(self, run_id: str, index: int, attempt: int) -> AttemptRecord | None: ...
    def attempts(self, run_id: str, index: int | None = None) -> list[AttemptRecord]: ...
    def begin_attempt(self, item: ItemRecord, attempt: AttemptRecord) -> bool:
        """Write attempt n (and the item at n = 1, moving it PENDING -> RUNNING)."""
        ...
    def claim_launch(self, run_id: str, index: int, attempt: int, task_token: str,
                     now: str, lease_until: str) -> bool:
        """Store the newest token; win the right to call RunTask if no task and no live lease."""
        ...
    def release_launch(self, run_id: str, index: int, attempt: int) -> None: ...
    def attach_task(self, run_id: str, index: int, attempt: int, task_arn: str,
                    started_at: str, expires_at: int | None = None) -> bool:
        """Write the task record (TTL ``expires_at``), then the ARN on a LAUNCHING attempt."""
        ...
    def find_task(self, task_arn: str) -> tuple[str, int, int] | None: ...
    def settle_attempt(self, attempt: AttemptRecord, settlement: Settlement) -> bool:
        """Close an open attempt and move its item, once: False if already closed."""
        ...
    def mark_answered(self, run_id: str, index: int, attempt: int) -> None: ...
    def settle_item(self, run_id: str, index: int, status: ItemStatus, reason: str,
                    first: ItemRecord | None = None) -> bool:
        """An item with no open attempt (never launched, or between attempts) ends.

        A never-launched item is written from ``first`` (params, command, environment,
        expires_at) when given.
        """
        ...
    def open_attempts(self, run_id: str | None = None) -> list[AttemptRecord]: ...


# --- conversion ---------------------------------------------------------------------------

_JSON_FIELDS = {"settings", "params", "command", "environment", "answer", "problems",
                "log_tail"}


def _to_attrs(record: RunRecord | ItemRecord | AttemptRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if value is None:
            continue
        if key in _JSON_FIELDS:
            out[key] = json.dumps(value, separators=(",", ":"), sort_keys=True)
        elif key == "counts":
            out.update({counter(s): value.get(s, 0) for s in COUNTED})
        elif isinstance(value, float):
            out[key] = str(value)  # DynamoDB numbers need Decimal; a string is exact enough
        else:
            out[key] = value
    return out


def _from_attrs(cls: type[Any], attrs: dict[str, Any]) -> Any:
    names = set(cls.__dataclass_fields__)
    values: dict[str, Any] = {}
    for key, value in attrs.items():
        if key not in names:
            continue
        if key in _JSON_FIELDS:
            values[key] = json.loads(value)
        elif key == "duration_seconds":
            values[key] = float(value)
        elif hasattr(value, "as_integer_ratio") and not isinstance(value, int | float):
            values[key] = int(value)  # Decimal
        else:
            values[key] = value
    if cls is RunRecord:
        values["counts"] = {s: int(attrs.get(counter(s), 0)) for s in COUNTED}
    return cls(**values)


# --- DynamoDB -----------------------------------------------------------------------------


class DynamoRecords:
    """The records store on one DynamoDB table (names in :mod:`fanout.schema`)."""

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            from fanout.runtime.clients import client

            self._client = client("dynamodb")
        return self._client

    # serialization of plain python values
    @staticmethod
    def _ser(values: dict[str, Any]) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeSerializer

        ser = TypeSerializer()
        return {k: ser.serialize(v) for k, v in values.items()}

    @staticmethod
    def _de(attrs: dict[str, Any]) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeDeserializer

        de = TypeDeserializer()
        return {k: de.deserialize(v) for k, v in attrs.items()}

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}}

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        got = self.client.get_item(TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True)
        return self._de(got["Item"]) if "Item" in got else None

    def _query(self, pk: str, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#sk": SORT_KEY},
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        if not prefix:  # every record of the partition
            kwargs["KeyConditionExpression"] = "#pk = :pk"
            del kwargs["ExpressionAttributeNames"]["#sk"]
            del kwargs["ExpressionAttributeValues"][":prefix"]
        while True:
            page = self.client.query(**kwargs)
            for attrs in page.get("Items", []):
                yield self._de(attrs)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except self.client.exceptions.TransactionCanceledException:
            return False
        return True

    def _update(self, pk: str, sk: str, expression: str, values: dict[str, Any],
                condition: str | None = None, names: dict[str, str] | None = None
                ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(pk, sk),
            "UpdateExpression": expression,
        }
        if values:
            update["ExpressionAttributeValues"] = self._ser(values)
        if condition:
            update["ConditionExpression"] = condition
        if names:
            update["ExpressionAttributeNames"] = names
        return update

    def _conditional(self, update: dict[str, Any]) -> bool:
        try:
            self.client.update_item(**update)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _transition(self, run_id: str, index: int, old: ItemStatus,
                    new: ItemStatus) -> dict[str, Any]:
        """The run counters' half of an item status change."""
        parts = [f"{counter(new)} :one"] + ([f"{counter(old)} :minus"] if old != "PENDING" else [])
        values: dict[str, Any] = {":one": 1, ":running": "RUNNING"}
        if old != "PENDING":
            values[":minus"] = -1
        update = self._update(
            run_pk(run_id), "RUN", "ADD " + ", ".join(parts), values,
            condition="#status = :running", names={"#status": "status"},
        )
        # Counters only move while the run is open; a finished run's totals are final.
        del update["TableName"]
        return {"Update": {"TableName": self.table, **update}}

    # runs
    def create_run(self, run: RunRecord, spec: Any = None) -> bool:
        if spec is not None:
            # Written first and unconditionally (a retried Expand writes the same spec), so
            # a run record never exists without it.
            text = json.dumps(spec, separators=(",", ":"), sort_keys=True)
            record: dict[str, Any] = {PARTITION_KEY: run_pk(run.run_id), SORT_KEY: "SPEC",
                                      "spec": text}
            if run.expires_at is not None:
                record[TTL_ATTRIBUTE] = run.expires_at
            self.client.put_item(TableName=self.table, Item=self._ser(record))
        attrs = _to_attrs(run)
        attrs.update({PARTITION_KEY: run_pk(run.run_id), SORT_KEY: "RUN"})
        sort = f"{run.started_at}#{run.run_id}"
        (g1pk, g1sk), (g2pk, g2sk) = INDEXES["by_job"], INDEXES["by_time"]
        attrs.update({g1pk: f"JOB#{run.job}", g1sk: sort, g2pk: "RUNS", g2sk: sort})
        try:
            self.client.put_item(
                TableName=self.table, Item=self._ser(attrs),
                ConditionExpression=f"attribute_not_exists({PARTITION_KEY})",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_run(self, run_id: str) -> RunRecord | None:
        attrs = self._get(run_pk(run_id), "RUN")
        return _from_attrs(RunRecord, attrs) if attrs else None

    def get_spec(self, run_id: str) -> Any:
        attrs = self._get(run_pk(run_id), "SPEC")
        return json.loads(attrs["spec"]) if attrs else None

    def finish_run(self, run_id: str, status: RunStatus, finished_at: str, summary: str,
                   expires_at: int | None = None) -> bool:
        sets = "SET #status = :status, finished_at = :at, summary = :summary"
        values: dict[str, Any] = {":status": status, ":at": finished_at, ":summary": summary,
                                  ":running": "RUNNING"}
        if expires_at is not None:
            sets += f", {TTL_ATTRIBUTE} = :exp"
            values[":exp"] = expires_at
        return self._conditional(self._update(
            run_pk(run_id), "RUN", sets, values,
            condition="#status = :running", names={"#status": "status"},
        ))

    # items and attempts
    def get_item(self, run_id: str, index: int) -> ItemRecord | None:
        attrs = self._get(run_pk(run_id), item_sk(index))
        return _from_attrs(ItemRecord, attrs) if attrs else None

    def items(self, run_id: str) -> Iterator[ItemRecord]:
        for attrs in self._query(run_pk(run_id), "ITEM#"):
            if "#A#" not in attrs[SORT_KEY]:
                yield _from_attrs(ItemRecord, attrs)

    def get_attempt(self, run_id: str, index: int, attempt: int) -> AttemptRecord | None:
        attrs = self._get(run_pk(run_id), attempt_sk(index, attempt))
        return _from_attrs(AttemptRecord, attrs) if attrs else None

    def attempts(self, run_id: str, index: int | None = None) -> list[AttemptRecord]:
        prefix = "ITEM#" if index is None else f"{item_sk(index)}#A#"
        return [_from_attrs(AttemptRecord, a) for a in self._query(run_pk(run_id), prefix)
                if "#A#" in a[SORT_KEY]]

    def begin_attempt(self, item: ItemRecord, attempt: AttemptRecord) -> bool:
        pk = run_pk(item.run_id)
        attrs = _to_attrs(attempt)
        attrs.update({PARTITION_KEY: pk, SORT_KEY: attempt_sk(item.index, attempt.attempt),
                      "open": OPEN})
        ops: list[dict[str, Any]] = [{"Put": {
            "TableName": self.table, "Item": self._ser(attrs),
            "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
        }}]
        if attempt.attempt == 1:
            first = replace(item, status="RUNNING", attempts=1, open_attempt=1)
            item_attrs = _to_attrs(first)
            item_attrs.update({PARTITION_KEY: pk, SORT_KEY: item_sk(item.index)})
            ops.append({"Put": {
                "TableName": self.table, "Item": self._ser(item_attrs),
                "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
            }})
            ops.append(self._transition(item.run_id, item.index, "PENDING", "RUNNING"))
        else:
            update = self._update(
                pk, item_sk(item.index), "SET attempts = :n, open_attempt = :n",
                {":n": attempt.attempt, ":prev": attempt.attempt - 1, ":running": "RUNNING"},
                condition="attempts = :prev AND #status = :running "
                          "AND attribute_not_exists(open_attempt)",
                names={"#status": "status"},
            )
            ops.append({"Update": update})
        return self._transact(ops)

    def claim_launch(self, run_id: str, index: int, attempt: int, task_token: str,
                     now: str, lease_until: str) -> bool:
        pk, sk = run_pk(run_id), attempt_sk(index, attempt)
        claimed = self._conditional(self._update(
            pk, sk, "SET task_token = :token, launch_lease_until = :until",
            {":token": task_token, ":until": lease_until, ":now": now, ":launching": "LAUNCHING"},
            condition="#status = :launching AND attribute_not_exists(task_arn) AND "
                      "(attribute_not_exists(launch_lease_until) OR launch_lease_until < :now)",
            names={"#status": "status"},
        ))
        if not claimed:
            # Someone else launches (or launched): the newest token is still the one to answer.
            self._conditional(self._update(
                pk, sk, "SET task_token = :token", {":token": task_token, ":open": OPEN},
                condition="#open = :open", names={"#open": "open"},
            ))
        return claimed

    def release_launch(self, run_id: str, index: int, attempt: int) -> None:
        self._conditional(self._update(
            run_pk(run_id), attempt_sk(index, attempt), "REMOVE launch_lease_until", {},
            condition="attribute_exists(task_token)"))

    def attach_task(self, run_id: str, index: int, attempt: int, task_arn: str,
                    started_at: str, expires_at: int | None = None) -> bool:
        task: dict[str, Any] = {PARTITION_KEY: f"TASK#{task_arn}", SORT_KEY: "TASK",
                                "run_id": run_id, "index": index, "attempt": attempt}
        if expires_at is not None:
            task[TTL_ATTRIBUTE] = expires_at
        # Two plain writes, not a transaction (half the write units): the task record first,
        # so the task's events find the attempt from then on. A crash between the two leaves
        # what a Launch that died after RunTask leaves, and is healed the same way (the
        # next claimant adopts the task; its STOPPED event attaches the ARN).
        self.client.put_item(TableName=self.table, Item=self._ser(task))
        attached = self._conditional(self._update(
            run_pk(run_id), attempt_sk(index, attempt),
            "SET task_arn = :arn, #status = :running, started_at = :at REMOVE launch_lease_until",
            {":arn": task_arn, ":running": "RUNNING", ":at": started_at,
             ":launching": "LAUNCHING"},
            condition="#status = :launching", names={"#status": "status"},
        ))
        if not attached:
            # The attempt settled first (a fast stop or Reconcile): keep the ARN on it.
            self._conditional(self._update(
                run_pk(run_id), attempt_sk(index, attempt), "SET task_arn = :arn",
                {":arn": task_arn}, condition="attribute_not_exists(task_arn)",
            ))
        return attached

    def find_task(self, task_arn: str) -> tuple[str, int, int] | None:
        attrs = self._get(f"TASK#{task_arn}", "TASK")
        if not attrs:
            return None
        return str(attrs["run_id"]), int(attrs["index"]), int(attrs["attempt"])

    def settle_attempt(self, attempt: AttemptRecord, s: Settlement) -> bool:
        pk = run_pk(attempt.run_id)
        values: dict[str, Any] = {
            ":status": s.status, ":class": s.stop_class, ":stopped": s.stopped_at,
            ":answer": json.dumps(s.answer, sort_keys=True), ":no": False, ":open": OPEN,
        }
        sets = ["#status = :status", "stop_class = :class", "stopped_at = :stopped",
                "answer = :answer", "answered = :no"]
        optional = {"exit_code": s.exit_code, "stop_code": s.stop_code,
                    "stopped_reason": s.stopped_reason, "started_at": s.started_at,
                    "duration_seconds": None if s.duration_seconds is None
                    else str(s.duration_seconds),
                    "log_stream": s.log_stream, "event_version": s.event_version,
                    "reason": s.reason,
                    "log_tail": None if s.log_tail is None else json.dumps(s.log_tail)}
        for name, value in optional.items():
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
        ops: list[dict[str, Any]] = [{"Update": self._update(
            pk, attempt_sk(attempt.index, attempt.attempt),
            "SET " + ", ".join(sets) + " REMOVE #open", values,
            condition="#open = :open", names={"#status": "status", "#open": "open"},
        )}]
        item_values: dict[str, Any] = {":n": attempt.attempt, ":running": "RUNNING"}
        item_sets = []
        if s.item_status is not None:
            item_sets.append("#status = :new")
            item_values[":new"] = s.item_status
        if s.exit_code is not None:
            item_sets.append("exit_code = :code")
            item_values[":code"] = s.exit_code
        if s.on_demand:
            item_sets.append("on_demand = :yes")
            item_values[":yes"] = True
        if s.item_status is not None and s.reason is not None:
            item_sets.append("reason = :reason")
            item_values[":reason"] = s.reason
        if s.item_status is not None and s.log_tail is not None:
            item_sets.append("log_tail = :tail")
            item_values[":tail"] = json.dumps(s.log_tail)
        expression = ("SET " + ", ".join(item_sets) + " " if item_sets else "") + \
            "REMOVE open_attempt"
        ops.append({"Update": self._update(
            pk, item_sk(attempt.index), expression, item_values,
            condition="open_attempt = :n AND #status = :running", names={"#status": "status"},
        )})
        if s.item_status is not None:
            ops.append(self._transition(attempt.run_id, attempt.index, "RUNNING", s.item_status))
        return self._transact(ops)

    def mark_answered(self, run_id: str, index: int, attempt: int) -> None:
        self.client.update_item(**self._update(
            run_pk(run_id), attempt_sk(index, attempt), "SET answered = :yes", {":yes": True}))

    def settle_item(self, run_id: str, index: int, status: ItemStatus, reason: str,
                    first: ItemRecord | None = None) -> bool:
        pk = run_pk(run_id)
        current = self.get_item(run_id, index)
        if current is None:
            base = first or ItemRecord(run_id, index, status)
            attrs = _to_attrs(replace(base, run_id=run_id, index=index, status=status,
                                      reason=reason, attempts=0, open_attempt=None))
            attrs.update({PARTITION_KEY: pk, SORT_KEY: item_sk(index)})
            op: dict[str, Any] = {"Put": {
                "TableName": self.table, "Item": self._ser(attrs),
                "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})"}}
            old: ItemStatus = "PENDING"
        elif current.status == "RUNNING":
            op = {"Update": self._update(
                pk, item_sk(index), "SET #status = :new, reason = :reason",
                {":new": status, ":reason": reason, ":running": "RUNNING"},
                condition="#status = :running AND attribute_not_exists(open_attempt)",
                names={"#status": "status"})}
            old = "RUNNING"
        else:
            return False
        return self._transact([op, self._transition(run_id, index, old, status)])

    def open_attempts(self, run_id: str | None = None) -> list[AttemptRecord]:
        name = "open_attempts"
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": name,
            "KeyConditionExpression": "#open = :open",
            "ExpressionAttributeNames": {"#open": INDEXES[name][0]},
            "ExpressionAttributeValues": {":open": {"S": OPEN}},
        }
        found: list[AttemptRecord] = []
        while True:
            page = self.client.query(**kwargs)
            for attrs in page.get("Items", []):
                record = _from_attrs(AttemptRecord, self._de(attrs))
                if run_id is None or record.run_id == run_id:
                    found.append(record)
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- in memory ----------------------------------------------------------------------------


class MemoryRecords:
    """The records store in a dict, with the same conditions as the DynamoDB form."""

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.item_records: dict[tuple[str, int], ItemRecord] = {}
        self.attempt_records: dict[tuple[str, int, int], AttemptRecord] = {}
        self.specs: dict[str, Any] = {}
        self.tasks: dict[str, tuple[str, int, int]] = {}
        #: task ARN -> the task record's TTL
        self.task_expiry: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def _move(self, run_id: str, old: ItemStatus, new: ItemStatus) -> bool:
        run = self.runs.get(run_id)
        if run is None or run.status != "RUNNING":
            return False
        counts = dict(run.counts)
        if old != "PENDING":
            counts[old] = counts.get(old, 0) - 1
        counts[new] = counts.get(new, 0) + 1
        self.runs[run_id] = replace(run, counts=counts)
        return True

    def create_run(self, run: RunRecord, spec: Any = None) -> bool:
        with self._lock:
            if spec is not None:
                self.specs[run.run_id] = copy.deepcopy(spec)
            if run.run_id in self.runs:
                return False
            self.runs[run.run_id] = copy.deepcopy(run)
            return True

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)

    def get_spec(self, run_id: str) -> Any:
        return copy.deepcopy(self.specs.get(run_id))

    def finish_run(self, run_id: str, status: RunStatus, finished_at: str, summary: str,
                   expires_at: int | None = None) -> bool:
        with self._lock:
            run = self.runs.get(run_id)
            if run is None or run.status != "RUNNING":
                return False
            self.runs[run_id] = replace(
                run, status=status, finished_at=finished_at, summary=summary,
                expires_at=run.expires_at if expires_at is None else expires_at)
            return True

    def get_item(self, run_id: str, index: int) -> ItemRecord | None:
        return self.item_records.get((run_id, index))

    def items(self, run_id: str) -> Iterator[ItemRecord]:
        keys = sorted(k for k in self.item_records if k[0] == run_id)
        return iter([self.item_records[k] for k in keys])

    def get_attempt(self, run_id: str, index: int, attempt: int) -> AttemptRecord | None:
        return self.attempt_records.get((run_id, index, attempt))

    def attempts(self, run_id: str, index: int | None = None) -> list[AttemptRecord]:
        keys = sorted(k for k in self.attempt_records
                      if k[0] == run_id and (index is None or k[1] == index))
        return [self.attempt_records[k] for k in keys]

    def begin_attempt(self, item: ItemRecord, attempt: AttemptRecord) -> bool:
        with self._lock:
            key = (item.run_id, item.index, attempt.attempt)
            if key in self.attempt_records:
                return False
            current = self.item_records.get((item.run_id, item.index))
            if attempt.attempt == 1:
                if current is not None or not self._move(item.run_id, "PENDING", "RUNNING"):
                    return False
                self.item_records[(item.run_id, item.index)] = replace(
                    item, status="RUNNING", attempts=1, open_attempt=1)
            else:
                if (current is None or current.attempts != attempt.attempt - 1
                        or current.status != "RUNNING" or current.open_attempt is not None):
                    return False
                self.item_records[(item.run_id, item.index)] = replace(
                    current, attempts=attempt.attempt, open_attempt=attempt.attempt)
            self.attempt_records[key] = attempt
            return True

    def claim_launch(self, run_id: str, index: int, attempt: int, task_token: str,
                     now: str, lease_until: str) -> bool:
        with self._lock:
            key = (run_id, index, attempt)
            record = self.attempt_records.get(key)
            if record is None:
                return False
            lease = record.launch_lease_until
            if (record.status == "LAUNCHING" and record.task_arn is None
                    and (lease is None or lease < now)):
                self.attempt_records[key] = replace(
                    record, task_token=task_token, launch_lease_until=lease_until)
                return True
            if record.is_open:
                self.attempt_records[key] = replace(record, task_token=task_token)
            return False

    def release_launch(self, run_id: str, index: int, attempt: int) -> None:
        with self._lock:
            key = (run_id, index, attempt)
            if key in self.attempt_records:
                self.attempt_records[key] = replace(self.attempt_records[key],
                                                    launch_lease_until=None)

    def attach_task(self, run_id: str, index: int, attempt: int, task_arn: str,
                    started_at: str, expires_at: int | None = None) -> bool:
        with self._lock:
            key = (run_id, index, attempt)
            self.tasks[task_arn] = key
            self.task_expiry[task_arn] = expires_at
            record = self.attempt_records.get(key)
            if record is None:
                return False
            if record.status != "LAUNCHING":
                if record.task_arn is None:
                    self.attempt_records[key] = replace(record, task_arn=task_arn)
                return False
            self.attempt_records[key] = replace(
                record, task_arn=task_arn, status="RUNNING", started_at=started_at,
                launch_lease_until=None)
            return True

    def find_task(self, task_arn: str) -> tuple[str, int, int] | None:
        return self.tasks.get(task_arn)

    def settle_attempt(self, attempt: AttemptRecord, s: Settlement) -> bool:
        with self._lock:
            key = (attempt.run_id, attempt.index, attempt.attempt)
            record = self.attempt_records.get(key)
            item = self.item_records.get(key[:2])
            if record is None or not record.is_open or item is None:
                return False
            if item.open_attempt != attempt.attempt or item.status != "RUNNING":
                return False
            if s.item_status is not None and not self._move(
                    attempt.run_id, "RUNNING", s.item_status):
                return False
            self.attempt_records[key] = replace(
                record, status=s.status, stop_class=s.stop_class, stopped_at=s.stopped_at,
                answer=s.answer, answered=False,
                exit_code=s.exit_code if s.exit_code is not None else record.exit_code,
                stop_code=s.stop_code or record.stop_code,
                stopped_reason=s.stopped_reason or record.stopped_reason,
                started_at=s.started_at or record.started_at,
                duration_seconds=s.duration_seconds, log_stream=s.log_stream,
                event_version=s.event_version, reason=s.reason, log_tail=s.log_tail)
            final = s.item_status is not None
            self.item_records[key[:2]] = replace(
                item, status=s.item_status or item.status, open_attempt=None,
                reason=s.reason if final and s.reason is not None else item.reason,
                log_tail=s.log_tail if final and s.log_tail is not None else item.log_tail,
                exit_code=s.exit_code if s.exit_code is not None else item.exit_code,
                on_demand=item.on_demand or s.on_demand)
            return True

    def mark_answered(self, run_id: str, index: int, attempt: int) -> None:
        with self._lock:
            key = (run_id, index, attempt)
            self.attempt_records[key] = replace(self.attempt_records[key], answered=True)

    def settle_item(self, run_id: str, index: int, status: ItemStatus, reason: str,
                    first: ItemRecord | None = None) -> bool:
        with self._lock:
            current = self.item_records.get((run_id, index))
            if current is None:
                if not self._move(run_id, "PENDING", status):
                    return False
                base = first or ItemRecord(run_id, index, status)
                self.item_records[(run_id, index)] = replace(
                    base, run_id=run_id, index=index, status=status, reason=reason,
                    attempts=0, open_attempt=None)
                return True
            if current.status != "RUNNING" or current.open_attempt is not None:
                return False
            if not self._move(run_id, "RUNNING", status):
                return False
            self.item_records[(run_id, index)] = replace(current, status=status, reason=reason)
            return True

    def open_attempts(self, run_id: str | None = None) -> list[AttemptRecord]:
        return [a for k, a in sorted(self.attempt_records.items())
                if a.is_open and (run_id is None or k[0] == run_id)]
