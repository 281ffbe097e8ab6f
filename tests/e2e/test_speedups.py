"""The local mode's cheaper paths through moto give the answers moto's own paths give."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def both_serializers() -> Iterator[dict[str, Any]]:
    """Every DynamoDB answer serialized twice, by moto and by the fast walk, compared."""
    from moto.dynamodb.responses import DynamoResult

    from fanout.local.speedups import fast_dynamodb_serializer

    original = DynamoResult.execute_result
    restore = fast_dynamodb_serializer()
    fast = DynamoResult.execute_result
    seen: dict[str, Any] = {"compared": [], "differences": []}

    def compare(self: Any, context: Any) -> Any:
        theirs, ours = original(self, context), fast(self, context)
        seen["compared"].append(context.operation_model.name)
        if theirs != ours:
            seen["differences"].append((context.operation_model.name, theirs, ours))
        return theirs

    DynamoResult.execute_result = compare  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        restore()
        assert DynamoResult.execute_result is original


def test_dynamodb_answers_are_byte_for_byte_moto_s(both_serializers: dict[str, Any]) -> None:
    # Given a table holding every attribute type (a binary one among them)
    import boto3

    from fanout.local.aws import emulated_aws

    with emulated_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                                  for a in ("pk", "sk", "g")],
            GlobalSecondaryIndexes=[{"IndexName": "open", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
        )
        for i in range(4):
            ddb.put_item(TableName="t", Item={
                "pk": {"S": "RUN#r"}, "sk": {"S": f"ITEM#{i}"}, "n": {"N": str(i)},
                "m": {"M": {"l": {"L": [{"S": "x"}, {"N": "1.5"}, {"BOOL": True},
                                        {"NULL": True}]}}},
                "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "g": {"S": "yes"},
                "empty": {"S": ""}, "b": {"B": b"\x00\x01"} if i == 3 else {"S": "text"},
            })
        key = {"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#1"}}

        # When it is read, queried, updated, deleted and written in transactions
        ddb.get_item(TableName="t", Key=key)
        ddb.get_item(TableName="t", Key={"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#9"}})
        ddb.get_item(TableName="t", Key={"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#3"}},
                     ReturnConsumedCapacity="TOTAL")
        ddb.query(TableName="t", KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                  ExpressionAttributeValues={":p": {"S": "RUN#r"}, ":s": {"S": "ITEM#"}},
                  Limit=2, ReturnConsumedCapacity="INDEXES")
        ddb.query(TableName="t", IndexName="open", KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": {"S": "yes"}}, Select="COUNT")
        for returned in ("ALL_NEW", "UPDATED_OLD", "NONE"):
            ddb.update_item(TableName="t", Key=key, UpdateExpression="SET n = n + :one",
                            ExpressionAttributeValues={":one": {"N": "1"}},
                            ReturnValues=returned)
        ddb.delete_item(TableName="t", Key={"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#2"}},
                        ReturnValues="ALL_OLD")
        put = {"Put": {"TableName": "t", "Item": {"pk": {"S": "RUN#r"}, "sk": {"S": "X"}},
                       "ConditionExpression": "attribute_not_exists(pk)"}}
        ddb.transact_write_items(TransactItems=[put])
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(TransactItems=[put])
        ddb.scan(TableName="t")
        ddb.batch_get_item(RequestItems={"t": {"Keys": [key]}})
        ddb.describe_table(TableName="t")

    # Then every answer is the one moto's own serializer gives
    assert len(both_serializers["compared"]) >= 15
    assert both_serializers["differences"] == []


def test_the_interpreter_s_lambda_client_and_json_paths_are_reused() -> None:
    # Given the shared client and the cached JSONPath parser
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import json_path

    from fanout.local.aws import emulated_aws
    from fanout.local.speedups import cached_json_paths, shared_lambda_client

    original_client, original_parse = lambda_eval_utils.boto_client_for, json_path.parse
    with emulated_aws():
        restores = [shared_lambda_client(), cached_json_paths()]
        try:
            # When the interpreter asks twice
            first = lambda_eval_utils.boto_client_for("us-east-1", "lambda", None)
            second = lambda_eval_utils.boto_client_for("us-east-1", "lambda", object())
            other = lambda_eval_utils.boto_client_for("eu-west-1", "lambda", None)
            # Then one client per region, and a path evaluates as before
            assert first is second and first is not other
            assert json_path.extract_json("$.a.b", {"a": {"b": [1, 2]}}) == [1, 2]
            assert json_path.extract_json("$.a.b", {"a": {"b": 3}}) == 3
        finally:
            for restore in reversed(restores):
                restore()
    # And moto's own are back afterwards
    assert lambda_eval_utils.boto_client_for is original_client
    assert json_path.parse is original_parse


def test_a_cached_update_expression_applies_each_call_s_own_values() -> None:
    # Given update expressions parsed once
    import boto3
    from moto.dynamodb.parsing import expressions

    from fanout.local.aws import emulated_aws
    from fanout.local.speedups import cached_update_expressions

    parser = expressions.UpdateExpressionParser
    original = parser.__dict__["make"]
    with emulated_aws():
        restore = cached_update_expressions()
        try:
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
            # When the same expression runs with different values, on two items
            for pk, step in (("a", "1"), ("a", "5"), ("b", "2")):
                ddb.update_item(TableName="t", Key={"pk": {"S": pk}},
                                UpdateExpression="ADD n :step SET who = :who",
                                ExpressionAttributeValues={":step": {"N": step},
                                                           ":who": {"S": f"{pk}{step}"}})
            # Then each call's values land, as without the cache
            a = ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]
            b = ddb.get_item(TableName="t", Key={"pk": {"S": "b"}})["Item"]
            assert (a["n"], a["who"]) == ({"N": "6"}, {"S": "a5"})
            assert (b["n"], b["who"]) == ({"N": "2"}, {"S": "b2"})
            with pytest.raises(ddb.exceptions.ClientError):
                ddb.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression="SET")
        finally:
            restore()
    assert parser.__dict__["make"] is original
