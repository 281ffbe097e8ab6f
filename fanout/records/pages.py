"""Reading a run's items a page at a time (closing a run of any size pages through them).

A run's partition holds each item's record followed by its attempts'
(``ITEM#<index>``, ``ITEM#<index>#A#<n>``). A page is one strongly consistent Query of
at most ``limit`` records over the next ``limit`` indexes after the cursor; the next
cursor is the index of the last key it read when the Query stopped short (every item up
to it was read: an item's record sorts before its attempts), else the range's end. An
index in the range without a record has none (an item never launched).
"""

from __future__ import annotations

from typing import Any

from fanout.records.layout import from_attrs, item_sk, run_pk
from fanout.records.model import ItemRecord
from fanout.schema import PARTITION_KEY, SORT_KEY


def index_of(sort_key: str) -> int:
    """The item index of an item's or an attempt's sort key."""
    return int(sort_key.split("#")[1])


def items_page(client: Any, table: str, run_id: str, after: int, limit: int
               ) -> tuple[list[ItemRecord], int]:
    """The item records with ``after < index <= after + limit``, reading at most ``limit``
    records, and the last index the page covers (the next page's ``after``)."""
    from boto3.dynamodb.types import TypeDeserializer

    if limit < 1:
        raise ValueError(f"a page holds at least one record, not {limit}")
    page = client.query(
        TableName=table, Limit=limit, ConsistentRead=True,
        KeyConditionExpression="#pk = :pk AND #sk BETWEEN :from AND :to",
        ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
        ExpressionAttributeValues={":pk": {"S": run_pk(run_id)},
                                   ":from": {"S": item_sk(after + 1)},
                                   ":to": {"S": item_sk(after + limit) + "#~"}})
    de = TypeDeserializer()
    found = [from_attrs(ItemRecord, {k: de.deserialize(v) for k, v in attrs.items()})
             for attrs in page.get("Items", []) if "#A#" not in attrs[SORT_KEY]["S"]]
    last = page.get("LastEvaluatedKey")
    return found, after + limit if last is None else index_of(last[SORT_KEY]["S"])
