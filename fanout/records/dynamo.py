"""The records store on one DynamoDB table (names in :mod:`fanout.schema`).

The keys and attributes are :mod:`fanout.records.layout`'s. Every change of an item's
status is one transaction with the run's counters, so run totals always equal the count
of item states; the run record stays small (the spec, which can be large, is its own
record) because every such transaction pays for its size. Every record carries
``expires_at`` (TTL) from its first write. Writes that could race are conditional, and
each method says with its return value whether it won.

boto3 is imported lazily: this module is on the Lambda import path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fanout.records.layout import (
    OPEN,
    attempt_sk,
    counter,
    from_attrs,
    item_sk,
    run_pk,
    slot_pk,
    to_attrs,
)
from fanout.records.model import (
    AttemptRecord,
    ItemRecord,
    ItemStatus,
    RunRecord,
    RunStatus,
    Settlement,
)
from fanout.schema import INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# --- DynamoDB -----------------------------------------------------------------------------


class DynamoRecords:
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
        attrs = to_attrs(run)
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
        return from_attrs(RunRecord, attrs) if attrs else None

    def get_spec(self, run_id: str) -> Any:
        attrs = self._get(run_pk(run_id), "SPEC")
        return json.loads(attrs["spec"]) if attrs else None

    def finish_run(self, run_id: str, status: RunStatus, finished_at: str, summary: str) -> bool:
        sets = "SET #status = :status, finished_at = :at, summary = :summary"
        values: dict[str, Any] = {":status": status, ":at": finished_at, ":summary": summary,
                                  ":running": "RUNNING"}
        return self._conditional(self._update(
            run_pk(run_id), "RUN", sets, values,
            condition="#status = :running", names={"#status": "status"},
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
                      "open": OPEN})
        ops: list[dict[str, Any]] = [{"Put": {
            "TableName": self.table, "Item": self._ser(attrs),
            "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
        }}]
        if attempt.attempt == 1:
            first = replace(item, status="RUNNING", attempts=1, open_attempt=1)
            item_attrs = to_attrs(first)
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
                record = from_attrs(AttemptRecord, self._de(attrs))
                if run_id is None or record.run_id == run_id:
                    found.append(record)
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # around the runs
    def claim_slot(self, schedule: str, logical_time: str, run_id: str, expires_at: int) -> str:
        key = {PARTITION_KEY: {"S": slot_pk(schedule, logical_time)}, SORT_KEY: {"S": "SLOT"}}
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**key, "run_id": {"S": run_id}, TTL_ATTRIBUTE: {"N": str(expires_at)}},
                ConditionExpression=f"attribute_not_exists({PARTITION_KEY}) OR run_id = :me",
                ExpressionAttributeValues={":me": {"S": run_id}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            got = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
            return str(got["Item"]["run_id"]["S"])
        return run_id

    def recent_runs(self, job: str | None, limit: int) -> list[RunRecord]:
        index = "by_job" if job else "by_time"
        got = self.client.query(
            TableName=self.table, IndexName=index, ScanIndexForward=False, Limit=limit,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": INDEXES[index][0]},
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job}" if job else "RUNS"}},
        )
        return [r for r in (self.get_run(a[PARTITION_KEY]["S"].removeprefix("RUN#"))
                            for a in got.get("Items", [])) if r is not None]

    def partition(self, run_id: str) -> Iterator[dict[str, Any]]:
        return self._query(run_pk(run_id), "")
