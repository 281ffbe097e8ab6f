"""The launch gate's records in the table (partition ``GATE``), a part of the DynamoDB store.

- ``Q#<capacity>#<created>#<run>#<index>#<attempt>``: the launch queue, oldest first per
  capacity type; written with the queued attempt, deleted with its task's ARN or its end.
- ``DISPATCHER``: the dispatcher's lease (``lease_until``, ``lease_owner``) and when it was
  last woken (``kicked_at``).
- ``BUCKET#<capacity>``: the token bucket's state between dispatcher invocations.
- ``RUNNING#<job>``: the running tasks of a job with ``max_running`` (``n``).

:class:`GateRecords` is mixed into :class:`~fanout.records.dynamo.DynamoRecords`, which so
implements :class:`~fanout.records.gate_store.GateStore`: the launch gate knows only that.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from fanout.records.gate_store import KICK_EVERY_SECONDS, WAITED_SECONDS, QueueEntry
from fanout.records.layout import (
    GATE_PK,
    attempt_sk,
    from_attrs,
    item_sk,
    queue_entry,
    run_pk,
    slot_sk,
)
from fanout.records.model import AttemptRecord, ItemRecord, ItemStatus, Settlement, settled
from fanout.records.writes import deserialized, serialized, write
from fanout.schema import PARTITION_KEY, SORT_KEY


def _held(attempt: AttemptRecord) -> tuple[Any, ...]:
    """What a settlement's write checks of an attempt besides its being open."""
    return attempt.queued, attempt.slot, attempt.task_token, attempt.task_arn


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class GateRecords:
    """Queue, lease, buckets and job slots; the DynamoDB store provides the plumbing."""

    table: str
    client: Any

    # --- what DynamoRecords provides ---------------------------------------------------
    def _update(self, pk: str, sk: str, expression: str, values: dict[str, Any],
                condition: str | None = None, names: dict[str, str] | None = None
                ) -> dict[str, Any]:
        raise NotImplementedError

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        raise NotImplementedError

    def _conditional(self, update: dict[str, Any]) -> bool:
        raise NotImplementedError

    def get_attempt(self, run_id: str, index: int, attempt: int) -> AttemptRecord | None:
        raise NotImplementedError

    def _transition(self, run_id: str, index: int, old: ItemStatus, new: ItemStatus,
                    waiting: int = 0, expires_at: int | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _settle_attempt(self, attempt: AttemptRecord, s: Settlement) -> bool:
        raise NotImplementedError

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        raise NotImplementedError

    # --- attempts and items ------------------------------------------------------------
    def settle_attempt(self, attempt: AttemptRecord, s: Settlement) -> AttemptRecord | None:
        for _ in range(3):
            if self._settle_attempt(attempt, s):
                # The write's conditions held the attempt to what was read of it (open,
                # queued, slot, token, task): it is now as the settlement leaves it.
                return settled(attempt, s)
            # A queued attempt may have left the queue (or taken a job slot, or a Launch
            # stored a newer token) since it was read: settle it as it is now.
            fresh = self.get_attempt(attempt.run_id, attempt.index, attempt.attempt)
            if fresh is None or not fresh.is_open or _held(fresh) == _held(attempt):
                return None
            attempt = fresh
        return None

    def claim_launch(self, run_id: str, index: int, attempt: int, now: str,
                     lease_until: str) -> tuple[bool, AttemptRecord | None]:
        """One conditional write, no read before it: the write answers the attempt as it
        now is (claimed) or as it was (refused: another holds its lease, or it left the
        queue)."""
        pk, sk = run_pk(run_id), attempt_sk(index, attempt)
        update = self._update(
            pk, sk, "SET launch_lease_until = :until",
            {":until": lease_until, ":now": now, ":launching": "LAUNCHING", ":yes": True},
            condition="#status = :launching AND queued = :yes AND "
                      "attribute_not_exists(task_arn) AND "
                      "(attribute_not_exists(launch_lease_until) OR launch_lease_until < :now)",
            names={"#status": "status"})
        update.update(ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        seen: dict[str, Any] = {}

        def call() -> None:
            from botocore.exceptions import ClientError

            try:
                seen["attrs"] = self.client.update_item(**update).get("Attributes")
            except ClientError as error:
                seen["attrs"] = error.response.get("Item")
                raise

        claimed = write(call, "a launch claim")
        attrs = seen.get("attrs")
        return claimed, from_attrs(AttemptRecord, deserialized(attrs)) if attrs else None

    def release_launch(self, run_id: str, index: int, attempt: int) -> None:
        self._conditional(self._update(
            run_pk(run_id), attempt_sk(index, attempt), "REMOVE launch_lease_until", {},
            condition="attribute_exists(task_token)"))

    def keep_token(self, run_id: str, index: int, attempt: int, task_token: str) -> bool:
        return self._conditional(self._update(
            run_pk(run_id), attempt_sk(index, attempt), "SET task_token = :token",
            {":token": task_token}, condition="attribute_exists(#open)",
            names={"#open": "open"}))

    def note_waiting(self, run_id: str, index: int, waiting: dict[str, Any]) -> None:
        self._conditional(self._update(
            run_pk(run_id), item_sk(index), "SET waiting = :w",
            {":w": json.dumps(waiting, sort_keys=True)},
            condition="attribute_exists(waiting)"))

    def dequeue_ops(self, attempt: AttemptRecord, task_arn: str, started_at: str,
                    deadline: str | None, waited: bool) -> list[dict[str, Any]]:
        """A queued attempt's task started: attempt, item and run count (the queue entry is
        deleted after, on its own: an entry whose attempt is no longer queued is dropped by
        the dispatcher anyway, so it need not cost a transaction's double write units)."""
        values: dict[str, Any] = {":arn": task_arn, ":running": "RUNNING", ":at": started_at,
                                  ":launching": "LAUNCHING", ":yes": True}
        sets = "SET task_arn = :arn, #status = :running, started_at = :at"
        if deadline:
            sets += ", deadline = :deadline"
            values[":deadline"] = deadline
        if attempt.created_at:
            queued_for = (_moment(started_at) - _moment(attempt.created_at)).total_seconds()
            sets += ", queued_seconds = :waited"
            values[":waited"] = str(round(max(queued_for, 0.0), 3))
            # Over a second in the queue is a wait for a turn or for capacity, whatever the
            # dispatcher that launched it saw of it.
            waited = waited or queued_for > WAITED_SECONDS
        if waited:
            sets += ", waited = :yes"
        pk = run_pk(attempt.run_id)
        return [
            {"Update": self._update(
                pk, attempt_sk(attempt.index, attempt.attempt),
                sets + " REMOVE launch_lease_until, queued", values,
                condition="#status = :launching AND queued = :yes",
                names={"#status": "status"})},
            {"Update": self._update(
                pk, item_sk(attempt.index), "REMOVE waiting", {":n": attempt.attempt},
                condition="open_attempt = :n AND attribute_exists(waiting)")},
            self._transition(attempt.run_id, attempt.index, "RUNNING", "RUNNING", waiting=-1,
                             expires_at=attempt.expires_at),
        ]

    def task_members(self, task_arn: str) -> list[tuple[int, int]] | None:
        """The items and attempts a packed task carries; None for a task of one item."""
        attrs = self._get(f"TASK#{task_arn}", "TASK")
        if not attrs or not attrs.get("members"):
            return None
        return [(int(i), int(a)) for i, a in json.loads(str(attrs["members"]))]

    def requeue_attempt(self, attempt: AttemptRecord, why: str, now: str,
                        turn: int | None = None) -> bool:
        """Put an attempt whose packed task stopped before starting it back in the launch
        queue, at its old place, its attempt not spent (docs/decisions/0020); ``turn``: how
        many of its batch go back with it."""
        pk = run_pk(attempt.run_id)
        requeued = replace(attempt, queued=True, status="LAUNCHING", task_arn=None,
                           turn=turn or attempt.turn)
        item = ItemRecord(attempt.run_id, attempt.index, "RUNNING",
                          expires_at=attempt.expires_at)
        waiting = {"why": why, "since": now, "tries": 0}
        ops: list[dict[str, Any]] = [
            {"Update": self._update(
                pk, attempt_sk(attempt.index, attempt.attempt),
                "SET #status = :launching, queued = :yes REMOVE task_arn, started_at, "
                "launch_lease_until, slot",
                {":launching": "LAUNCHING", ":yes": True, ":running": "RUNNING",
                 ":arn": attempt.task_arn},
                condition="#status = :running AND task_arn = :arn AND attribute_exists(#open)",
                names={"#status": "status", "#open": "open"})},
            {"Update": self._update(
                pk, item_sk(attempt.index), "SET waiting = :w",
                {":n": attempt.attempt, ":w": json.dumps(waiting, sort_keys=True)},
                condition="open_attempt = :n")},
            self._transition(attempt.run_id, attempt.index, "RUNNING", "RUNNING", waiting=1,
                             expires_at=attempt.expires_at),
            {"Put": {"TableName": self.table, "Item": serialized(queue_entry(item, requeued))}},
        ]
        if attempt.slot:
            ops.append(self.slot_op(attempt.slot, -1))
        return self._transact(ops)

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}}

    # --- job slots (max_running) -------------------------------------------------------
    def take_slot(self, attempt: AttemptRecord, job: str, limit: int) -> bool:
        """Hold one of ``job``'s ``limit`` running slots for the attempt, unless all are
        taken; the slot goes back when the attempt settles."""
        return self._transact([
            {"Update": self._update(
                run_pk(attempt.run_id), attempt_sk(attempt.index, attempt.attempt),
                "SET slot = :job", {":job": job},
                condition="attribute_exists(#open) AND attribute_not_exists(slot)",
                names={"#open": "open"})},
            {"Update": self._update(
                GATE_PK, slot_sk(job), "ADD n :one", {":one": 1, ":limit": limit},
                condition="attribute_not_exists(n) OR n < :limit")},
        ])

    def give_slot(self, attempt: AttemptRecord, job: str) -> bool:
        """Give back the slot of an attempt whose RunTask was refused (it waits on)."""
        return self._transact([
            {"Update": self._update(
                run_pk(attempt.run_id), attempt_sk(attempt.index, attempt.attempt),
                "REMOVE slot", {":job": job}, condition="slot = :job")},
            self.slot_op(job, -1),
        ])

    def slot_op(self, job: str, change: int) -> dict[str, Any]:
        return {"Update": self._update(GATE_PK, slot_sk(job), "ADD n :change",
                                       {":change": change})}

    def running_of(self, job: str) -> int:
        got = self.client.get_item(TableName=self.table, Key=self._key(GATE_PK, slot_sk(job)),
                                   ConsistentRead=True).get("Item")
        return int(got["n"]["N"]) if got and "n" in got else 0

    # --- the queue -----------------------------------------------------------------------
    def queue_entries(self, capacity: str, limit: int) -> list[QueueEntry]:
        """The oldest entries of one capacity type's queue."""
        page = self.client.query(
            TableName=self.table, ConsistentRead=True, Limit=limit,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
            ExpressionAttributeValues={":pk": {"S": GATE_PK},
                                       ":prefix": {"S": f"Q#{capacity}#"}})
        return [QueueEntry(sk=a[SORT_KEY]["S"], run_id=a["run_id"]["S"],
                           index=int(a["index"]["N"]), attempt=int(a["attempt"]["N"]),
                           capacity=a["capacity"]["S"],
                           turn=int(a["turn"]["N"]) if "turn" in a else 0)
                for a in page.get("Items", [])]

    def drop_entry(self, sk: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(GATE_PK, sk))

    # --- the dispatcher's lease ----------------------------------------------------------
    def _lease(self, expression: str, condition: str, values: dict[str, Any]) -> bool:
        return self._conditional({"TableName": self.table,
                                  "Key": self._key(GATE_PK, "DISPATCHER"),
                                  "UpdateExpression": expression,
                                  "ConditionExpression": condition,
                                  "ExpressionAttributeValues": values})

    def claim_wake(self, *, again: bool) -> bool:
        """Win the right to wake the dispatcher: none holds the lease and none was woken in
        the last :data:`KICK_EVERY_SECONDS` (``again``: whenever)."""
        now = time.time()
        recent = now if again else now - KICK_EVERY_SECONDS
        # Read first: nearly every Launch finds the lease held, and a strongly consistent
        # read of this small record is one read unit (a fifth of a write unit's price)
        # where a refused conditional write is a write unit (and one more write on the
        # busiest record of the table). A lease released after this read is
        # released by a dispatcher that then looks at the queue, where this Launch's
        # entry already is (fanout.runtime.dispatch), so skipping the write loses nothing.
        got = self.client.get_item(TableName=self.table, Key=self._key(GATE_PK, "DISPATCHER"),
                                   ConsistentRead=True).get("Item") or {}
        held = float(got.get("lease_until", {}).get("N", "0")) >= now
        kicked = float(got["kicked_at"]["N"]) > recent if "kicked_at" in got else False
        if held or kicked:
            return False
        return self._lease(
            "SET kicked_at = :now",
            "(attribute_not_exists(lease_until) OR lease_until < :now) "
            "AND (attribute_not_exists(kicked_at) OR kicked_at <= :recent)",
            {":now": {"N": f"{now:.3f}"}, ":recent": {"N": f"{recent:.3f}"}})

    def acquire_lease(self, owner: str, seconds: float) -> bool:
        now = time.time()
        return self._lease(
            "SET lease_until = :until, lease_owner = :me",
            "attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me",
            {":until": {"N": f"{now + seconds:.3f}"}, ":now": {"N": f"{now:.3f}"},
             ":me": {"S": owner}})

    def release_lease(self, owner: str) -> None:
        self._lease("SET lease_until = :zero", "lease_owner = :me",
                    {":zero": {"N": "0"}, ":me": {"S": owner}})

    # --- the buckets ---------------------------------------------------------------------
    def bucket_state(self, capacity: str) -> dict[str, float]:
        got = self.client.get_item(TableName=self.table,
                                   Key=self._key(GATE_PK, f"BUCKET#{capacity}"),
                                   ConsistentRead=True).get("Item") or {}
        return {k: float(v["N"]) for k, v in got.items() if "N" in v}

    def save_bucket(self, capacity: str, state: dict[str, float]) -> None:
        item = {**self._key(GATE_PK, f"BUCKET#{capacity}"),
                **{k: {"N": f"{v:.6f}"} for k, v in state.items()}}
        self.client.put_item(TableName=self.table, Item=item)
