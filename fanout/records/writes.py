"""How the DynamoDB store writes under contention, and the run's counter shards.

A cancelled transaction or a refused conditional write says *why*. Only a failed
condition (``ConditionalCheckFailed``) means another writer won: the write answers False.
A conflict with another transaction on one of its items (``TransactionConflict``), a
throttle and a server error are not an answer about the records: the write is tried again
with jittered exponential backoff, and when it still fails :class:`ContentionError` is
raised, so the Lambda fails and its event (or its state) is retried. Any other reason
(a validation error: a bug) is raised as it came.

Run totals are counter shards (docs/decisions/0008): ``RUN#<id>``/``RUN#COUNT#<nn>``, the
shard of item ``i`` being ``i mod`` :data:`SHARDS`, so no per-item write touches the run
record. A finished run's shards are closed (``closed``), and a shard update is conditioned
on its shard being open: a finished run's totals are final.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

#: Counter shards per run (docs/decisions/0008 argues the number).
SHARDS = 32
#: Cancellation reasons (of a transaction) that are contention, not an answer.
RETRIED_REASONS = frozenset({
    "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
    "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
})
#: Error codes (of a plain write or of the call) that are contention, not an answer.
RETRIED_ERRORS = frozenset({
    "TransactionConflictException", "TransactionInProgressException",
    "ThrottlingException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
    "InternalFailure", "LimitExceededException",
})
#: Tries of one write (the first included), and the backoff's base and cap (seconds).
TRIES = 8
BASE_SECONDS = 0.025
CAP_SECONDS = 1.0


class ContentionError(RuntimeError):
    """A write still refused for contention (a conflict, a throttle, a server error) after
    :data:`TRIES` tries: not a lost race. Raised so the event or state is retried."""

    def __init__(self, what: str, reasons: list[str]) -> None:
        super().__init__(f"{what} still refused after {TRIES} tries: {', '.join(reasons)}")
        self.reasons = reasons


def shard_of(index: int) -> int:
    return index % SHARDS


def shard_sk(shard: int) -> str:
    """A counter shard's sort key: it sorts right after ``RUN``, so ``begins_with(sk,
    "RUN")`` reads the run record and its shards in one Query."""
    return f"RUN#COUNT#{shard:02d}"


def shard_closings(pk: str, ttl: Any) -> list[dict[str, Any]]:
    """The UpdateItem arguments (but the table) that close every counter shard of a run; a
    shard no item touched is written closed, with the run's TTL."""
    from fanout.schema import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

    expression = "SET closed = :yes" + (
        f", {TTL_ATTRIBUTE} = if_not_exists({TTL_ATTRIBUTE}, :ttl)" if ttl else "")
    values: dict[str, Any] = {":yes": {"BOOL": True}}
    if ttl:
        values[":ttl"] = {"N": str(ttl)}
    return [{"Key": {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": shard_sk(n)}},
             "UpdateExpression": expression, "ExpressionAttributeValues": values}
            for n in range(SHARDS)]


def reasons_of(error: Exception) -> list[str]:
    """The cancellation reasons' codes of a TransactionCanceledException (``None`` for an
    action that was fine), or the error's own code."""
    response: dict[str, Any] = getattr(error, "response", {}) or {}
    reasons = response.get("CancellationReasons")
    if reasons:
        return [str(r.get("Code", "None")) for r in reasons]
    return [str(response.get("Error", {}).get("Code", type(error).__name__))]


def sleep_for(tried: int, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**tried))."""
    return float(rand() * min(CAP_SECONDS, BASE_SECONDS * 2 ** tried))


def write(call: Callable[[], Any], what: str, *, sleep: Callable[[float], None] = time.sleep
          ) -> bool:
    """Make a write that may race: True if applied, False if a condition failed (another
    writer won); contention is retried, then raised (:class:`ContentionError`)."""
    from botocore.exceptions import ClientError

    reasons: list[str] = []
    for tried in range(TRIES):
        try:
            call()
        except ClientError as error:
            reasons = reasons_of(error)
            codes = set(reasons) - {"None"}
            if codes & RETRIED_REASONS or codes & RETRIED_ERRORS:
                if tried + 1 < TRIES:
                    sleep(sleep_for(tried))
                continue
            if codes <= {"ConditionalCheckFailed", "ConditionalCheckFailedException"} and codes:
                return False
            raise
        return True
    raise ContentionError(what, reasons)


def with_shards(run: dict[str, Any], shards: list[dict[str, Any]],
                names: list[str]) -> dict[str, Any]:
    """The run record's attributes with each counter in ``names`` summed over its shards
    (a run written before the shards keeps its own counters: they are added in)."""
    out = dict(run)
    for name in names:
        out[name] = int(run.get(name, 0)) + sum(int(s.get(name, 0)) for s in shards)
    return out


#: Partitions of the open_attempts index that hold the RUNNING runs (how Reconcile finds
#: the runs with open attempts without one constant key).
RUNNING_PARTITIONS = 8


def running_key(run_id: str) -> str:
    """The open_attempts key of a RUNNING run's record (removed when the run finishes)."""
    import zlib

    return f"RUNS#{zlib.crc32(run_id.encode()) % RUNNING_PARTITIONS}"


def open_key(run_id: str) -> str:
    """The open_attempts key of a run's open attempt."""
    return f"OPEN#{run_id}"


def time_bucket(started_at: str) -> str:
    """The by_time key of a run: its start year (``RUNS#2026``)."""
    return f"RUNS#{started_at[:4]}"


#: Years of runs the newest-first listing walks back (records live at most 10 years).
HISTORY_YEARS = 11


def run_ids(client: Any, table: str, job: str | None, this_year: int, *,
            since: str | None = None) -> Any:
    """Run ids newest first: of one job (by_job), or of every job (by_time, year by year
    from ``this_year`` back); ``since``: only runs started at or after it."""
    from fanout.schema import INDEXES, PARTITION_KEY

    index = "by_job" if job else "by_time"
    oldest = this_year - HISTORY_YEARS + 1
    first = max(int(since[:4]), oldest) if since and since[:4].isdigit() else oldest
    keys = [f"JOB#{job}"] if job else [f"RUNS#{year}" for year in range(this_year, first - 1, -1)]
    for key in keys:
        kwargs: dict[str, Any] = {
            "TableName": table, "IndexName": index, "ScanIndexForward": False,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": INDEXES[index][0]},
            "ExpressionAttributeValues": {":pk": {"S": key}},
        }
        if since is not None:
            kwargs["KeyConditionExpression"] += " AND #sk >= :since"
            kwargs["ExpressionAttributeNames"]["#sk"] = INDEXES[index][1]
            kwargs["ExpressionAttributeValues"][":since"] = {"S": since}
        for attrs in pages(client, kwargs):
            yield str(attrs[PARTITION_KEY]["S"]).removeprefix("RUN#")


def pages(client: Any, kwargs: dict[str, Any]) -> Any:
    """Every item a Query answers, page after page (``kwargs`` is changed)."""
    while True:
        page = client.query(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def serialized(values: dict[str, Any]) -> dict[str, Any]:
    """Plain python values as DynamoDB attribute values."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    return {k: ser.serialize(v) for k, v in values.items()}


def deserialized(attrs: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    return {k: de.deserialize(v) for k, v in attrs.items()}


def deadline_from_start(created_at: str, deadline: str, started_at: str) -> str | None:
    """An attempt's deadline counted from its task's start: the timeout it was given when
    it was created (``deadline - created_at``) after ``started_at``; None when unknown."""
    from datetime import UTC, datetime

    def moment(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)

    if not (created_at and deadline and started_at):
        return None
    try:
        end = moment(started_at) + (moment(deadline) - moment(created_at))
    except ValueError:
        return None
    return end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as fanout.runtime.clock.iso writes it
