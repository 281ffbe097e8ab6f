"""The records store on one DynamoDB table (names in :mod:`fanout.schema`; keys and
attributes :mod:`fanout.records.layout`'s). Every change of an item's status is one
transaction with one of its run's counter shards (never the run record), so run totals
always equal the count of item states (docs/decisions/0008). Every record carries
``expires_at`` (TTL) from its first write. Writes that could race are conditional and say
whether they won; contention is retried, then raised (:mod:`fanout.records.writes`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fanout.records.dynamo_gate import GateRecords
from fanout.records.layout import (
    GATE_PK,
    WAITING_COUNTER,
    attempt_queue_sk,
    attempt_sk,
    counter,
    ending_fields,
    from_attrs,
    item_sk,
    queue_entry,
    run_pk,
    slot_pk,
    to_attrs,
    waiting_of,
)
from fanout.records.model import (
    COUNTED,
    AttemptRecord,
    ItemRecord,
    ItemStatus,
    RunRecord,
    RunStatus,
    Settlement,
)
from fanout.records.pages import items_page
from fanout.records.writes import (
    RUNNING_PARTITIONS,
    deadline_from_start,
    deserialized,
    open_key,
    pages,
    run_ids,
    running_key,
    serialized,
    shard_closings,
    shard_of,
    shard_sk,
    time_bucket,
    with_shards,
    write,
)
from fanout.schema import INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoRecords(GateRecords):
    """The records store on one DynamoDB table (names in :mod:`fanout.schema`)."""

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            from fanout.aws.clients import client

            self._client = client("dynamodb")
        return self._client

    _ser = staticmethod(serialized)
    _de = staticmethod(deserialized)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        got = self.client.get_item(TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True)
        return self._de(got["Item"]) if "Item" in got else None

    def _query(self, pk: str, prefix: str) -> Iterator[dict[str, Any]]:
        names, values = {"#pk": PARTITION_KEY}, {":pk": {"S": pk}}
        condition = "#pk = :pk"
        if prefix:  # else every record of the partition
            condition += " AND begins_with(#sk, :prefix)"
            names["#sk"], values[":prefix"] = SORT_KEY, {"S": prefix}
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
            "ConsistentRead": True}
        yield from (self._de(attrs) for attrs in pages(self.client, kwargs))

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """True if applied, False if a condition failed (:func:`~.writes.write`)."""
        return write(lambda: self.client.transact_write_items(
            TransactItems=items), "a transaction")  # type: ignore[arg-type]

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
        return write(lambda: self.client.update_item(**update), "a conditional update")

    def _transition(self, run_id: str, index: int, old: ItemStatus, new: ItemStatus,
                    waiting: int = 0, expires_at: int | None = None) -> dict[str, Any]:
        """The run counters' half of an item status change, on the item's counter shard
        (``waiting``: the change of the run's count of items waiting in the launch queue).
        Counters only move while the shard is open: a finished run's totals are final."""
        changes = {counter(new): 1, counter(old): -1} if new != old else {}
        changes.pop(counter("PENDING"), None)
        changes.update({WAITING_COUNTER: waiting} if waiting else {})
        parts = [f"{name} :d{i}" for i, name in enumerate(changes)]
        values: dict[str, Any] = {f":d{i}": d for i, d in enumerate(changes.values())}
        expression = "ADD " + ", ".join(parts)
        if expires_at is not None:  # the shard's first write gives it its TTL
            expression += f" SET {TTL_ATTRIBUTE} = if_not_exists({TTL_ATTRIBUTE}, :ttl)"
            values[":ttl"] = expires_at
        return {"Update": self._update(run_pk(run_id), shard_sk(shard_of(index)), expression,
                                       values, condition="attribute_not_exists(closed)")}

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
        attrs = to_attrs(run)
        attrs.update({PARTITION_KEY: run_pk(run.run_id), SORT_KEY: "RUN"})
        sort = f"{run.started_at}#{run.run_id}"
        (g1pk, g1sk), (g2pk, g2sk) = INDEXES["by_job"], INDEXES["by_time"]
        attrs.update({g1pk: f"JOB#{run.job}", g1sk: sort, g2pk: time_bucket(run.started_at),
                      g2sk: sort})
        if run.status == "RUNNING":  # how Reconcile finds the runs with open attempts
            attrs["open"] = running_key(run.run_id)
        return write(lambda: self.client.put_item(
            TableName=self.table, Item=self._ser(attrs),
            ConditionExpression=f"attribute_not_exists({PARTITION_KEY})"), "a run record")

    def get_run(self, run_id: str, totals: bool = True) -> RunRecord | None:
        """The run, its totals summed over its counter shards (one Query); without
        ``totals``, the run record alone (one GetItem: what the per-item paths read)."""
        if not totals and (attrs := self._get(run_pk(run_id), "RUN")) is not None:
            return from_attrs(RunRecord, attrs)  # type: ignore[no-any-return]
        found = list(self._query(run_pk(run_id), "RUN"))
        run = next((a for a in found if a[SORT_KEY] == "RUN"), None)
        names = [counter(s) for s in COUNTED] + [WAITING_COUNTER]
        return None if run is None else from_attrs(
            RunRecord, with_shards(run, found[1:], names))

    def get_spec(self, run_id: str) -> Any:
        attrs = self._get(run_pk(run_id), "SPEC")
        return json.loads(attrs["spec"]) if attrs else None

    def finish_run(self, run_id: str, status: RunStatus, finished_at: str, summary: str) -> bool:
        # The shards close first: from then on no item transition moves the totals.
        ttl = (self._get(run_pk(run_id), "RUN") or {}).get(TTL_ATTRIBUTE)
        for update in shard_closings(run_pk(run_id), ttl):
            self.client.update_item(TableName=self.table, **update)
        sets = "SET #status = :status, finished_at = :at, summary = :summary REMOVE #open"
        values: dict[str, Any] = {":status": status, ":at": finished_at, ":summary": summary,
                                  ":running": "RUNNING"}
        return self._conditional(self._update(
            run_pk(run_id), "RUN", sets, values,
            condition="#status = :running", names={"#status": "status", "#open": "open"},
        ))

    def mark_notified(self, run_id: str) -> None:
        self.client.update_item(**self._update(
            run_pk(run_id), "RUN", "SET notified = :yes", {":yes": True}))

    # items and attempts
    def get_item(self, run_id: str, index: int) -> ItemRecord | None:
        attrs = self._get(run_pk(run_id), item_sk(index))
        return from_attrs(ItemRecord, attrs) if attrs else None

    def items(self, run_id: str) -> Iterator[ItemRecord]:
        for attrs in self._query(run_pk(run_id), "ITEM#"):
            if "#A#" not in attrs[SORT_KEY]:
                yield from_attrs(ItemRecord, attrs)

    def items_page(self, run_id: str, after: int, limit: int) -> tuple[list[ItemRecord], int]:
        return items_page(self.client, self.table, run_id, after, limit)

    def get_attempt(self, run_id: str, index: int, attempt: int) -> AttemptRecord | None:
        attrs = self._get(run_pk(run_id), attempt_sk(index, attempt))
        return from_attrs(AttemptRecord, attrs) if attrs else None

    def attempts(self, run_id: str, index: int | None = None) -> list[AttemptRecord]:
        prefix = "ITEM#" if index is None else f"{item_sk(index)}#A#"
        return [from_attrs(AttemptRecord, a) for a in self._query(run_pk(run_id), prefix)
                if "#A#" in a[SORT_KEY]]

    def begin_attempt(self, item: ItemRecord, attempt: AttemptRecord) -> bool:
        pk = run_pk(item.run_id)
        attrs = to_attrs(attempt)
        attrs.update({PARTITION_KEY: pk, SORT_KEY: attempt_sk(item.index, attempt.attempt),
                      "open": open_key(item.run_id)})
        ops: list[dict[str, Any]] = [{"Put": {
            "TableName": self.table, "Item": self._ser(attrs),
            "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
        }}]
        waiting = waiting_of(attempt)
        if attempt.attempt == 1:
            first = replace(item, status="RUNNING", attempts=1, open_attempt=1,
                            waiting=waiting)
            item_attrs = to_attrs(first)
            item_attrs.update({PARTITION_KEY: pk, SORT_KEY: item_sk(item.index)})
            ops.append({"Put": {
                "TableName": self.table, "Item": self._ser(item_attrs),
                "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
            }})
        else:
            values: dict[str, Any] = {":n": attempt.attempt, ":prev": attempt.attempt - 1,
                                      ":running": "RUNNING"}
            if waiting:
                values[":w"] = json.dumps(waiting, sort_keys=True)
            update = self._update(
                pk, item_sk(item.index),
                "SET attempts = :n, open_attempt = :n" + (", waiting = :w" if waiting else ""),
                values, condition="attempts = :prev AND #status = :running "
                                  "AND attribute_not_exists(open_attempt)",
                names={"#status": "status"},
            )
            ops.append({"Update": update})
        if attempt.attempt == 1 or waiting:  # the run's counts; the queue entry: same write
            ops.append(self._transition(item.run_id, item.index, "PENDING" if attempt.attempt
                                        == 1 else "RUNNING", "RUNNING", int(bool(waiting)),
                                        attempt.expires_at or item.expires_at))
        ops += [{"Put": {"TableName": self.table, "Item": self._ser(queue_entry(item, attempt))}}
                ] * bool(waiting)
        return self._transact(ops)

    def attach_task(self, run_id: str, index: int, attempt: int, task_arn: str,
                    started_at: str, expires_at: int | None = None,
                    deadline: str | None = None, waited: bool = False,
                    members: list[tuple[int, int]] | None = None,
                    known: AttemptRecord | None = None) -> bool:
        task: dict[str, Any] = {PARTITION_KEY: f"TASK#{task_arn}", SORT_KEY: "TASK",
                                "run_id": run_id, "index": index, "attempt": attempt}
        task.update({"members": json.dumps(members)} if members else {})  # packed: 0020
        if expires_at is not None:
            task[TTL_ATTRIBUTE] = expires_at
        # Two plain writes, not a transaction (half the write units): the task record first,
        # so the task's events find the attempt from then on. A crash between the two leaves
        # what a Launch that died after RunTask leaves, and is healed the same way (the
        # next claimant adopts the task; its STOPPED event attaches the ARN).
        self.client.put_item(TableName=self.table, Item=self._ser(task))
        # What is read of the attempt here (queued, created_at, deadline, expires_at) does
        # not change while the caller holds its launch claim; the dequeue's conditions
        # check the rest.
        current = known or self.get_attempt(run_id, index, attempt)
        if deadline is None and current is not None:  # the timeout counts from the start
            deadline = deadline_from_start(current.created_at, current.deadline, started_at)
        if (current is not None and current.queued and current.status == "LAUNCHING"
                and self._transact(self.dequeue_ops(current, task_arn, started_at, deadline,
                                                    waited))):
            self.drop_entry(attempt_queue_sk(current))  # it left the launch queue
            return True
        attached = self._conditional(self._update(
            run_pk(run_id), attempt_sk(index, attempt),
            "SET task_arn = :arn, #status = :running, started_at = :at"
            + (", deadline = :deadline" if deadline else "") + " REMOVE launch_lease_until",
            {":arn": task_arn, ":running": "RUNNING", ":at": started_at,
             ":launching": "LAUNCHING", **({":deadline": deadline} if deadline else {})},
            condition="#status = :launching AND attribute_not_exists(queued)",
            names={"#status": "status"},
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

    def _settle_attempt(self, attempt: AttemptRecord, s: Settlement) -> bool:
        pk = run_pk(attempt.run_id)
        values: dict[str, Any] = {
            ":status": s.status, ":class": s.stop_class, ":stopped": s.stopped_at,
            ":answer": json.dumps(s.answer, sort_keys=True), ":no": False,
        }
        sets = ["#status = :status", "stop_class = :class", "stopped_at = :stopped",
                "answer = :answer", "answered = :no"]
        optional = {"exit_code": s.exit_code, "stop_code": s.stop_code,
                    "stopped_reason": s.stopped_reason, "started_at": s.started_at,
                    "duration_seconds": None if s.duration_seconds is None
                    else str(s.duration_seconds),
                    "log_stream": s.log_stream, "event_version": s.event_version,
                    "reason": s.reason, "image_digest": s.image_digest,
                    "log_tail": None if s.log_tail is None else json.dumps(s.log_tail)}
        for name, value in optional.items():
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
        # As read: in the launch queue or not, holding a job's slot or not, its token, its
        # task (else retried as it is now: the settled record is not read back).
        held = " AND " + ("queued = :yes" if attempt.queued else "attribute_not_exists(queued)") \
            + " AND " + ("slot = :slot" if attempt.slot else "attribute_not_exists(slot)") \
            + " AND task_token = :token AND " \
            + ("task_arn = :arn" if attempt.task_arn else "attribute_not_exists(task_arn)")
        values.update({":yes": True} if attempt.queued else {})
        values.update({":slot": attempt.slot} if attempt.slot else {})
        values.update({":token": attempt.task_token})
        values.update({":arn": attempt.task_arn} if attempt.task_arn else {})
        ops: list[dict[str, Any]] = [{"Update": self._update(
            pk, attempt_sk(attempt.index, attempt.attempt),
            "SET " + ", ".join(sets) + " REMOVE #open, queued, slot", values,
            condition="attribute_exists(#open)" + held,
            names={"#status": "status", "#open": "open"},
        )}]
        item_values: dict[str, Any] = {":n": attempt.attempt, ":running": "RUNNING"}
        item_fields = {"#status": s.item_status, "exit_code": s.exit_code,
                       "on_demand": True if s.on_demand else None, **ending_fields(s)}
        item_sets = [f"{name} = :i{n}" for n, (name, value) in enumerate(item_fields.items())
                     if value is not None]
        item_values.update({f":i{n}": value for n, value in enumerate(item_fields.values())
                            if value is not None})
        expression = ("SET " + ", ".join(item_sets) + " " if item_sets else "") + \
            "REMOVE open_attempt, waiting"
        ops.append({"Update": self._update(
            pk, item_sk(attempt.index), expression, item_values,
            condition="open_attempt = :n AND #status = :running", names={"#status": "status"},
        )})
        waiting = -1 if attempt.queued else 0
        if s.item_status is not None or waiting:
            ops.append(self._transition(attempt.run_id, attempt.index, "RUNNING",
                                        s.item_status or "RUNNING", waiting=waiting,
                                        expires_at=attempt.expires_at))
        if attempt.queued:
            ops.append({"Delete": {"TableName": self.table,
                                   "Key": self._key(GATE_PK, attempt_queue_sk(attempt))}})
        if attempt.slot:
            ops.append(self.slot_op(attempt.slot, -1))
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
            attrs = to_attrs(replace(base, run_id=run_id, index=index, status=status,
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
        ttl = first.expires_at if first is not None else \
            current.expires_at if current is not None else None
        return self._transact([op, self._transition(run_id, index, old, status,
                                                    expires_at=ttl)])

    def open_attempts(self, run_id: str | None = None) -> list[AttemptRecord]:
        """The open attempts of a run (one partition of the index), or of every RUNNING run
        (found in the index's :data:`~fanout.records.writes.RUNNING_PARTITIONS`)."""
        if run_id is None:
            runs = [str(a[PARTITION_KEY]).removeprefix("RUN#")
                    for n in range(RUNNING_PARTITIONS) for a in self._open_index(f"RUNS#{n}")]
            return [a for run in runs for a in self.open_attempts(run)]
        return [from_attrs(AttemptRecord, a) for a in self._open_index(open_key(run_id))]

    def _open_index(self, key: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": "open_attempts",
            "KeyConditionExpression": "#open = :open",
            "ExpressionAttributeNames": {"#open": INDEXES["open_attempts"][0]},
            "ExpressionAttributeValues": {":open": {"S": key}},
        }
        yield from (self._de(attrs) for attrs in pages(self.client, kwargs))

    # around the runs
    def claim_slot(self, schedule: str, logical_time: str, run_id: str, expires_at: int) -> str:
        key = {PARTITION_KEY: {"S": slot_pk(schedule, logical_time)}, SORT_KEY: {"S": "SLOT"}}
        if write(lambda: self.client.put_item(
                TableName=self.table,
                Item={**key, "run_id": {"S": run_id}, TTL_ATTRIBUTE: {"N": str(expires_at)}},
                ConditionExpression=f"attribute_not_exists({PARTITION_KEY}) OR run_id = :me",
                ExpressionAttributeValues={":me": {"S": run_id}}), "a schedule's slot"):
            return run_id
        got = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        return str(got["Item"]["run_id"]["S"])

    def recent_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        found: list[RunRecord] = []
        for run_id in run_ids(self.client, self.table, job, time.gmtime().tm_year):
            run = self.get_run(run_id)
            found += [run] if run is not None else []
            if len(found) >= limit:
                break
        return found

    def partition(self, run_id: str) -> Iterator[dict[str, Any]]:
        return self._query(run_pk(run_id), "")
