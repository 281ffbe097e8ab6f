"""The local mode's cheaper paths through moto give the answers moto's own paths give."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import moto_table


@pytest.fixture
def both_serializers() -> Iterator[dict[str, Any]]:
    """Every DynamoDB answer serialized twice, by moto and by the fast walk, compared."""
    from moto.dynamodb.responses import DynamoResult

    from fanout.local.moto.dynamodb import fast_dynamodb_serializer

    original = DynamoResult.execute_result
    restore = fast_dynamodb_serializer()
    fast = DynamoResult.execute_result
    seen: dict[str, Any] = {"compared": [], "differences": []}

    def compare(self: Any, context: Any) -> Any:
        ours = fast(self, context)  # converts the answer kept as moto made it, as moto would
        theirs = original(self, context)
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


@pytest.fixture
def both_parses() -> Iterator[dict[str, Any]]:
    """Every DynamoDB answer walked into its parse as moto made it (its items' own values,
    not yet converted), compared with botocore's parse of the body moto's own serializer
    writes for the converted answer."""
    from botocore.parsers import create_parser
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import dynamo_to_dict
    from moto.dynamodb.responses import DynamoResult

    from fanout.local.moto.answers import ParsedWalk, Unsupported
    from fanout.local.moto.dynamodb import _ShapeWalk, fast_dynamodb_serializer

    original = DynamoResult.execute_result
    restore = fast_dynamodb_serializer()  # answers kept unconverted until written
    walk = ParsedWalk(_ShapeWalk().possible_keys)
    parser = create_parser("json")
    seen: dict[str, Any] = {"compared": [], "differences": [], "refused": 0, "unconverted": 0}

    def holds_moto_s_own(value: Any) -> bool:
        if isinstance(value, DynamoType):
            return True
        if isinstance(value, dict):
            return any(holds_moto_s_own(v) for v in value.values())
        return isinstance(value, list) and any(holds_moto_s_own(v) for v in value)

    def compare(self: Any, context: Any) -> Any:
        raw = self.result
        shape = context.operation_model.output_shape
        try:
            ours = walk.parse(raw, shape) if shape is not None else None
        except Unsupported:
            ours = Unsupported
        seen["unconverted"] += holds_moto_s_own(raw)
        self._result, self.unconverted = dynamo_to_dict(raw), False  # as moto's own has it
        status, headers, body = original(self, context)
        if status < 300 and shape is not None:
            theirs = parser.parse({"status_code": status, "headers": {}, "body": body.encode()},
                                  shape)
            theirs.pop("ResponseMetadata", None)
            if ours is Unsupported:
                seen["refused"] += 1
            else:
                seen["compared"].append(context.operation_model.name)
                if theirs != ours:
                    seen["differences"].append((context.operation_model.name, theirs, ours))
        return status, headers, body

    DynamoResult.execute_result = compare  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        restore()
        assert DynamoResult.execute_result is original


def test_dynamodb_answers_are_byte_for_byte_moto_s(both_serializers: dict[str, Any]) -> None:
    # Given a table holding every attribute type (a binary one among them), When it is read,
    # queried, updated, deleted and written in transactions
    every_kind_of_call()

    # Then every answer is the one moto's own serializer gives
    assert len(both_serializers["compared"]) >= 15
    assert both_serializers["differences"] == []


def test_answers_handed_over_parsed_are_botocore_s_parse_of_moto_s(
        both_parses: dict[str, Any]) -> None:
    # Given the same table and calls, each answer also walked straight into its parse
    every_kind_of_call()

    # Then each parse handed over, walked from moto's own items, is botocore's parse of the
    # body moto's serializer writes, and what the walk refuses (the binary attribute) is
    # left to that path
    assert len(both_parses["compared"]) >= 12
    assert both_parses["unconverted"] >= 5
    assert both_parses["differences"] == []
    assert both_parses["refused"] >= 1


def every_kind_of_call() -> None:
    """Every DynamoDB call the runtime makes, and a few more, over every attribute type."""
    with moto_table(keys=("pk", "sk"), indexes={"open": ("g",)}) as ddb:
        for i in range(4):
            ddb.put_item(TableName="t", Item={
                "pk": {"S": "RUN#r"}, "sk": {"S": f"ITEM#{i}"}, "n": {"N": str(i)},
                "m": {"M": {"l": {"L": [{"S": "x"}, {"N": "1.5"}, {"BOOL": True},
                                        {"NULL": True}]}}},
                "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "g": {"S": "yes"},
                "empty": {"S": ""}, "b": {"B": b"\x00\x01"} if i == 3 else {"S": "text"},
            })
        key = {"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#1"}}

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



def test_the_interpreter_s_lambda_client_and_json_paths_are_reused() -> None:
    # Given the direct clients and the cached JSONPath parser
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import json_path

    from fanout.aws.clients import client
    from fanout.local.aws import ACCOUNT, REGION, emulated_aws
    from fanout.local.direct import DirectClient, DirectLambda, direct_clients
    from fanout.local.moto.speedups import cached_json_paths

    original_client, original_parse = lambda_eval_utils.boto_client_for, json_path.parse
    with emulated_aws(), direct_clients(lambda *_: b"{}", account=ACCOUNT, region=REGION):
        restore = cached_json_paths()
        try:
            # When the interpreter asks twice, and a handler asks for its clients
            first = lambda_eval_utils.boto_client_for("us-east-1", "lambda", None)
            second = lambda_eval_utils.boto_client_for("eu-west-1", "lambda", object())
            # Then one in-process Lambda client serves every task, the handlers get the
            # direct clients, and a path evaluates as before
            assert first is second and isinstance(first, DirectLambda)
            assert isinstance(client("dynamodb"), DirectClient)
            assert json_path.extract_json("$.a.b", {"a": {"b": [1, 2]}}) == [1, 2]
            assert json_path.extract_json("$.a.b", {"a": {"b": 3}}) == 3
        finally:
            restore()
        # And moto's own are back afterwards, and the handlers' clients are forgotten
    assert lambda_eval_utils.boto_client_for is original_client
    assert json_path.parse is original_parse
    from fanout.aws import clients

    assert clients._clients == {}


def test_a_cached_update_expression_applies_each_call_s_own_values() -> None:
    # Given update expressions parsed once
    from moto.dynamodb.parsing import expressions

    from fanout.local.moto.speedups import cached_update_expressions

    parser = expressions.UpdateExpressionParser
    original = parser.__dict__["make"]
    with moto_table(cached_update_expressions) as ddb:
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
    assert parser.__dict__["make"] is original


def test_direct_calls_answer_as_the_boto3_client_does() -> None:
    # Given a table on moto, a boto3 client and a direct client beside it
    from fanout.local.aws import ACCOUNT, REGION
    from fanout.local.direct import HOT_OPERATIONS, DirectClient

    with moto_table(keys=("pk", "sk")) as ddb:
        direct = DirectClient(ddb, HOT_OPERATIONS["dynamodb"], account=ACCOUNT, region=REGION)
        seen: list[tuple[str, str]] = []
        ddb.meta.events.register("before-parameter-build.dynamodb",
                                 lambda model, **_: seen.append(("before", model.name)))
        ddb.meta.events.register("after-call.dynamodb",
                                 lambda model, **_: seen.append(("after", model.name)))
        for i in range(3):
            ddb.put_item(TableName="t", Item={
                "pk": {"S": "RUN#r"}, "sk": {"S": f"ITEM#{i}"}, "n": {"N": str(i)},
                "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]}}},
            })
        key = {"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#1"}}
        reads: list[tuple[str, dict[str, Any]]] = [
            ("get_item", {"TableName": "t", "Key": key, "ConsistentRead": True}),
            ("get_item", {"TableName": "t", "Key": {**key, "sk": {"S": "ITEM#9"}}}),
            ("query", {"TableName": "t", "KeyConditionExpression": "pk = :p",
                       "ExpressionAttributeValues": {":p": {"S": "RUN#r"}}, "Limit": 2}),
            ("update_item", {"TableName": "t", "Key": key, "ReturnValues": "ALL_NEW",
                             "UpdateExpression": "SET n = n + :one",
                             "ExpressionAttributeValues": {":one": {"N": "1"}}}),
        ]

        def answer(client: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
            got = dict(getattr(client, method)(**params))
            got.pop("ResponseMetadata", None)
            return got

        # When each is asked the same, Then they answer the same
        for method, params in reads:
            if method == "update_item":  # one update each: the second sees the first
                assert answer(direct, method, params)["Attributes"]["n"] == {"N": "2"}
                assert answer(ddb, method, params)["Attributes"]["n"] == {"N": "3"}
            else:
                assert answer(direct, method, params) == answer(ddb, method, params)

        # And a failed condition and a cancelled transaction raise the client's own
        # exceptions, with the cancellation reasons
        failed = {"TableName": "t", "Key": key, "UpdateExpression": "SET n = :z",
                  "ConditionExpression": "attribute_not_exists(pk)",
                  "ExpressionAttributeValues": {":z": {"N": "0"}}}
        cancelled = {"TransactItems": [
            {"ConditionCheck": {"TableName": "t", "Key": key,
                                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "RUN#r"}, "sk": {"S": "Z"}}}},
        ]}
        errors = []
        for client in (ddb, direct):
            with pytest.raises(client.exceptions.ConditionalCheckFailedException) as one:
                client.update_item(**failed)
            with pytest.raises(client.exceptions.TransactionCanceledException) as two:
                client.transact_write_items(**cancelled)
            with pytest.raises(client.exceptions.ResourceNotFoundException):
                client.get_item(TableName="missing", Key=key)
            errors.append((one.value.response["Error"], two.value.response["Error"],
                           two.value.response["CancellationReasons"]))
        assert errors[0] == errors[1]
        assert errors[1][2][0]["Code"] == "ConditionalCheckFailed"
        # And nothing was written by either
        assert "Item" not in ddb.get_item(TableName="t", Key={**key, "sk": {"S": "Z"}})
        # And hooks on the client's events saw the direct calls, failed ones included
        assert seen.count(("after", "TransactWriteItems")) == 2
        assert seen.count(("before", "GetItem")) == seen.count(("after", "GetItem")) >= 6
        # And a call it does not take over goes to the boto3 client
        assert direct.describe_table(TableName="t")["Table"]["TableName"] == "t"


def test_direct_lambda_answers_as_lambda_invoke_does() -> None:
    # Given a stand-in for moto's Lambda backend: one function answers, one raises
    import json

    from fanout.local.direct import DirectLambda

    def invoke(name: str, qualifier: Any, body: bytes, headers: Any,
               response_headers: dict[str, str]) -> bytes:
        if name == "broken":
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "ValueError", "errorMessage": "no"}).encode()
        return json.dumps({"echo": json.loads(body)}).encode()

    client = DirectLambda(invoke)
    # When each is invoked as the interpreter invokes it
    ok = client.invoke(FunctionName="fine", Payload=json.dumps({"a": 1}))
    bad = client.invoke(FunctionName="broken", Payload=b"{}")
    # Then the answers carry what boto3's do: status, function error, payload stream
    assert ok["StatusCode"] == 200 and "FunctionError" not in ok
    assert json.loads(ok["Payload"].read()) == {"echo": {"a": 1}}
    assert bad["FunctionError"] == "Unhandled"
    assert json.loads(bad["Payload"].read())["errorType"] == "ValueError"


@pytest.mark.parametrize("expression, names, values", [
    ("SET n = n + :one, m.l = list_append(m.l, :more) REMOVE gone",
     {}, {":one": {"N": "1"}, ":more": {"L": [{"S": "y"}]}}),
    ("SET #s = if_not_exists(#s, :s) ADD c :one", {"#s": "status"},
     {":s": {"S": "RUNNING"}, ":one": {"N": "1"}}),
    ("SET n = :a, n = :b", {}, {":a": {"N": "1"}, ":b": {"N": "2"}}),  # overlapping paths
    ("SET a = :a SET b = :a", {}, {":a": {"N": "1"}}),  # two SET clauses
    ("SET pk = :a", {}, {":a": {"S": "other"}}),  # a key attribute
    ("SET n = n + :s", {}, {":s": {"S": "text"}}),  # a type mismatch
])
def test_cached_expression_walks_give_moto_s_answers(
    expression: str, names: dict[str, str], values: dict[str, Any]
) -> None:
    # Given an item, updated once with moto's own expression walks and once with the caches
    from botocore.exceptions import ClientError

    from fanout.local.moto.speedups import (
        cached_method_names,
        cached_traversal_maps,
        cached_update_expressions,
    )

    def update(cached: bool) -> Any:
        patches = (cached_method_names, cached_traversal_maps,
                   cached_update_expressions) if cached else ()
        with moto_table(*patches) as ddb:
            ddb.put_item(TableName="t", Item={
                "pk": {"S": "k"}, "n": {"N": "1"}, "gone": {"S": "x"},
                "m": {"M": {"l": {"L": [{"S": "x"}]}}},
            })
            params: dict[str, Any] = {"TableName": "t", "Key": {"pk": {"S": "k"}},
                                      "UpdateExpression": expression,
                                      "ExpressionAttributeValues": values,
                                      "ReturnValues": "ALL_NEW"}
            if names:
                params["ExpressionAttributeNames"] = names
            answers = []
            for _ in range(2):  # the second from the cached tree
                try:
                    answers.append(ddb.update_item(**params)["Attributes"])
                except ClientError as exc:
                    answers.append(exc.response["Error"])
            return answers

    # When the same update is made both ways, Then the item (or the error) is the same
    assert update(cached=True) == update(cached=False)


def test_an_expression_that_passed_its_form_checks_is_checked_again_with_other_names() -> None:
    # Given an update expression that passed with two distinct attribute names
    from botocore.exceptions import ClientError

    from fanout.local.moto.speedups import cached_traversal_maps, cached_update_expressions

    with moto_table(cached_traversal_maps, cached_update_expressions) as ddb:
        update = {"TableName": "t", "Key": {"pk": {"S": "k"}},
                  "UpdateExpression": "SET #a = :x, #b = :y",
                  "ExpressionAttributeValues": {":x": {"N": "1"}, ":y": {"N": "2"}}}
        ddb.update_item(**update, ExpressionAttributeNames={"#a": "p", "#b": "q"})
        # When the same expression names one attribute twice
        with pytest.raises(ClientError) as raised:
            ddb.update_item(**update, ExpressionAttributeNames={"#a": "p", "#b": "p"})
        # Then it is refused as moto refuses it, and the item keeps the first update
        assert "Two document paths overlap" in raised.value.response["Error"]["Message"]
        item = ddb.get_item(TableName="t", Key={"pk": {"S": "k"}})["Item"]
        assert item == {"pk": {"S": "k"}, "p": {"N": "1"}, "q": {"N": "2"}}


def test_the_speed_ups_can_be_switched_off_and_are_guarded_by_moto_s_version(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    from fanout.local.moto import speedups

    # Given the moto release they were checked against, Then they are on unless switched off
    assert version("moto") in speedups.CHECKED_MOTO
    assert speedups.enabled({}) == (True, "")
    assert speedups.enabled({"FANOUT_LOCAL_SPEEDUPS": "1"}) == (True, "")
    on, why = speedups.enabled({"FANOUT_LOCAL_SPEEDUPS": "0"})
    assert not on and "FANOUT_LOCAL_SPEEDUPS=0" in why
    # When moto is a release they were not checked against, Then they stay off, saying why
    monkeypatch.setattr(speedups, "CHECKED_MOTO", ("0.0.1",))
    on, why = speedups.enabled({})
    assert not on and f"moto {version('moto')}" in why


def test_switched_off_moto_is_moto_s_own_and_the_run_is_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the speed-ups switched off
    from moto.dynamodb.models import DynamoDBBackend
    from moto.stepfunctions.parser.asl.utils import json_path

    from fanout.local.aws import emulated_aws, take_over
    from fanout.local.fargate import EmulatedFargate

    monkeypatch.setenv("FANOUT_LOCAL_SPEEDUPS", "0")
    transact, parse = DynamoDBBackend.transact_write_items, json_path.parse
    fargate = EmulatedFargate(region="us-east-1", account="123456789012", cluster_arn="c",
                              task_definitions={}, publish=lambda e: None,
                              write_logs=lambda *a: None)
    # When moto is taken over, Then nothing but the patches the local mode needs is
    # applied: moto's own JSONPath parser; transactions that do not copy the table (0007)
    with emulated_aws(), take_over(fargate, lambda *_: b"{}") as left_out:
        assert json_path.parse is parse
        assert DynamoDBBackend.transact_write_items is not transact
        assert left_out == ["moto speed-ups off: FANOUT_LOCAL_SPEEDUPS=0"]


def test_a_condition_expression_lexed_once_judges_each_call_s_own_values() -> None:
    # Given condition expressions lexed once
    from moto.dynamodb import comparisons

    from fanout.local.moto.speedups import cached_condition_lexing

    parser = comparisons.ConditionExpressionParser
    original = parser.__dict__["_lex_condition_expression"]
    condition = "attribute_not_exists(pk) OR (#n < :most AND who <> :who)"
    with moto_table(cached_condition_lexing) as ddb:
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}, "who": {"S": "x"}})

        def bump(most: str, who: str) -> bool:
            try:
                ddb.update_item(TableName="t", Key={"pk": {"S": "a"}},
                                UpdateExpression="SET #n = #n + :one",
                                ConditionExpression=condition,
                                ExpressionAttributeNames={"#n": "n"},
                                ExpressionAttributeValues={":one": {"N": "1"},
                                                           ":most": {"N": most},
                                                           ":who": {"S": who}})
            except ddb.exceptions.ConditionalCheckFailedException:
                return False
            return True

        # When the same expression is judged with other values, Then each call's count
        assert [bump("5", "y"), bump("2", "y"), bump("5", "x"), bump("9", "z")] == \
            [True, False, False, True]
        assert ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "3"}
        # And a write whose condition fails changes nothing, with the same expression
        assert ddb.put_item(TableName="t", Item={"pk": {"S": "b"}}, ConditionExpression=(
            "attribute_not_exists(pk)"))["ResponseMetadata"]["HTTPStatusCode"] == 200
        with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
            ddb.put_item(TableName="t", Item={"pk": {"S": "b"}, "x": {"S": "y"}},
                         ConditionExpression="attribute_not_exists(pk)")
        assert "x" not in ddb.get_item(TableName="t", Key={"pk": {"S": "b"}})["Item"]
    assert parser.__dict__["_lex_condition_expression"] is original


def test_request_ids_keep_their_shape() -> None:
    # Given request ids drawn at once
    import re

    from moto.core import responses

    from fanout.local.moto.speedups import cheap_request_ids

    original = responses.gen_amzn_requestid_long
    restore = cheap_request_ids()
    try:
        # When a few are drawn, Then each is 52 letters and digits, set in the headers
        headers: dict[str, str] = {}
        ids = {responses.gen_amzn_requestid_long(headers) for _ in range(50)}
        assert len(ids) == 50 and all(re.fullmatch(r"[A-Za-z0-9]{52}", i) for i in ids)
        assert re.fullmatch(r"[A-Za-z0-9]{52}", headers["x-amzn-requestid"])
    finally:
        restore()
    assert responses.gen_amzn_requestid_long is original


def test_a_query_on_an_index_answers_as_moto_s_own() -> None:
    # Given a table with an index, items in and out of it, some with other key values
    from fanout.local.moto.speedups import indexed_queries

    def answers(*patches: Any) -> list[Any]:
        with moto_table(*patches, keys=("pk", "sk"), indexes={"open": ("g",)}) as ddb:
            for i in range(30):
                item = {"pk": {"S": f"RUN#{i % 3}"}, "sk": {"S": f"A#{i:03d}"},
                        "n": {"N": str(i)}}
                if i % 4:
                    item["g"] = {"S": "yes" if i % 5 else "no"}
                ddb.put_item(TableName="t", Item=item)
            got = []
            # When the index is queried: whole, paged, filtered, backwards, counted
            query = {"TableName": "t", "IndexName": "open", "KeyConditionExpression": "g = :g",
                     "ExpressionAttributeValues": {":g": {"S": "yes"}}}
            got.append(ddb.query(**query)["Items"])
            page = ddb.query(**query, Limit=4)
            got.append((page["Items"], page["LastEvaluatedKey"]))
            got.append(ddb.query(**query, Limit=4,
                                 ExclusiveStartKey=page["LastEvaluatedKey"])["Items"])
            got.append(ddb.query(**{**query, "FilterExpression": "n > :n",
                                    "ExpressionAttributeValues": {":g": {"S": "yes"},
                                                                  ":n": {"N": "10"}}})["Items"])
            got.append(ddb.query(**query, ScanIndexForward=False)["Items"])
            got.append(ddb.query(**{**query, "ExpressionAttributeValues": {
                ":g": {"S": "no"}}}, Select="COUNT")["Count"])
            return got

    # Then every answer is moto's own
    ours, theirs = answers(indexed_queries), answers()
    assert ours == theirs and len(theirs[0]) > 10


def test_query_results_answered_uncopied_are_moto_s_own_and_stay_as_answered() -> None:
    # Given a table with an index, items holding nested values, some in the index
    import copy

    from fanout.local.aws import ACCOUNT, REGION
    from fanout.local.direct import HOT_OPERATIONS, DirectClient
    from fanout.local.moto.speedups import uncopied_query_results

    def answers(*patches: Any) -> list[Any]:
        with moto_table(*patches, keys=("pk", "sk"), indexes={"open": ("g",)}) as ddb:
            direct = DirectClient(ddb, HOT_OPERATIONS["dynamodb"], account=ACCOUNT,
                                  region=REGION)
            for i in range(12):
                item = {"pk": {"S": "RUN#r"}, "sk": {"S": f"ITEM#{i:02d}"},
                        "m": {"M": {"l": {"L": [{"S": "x"}, {"N": str(i)}]}}}}
                if i % 3:
                    item["g"] = {"S": "yes"}
                ddb.put_item(TableName="t", Item=item)
            own = {"TableName": "t", "KeyConditionExpression": "pk = :p",
                   "ExpressionAttributeValues": {":p": {"S": "RUN#r"}}}
            index = {"TableName": "t", "IndexName": "open", "KeyConditionExpression": "g = :g",
                     "ExpressionAttributeValues": {":g": {"S": "yes"}}}
            # When they are queried, by both clients: whole, paged, projected, on the index
            got = []
            for client in (ddb, direct):
                got.append(client.query(**own)["Items"])
                got.append(client.query(**own, Limit=5)["Items"])
                got.append(client.query(**own, ProjectionExpression="sk, m.l[1]")["Items"])
                got.append(client.query(**index)["Items"])
            # And an item a query answered is changed after, deep inside
            before = copy.deepcopy(got[4])
            ddb.update_item(TableName="t", Key={"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#00"}},
                            UpdateExpression="SET m.l[1] = :n",
                            ExpressionAttributeValues={":n": {"N": "99"}})
            # Then what was answered is as it was answered
            assert got[4] == before
            got.append(direct.query(**own)["Items"][0]["m"])
            return got

    # And every answer is moto's own
    ours, theirs = answers(uncopied_query_results), answers()
    assert ours == theirs and ours[-1] == {"M": {"l": {"L": [{"S": "x"}, {"N": "99"}]}}}


_NAMES = ("a", "b", "c", "n", "s", "g", "l", "m", "pk", "status")
_VALUES = (
    {"S": "x"}, {"S": ""}, {"S": "other"}, {"N": "1"}, {"N": "-2.5"}, {"BOOL": True},
    {"NULL": True}, {"SS": ["p", "q"]}, {"NS": ["1", "3"]}, {"L": [{"S": "y"}]},
    {"M": {"x": {"N": "4"}}}, {"B": "AAE="},
)


@st.composite
def _updates(draw: st.DrawFn) -> dict[str, Any]:
    """An item and an update of it: the shapes the run makes and many it does not."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}

    def path() -> str:
        top = draw(st.sampled_from(_NAMES))
        if draw(st.booleans()):
            placeholder = f"#p{len(names)}"
            names[placeholder] = top
            top = placeholder
        nested = draw(st.sampled_from(("",) * 8 + (".x", "[0]")))
        return top + nested

    def value() -> str:
        if draw(st.integers(0, 19)) == 0:
            return ":undefined"
        placeholder = f":v{len(values)}"
        values[placeholder] = draw(st.sampled_from(_VALUES))
        return placeholder

    def action(kind: str) -> str:
        if kind == "SET":
            shape = draw(st.sampled_from(("value", "value", "read", "if_not_exists",
                                          "if_not_exists", "plus", "list_append")))
            operand = {"value": lambda: value(), "read": lambda: path(),
                       "if_not_exists": lambda: f"if_not_exists({path()}, {value()})",
                       "plus": lambda: f"{path()} + {value()}",
                       "list_append": lambda: f"list_append({path()}, {value()})"}[shape]()
            return f"{path()} = {operand}"
        if kind == "REMOVE":
            return path()
        return f"{path()} {value()}"  # ADD, DELETE

    kinds = draw(st.lists(st.sampled_from(("SET", "SET", "REMOVE", "ADD", "DELETE")),
                          min_size=1, max_size=3, unique=True))
    expression = " ".join(
        f"{kind} " + ", ".join(action(kind) for _ in range(draw(st.integers(1, 3))))
        for kind in kinds)
    item = {name: draw(st.sampled_from(_VALUES)) for name in
            draw(st.lists(st.sampled_from([n for n in _NAMES if n not in ("pk", "g")]),
                          max_size=6))}
    if draw(st.booleans()):  # the index's key: a string, as the table defines it
        item["g"] = {"S": "indexed"}
    return {"expression": expression, "names": names, "values": values, "item": item}


@given(cases=st.lists(_updates(), min_size=5, max_size=25))
@example(cases=[{"expression": "SET #p0[0] = m, #p1 = if_not_exists(m, :v0)",
                 "names": {"#p0": "m", "#p1": "m"}, "values": {":v0": {"N": "-2.5"}},
                 "item": {"m": {"L": [{"S": "y"}]}}}])
@settings(max_examples=15, deadline=None,
          # An example takes about a second: shrinking one ran past five minutes, so a
          # failure is reported as found (every case is printed) rather than shrunk
          phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_updates_validated_in_one_walk_answer_as_moto_s_walks(
        cases: list[dict[str, Any]]) -> None:
    # Given items and updates of every shape (SET of values, of attributes, if_not_exists,
    # sums, list_append, REMOVE, ADD, DELETE; nested paths, key attributes, reserved
    # words, values not defined, attributes missing, empty key values, wrong key types)
    from botocore.exceptions import ClientError

    from fanout.local.moto import expressions, speedups, updates

    walked_once: list[Any] = []
    one_walk = expressions._validated_in_one_walk
    planned: list[Any] = []
    apply = updates._apply

    def counted(validator: Any) -> Any:
        tree = one_walk(validator)
        walked_once.append(tree)
        return tree

    def applied(item: Any, writes: Any) -> None:
        planned.append(writes)
        apply(item, writes)

    # (and one that the one walk is known to take)
    cases = [{"expression": "SET a = :v0, c = if_not_exists(c, :v0) REMOVE b ADD n :v1",
              "names": {}, "values": {":v0": {"S": "x"}, ":v1": {"N": "2"}},
              "item": {"b": {"S": "y"}, "n": {"N": "1"}}}, *cases]

    def answers(*patches: Any) -> list[Any]:
        got: list[Any] = []
        with moto_table(*patches, indexes={"by_g": ("g",)}) as ddb:
            for n, case in enumerate(cases):
                key = {"pk": {"S": f"k{n}"}}
                # Each kind of return value (those that read moto's copy of the item too)
                returned = ("ALL_NEW", "NONE", "ALL_OLD", "UPDATED_OLD", "UPDATED_NEW")[n % 5]
                params: dict[str, Any] = {"TableName": "t", "Key": key,
                                          "UpdateExpression": case["expression"],
                                          "ReturnValues": returned}
                if case["names"]:
                    params["ExpressionAttributeNames"] = case["names"]
                if case["values"]:
                    params["ExpressionAttributeValues"] = case["values"]
                # When each update is made three times on the same item as first written
                # (the second and third from what the first learnt)
                for _ in range(3):
                    ddb.put_item(TableName="t", Item={**key, **case["item"]})
                    try:
                        got.append(ddb.update_item(**params).get("Attributes"))
                    except ClientError as exc:
                        got.append(exc.response["Error"])
                    except Exception as exc:  # what moto itself cannot apply
                        got.append((type(exc).__name__, str(exc)))
                try:
                    got.append(ddb.get_item(TableName="t", Key=key).get("Item"))
                except RecursionError as exc:  # moto's SET l[0] = l makes l hold itself
                    got.append((type(exc).__name__, "an item that holds itself"))
        return got

    expressions._validated_in_one_walk = counted  # type: ignore[assignment]
    try:
        walked = answers(speedups.cached_traversal_maps, speedups.cached_update_expressions,
                         speedups.uncopied_updates)
    finally:
        expressions._validated_in_one_walk = one_walk  # type: ignore[assignment]
    updates._apply = applied  # type: ignore[assignment]
    try:
        ours = answers(speedups.cached_traversal_maps, speedups.cached_update_expressions,
                       speedups.uncopied_updates, speedups.planned_updates)
    finally:
        updates._apply = apply  # type: ignore[assignment]
    theirs = answers()
    # Then every answer, every error and every item is the one moto's own walks give,
    # whether the update was validated in one walk or applied from its plan
    assert walked == theirs
    assert ours == theirs
    # And the one walk validated the update it knows after the first time (at least),
    # and the plan applied it after moto's walks had once
    assert len(walked_once) >= 2
    assert len(planned) >= 2


def test_one_walk_leaves_the_tree_moto_s_walks_leave() -> None:
    # Given the updates a run makes (values, if_not_exists, ADD, REMOVE, placeholders)
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    from fanout.local.moto.expressions import _validated_in_one_walk

    def shape(node: Any) -> Any:
        if isinstance(node, ast_nodes.Node):
            parent = type(node.parent).__name__ if node.parent is not None else None
            return (type(node).__name__, parent, [shape(c) for c in node.children or []])
        return ("value", node.to_json() if isinstance(node, DynamoType) else node)

    class Table:
        table_key_attrs = ["pk", "sk"]
        attr = [{"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}]
        attribute_keys = ["pk", "sk", "g"]

    item = Item(DynamoType({"S": "r"}), DynamoType({"S": "a"}),
                {"pk": {"S": "r"}, "sk": {"S": "a"}, "expires_at": {"N": "5"}, "c": {"N": "1"}})
    expression = ("SET #status = :s, expires_at = if_not_exists(expires_at, :ttl), "
                  "fresh_at = if_not_exists(fresh_at, :ttl), g = :g, copied = c "
                  "REMOVE #open, queued ADD c :one, w :one")
    names = {"#status": "status", "#open": "open"}
    values = {":s": {"S": "RUNNING"}, ":ttl": {"N": "9"}, ":g": {"S": "x"},
              ":one": {"N": "1"}}

    def validated(one_walk: bool) -> Any:
        validator = UpdateExpressionValidator(
            UpdateExpressionParser.make(expression), expression_attribute_names=names,
            expression_attribute_values=values, item=item, table=Table())
        return _validated_in_one_walk(validator) if one_walk else validator.validate()

    # When one is validated by the one walk and by moto's ten, Then the trees are alike:
    # every node, its parent, every value (the item's own attributes where it reads them)
    assert shape(validated(True)) == shape(validated(False))


@st.composite
def _conditions(draw: st.DrawFn, depth: int = 0) -> str:
    """A condition expression over attributes a, b, n, s (``#s`` for s) and values
    ``:x``, ``:y`` (``:missing`` now and then: a value not defined)."""
    operand = st.sampled_from(("a", "b", "n", "#s", "m.x", "l[0]"))
    value = st.sampled_from((":x", ":x", ":y", ":y", ":missing"))
    shapes = ["compare", "exists", "not_exists", "begins", "contains", "size",
              "between", "in"] + ["and", "or", "not"] * (depth < 2)
    shape = draw(st.sampled_from(shapes))
    if shape == "compare":
        op = draw(st.sampled_from(("=", "<>", "<", ">", "<=", ">=")))
        return f"{draw(operand)} {op} {draw(value)}"
    if shape in ("exists", "not_exists"):
        return f"attribute_{'not_' * (shape == 'not_exists')}exists({draw(operand)})"
    if shape == "begins":
        return f"begins_with({draw(operand)}, {draw(value)})"
    if shape == "contains":
        return f"contains({draw(operand)}, {draw(value)})"
    if shape == "size":
        return f"size({draw(operand)}) > {draw(value)}"
    if shape == "between":
        return f"{draw(operand)} BETWEEN {draw(value)} AND {draw(value)}"
    if shape == "in":
        return f"{draw(operand)} IN ({draw(value)}, {draw(value)})"
    if shape == "not":
        return f"NOT ({draw(_conditions(depth + 1))})"
    joined = f" {shape.upper()} ".join((draw(_conditions(depth + 1)),
                                       draw(_conditions(depth + 1))))
    return f"({joined})" if draw(st.booleans()) else joined


@given(cases=st.lists(st.tuples(
    _conditions(),
    st.lists(st.tuples(st.sampled_from(_VALUES[:7]), st.sampled_from(_VALUES[:7])),
             min_size=2, max_size=4)), min_size=3, max_size=10))
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_a_condition_parsed_once_judges_as_moto_s_parse(
        cases: list[tuple[str, list[tuple[Any, Any]]]]) -> None:
    # Given conditions of every shape, each judged several times with other values
    from botocore.exceptions import ClientError

    from fanout.local.moto.speedups import cached_condition_lexing, cached_condition_parses

    item = {"a": {"S": "x"}, "n": {"N": "1"}, "s": {"S": "other"}, "l": {"L": [{"S": "x"}]},
            "m": {"M": {"x": {"N": "1"}}}}

    def answers(*patches: Any) -> list[Any]:
        got: list[Any] = []
        with moto_table(*patches) as ddb:
            for n, (condition, draws) in enumerate(cases):
                key = {"pk": {"S": f"k{n}"}}
                ddb.put_item(TableName="t", Item={**key, **item})
                names = {"#s": "s"} if "#s" in condition else {}
                for x, y in draws:
                    values = {k: v for k, v in ((":x", x), (":y", y), (":one", {"N": "1"}))
                              if k in condition or k == ":one"}
                    # When it guards an update, and a transaction's condition check
                    update: dict[str, Any] = {
                        "TableName": "t", "Key": key, "UpdateExpression": "ADD c :one",
                        "ConditionExpression": condition, "ExpressionAttributeValues": values}
                    check = {"TableName": "t", "Key": key, "ConditionExpression": condition,
                             "ExpressionAttributeValues": {
                                 k: v for k, v in values.items() if k != ":one"}}
                    if names:
                        update["ExpressionAttributeNames"] = check[
                            "ExpressionAttributeNames"] = names
                    if not check["ExpressionAttributeValues"]:
                        del check["ExpressionAttributeValues"]
                    for method, params in (("update_item", update), ("transact_write_items",
                                           {"TransactItems": [{"ConditionCheck": check}]})):
                        try:
                            getattr(ddb, method)(**params)
                            got.append("written")
                        except ClientError as exc:
                            got.append((exc.response["Error"],
                                        exc.response.get("CancellationReasons")))
                        except Exception as exc:  # what moto itself cannot judge
                            got.append((type(exc).__name__, str(exc)))
                got.append(ddb.get_item(TableName="t", Key=key)["Item"])
        return got

    # Then each call is judged as moto judges it (written, failed, refused with its error)
    ours = answers(cached_condition_lexing, cached_condition_parses)
    assert ours == answers()


# --- parameters handed to moto without the JSON (fanout.local.moto.params) ------------------

def _strict(value: Any) -> Any:
    """A value with its types and its dicts' order spelt out: 1, 1.0 and True differ."""
    if isinstance(value, dict):
        return ("dict", [(_strict(k), _strict(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_strict(v) for v in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


def _moto_s_parse(model: Any, params: dict[str, Any]) -> Any:
    """What moto's own request parser reads from ``json.dumps(params)``, or its error."""
    import json

    from moto.core.parse import PROTOCOL_PARSERS

    try:
        text = json.dumps(params)
        parser = PROTOCOL_PARSERS["json"](model, map_type=dict)
        return _strict(parser.parse({"method": "POST", "values": {}, "headers": {},
                                     "body": text, "url_path": "/", "url_params": {}}))
    except Exception as failed:  # the walk must refuse what moto fails on
        return failed


def _junk() -> st.SearchStrategy[Any]:
    """Values JSON changes or refuses, and values of the wrong type for any shape."""
    return st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3),
                     st.binary(max_size=3), st.tuples(st.text(max_size=2)),
                     st.dictionaries(st.integers(0, 3), st.text(max_size=2), max_size=2),
                     st.lists(st.none(), max_size=2), st.just({}), st.just([]))


def _from_shape(shape: Any, depth: int = 0, junk: bool = False) -> st.SearchStrategy[Any]:
    """Parameters shaped by ``shape`` (attribute values nested a few levels); with
    ``junk``, now and then a value of the wrong type or one JSON would change."""
    kind = shape.type_name
    deep = depth > 3
    if kind == "structure":
        members = {} if deep else {  # a member given as null now and then
            name: st.one_of(*[_from_shape(member, depth + 1, junk)] * 6, st.none())
            for name, member in list(shape.members.items())[:12]}
        shaped = st.fixed_dictionaries({}, optional={**members, "Unknown": st.text(max_size=2)})
    elif kind == "list":
        shaped = st.lists(_from_shape(shape.member, depth + 1, junk), max_size=0 if deep else 3)
    elif kind == "map":
        shaped = st.dictionaries(st.text(max_size=3), _from_shape(shape.value, depth + 1, junk),
                                 max_size=0 if deep else 3)
    elif kind in ("integer", "long"):
        shaped = st.one_of(st.integers(), st.booleans(), st.sampled_from(["7", "x"]))
    elif kind in ("float", "double"):
        shaped = st.one_of(st.floats(), st.integers(), st.sampled_from(["1.5", "inf"]))
    elif kind == "boolean":
        shaped = st.booleans()
    elif kind == "blob":
        shaped = st.one_of(st.binary(max_size=4), st.just("AAE="))
    elif kind == "timestamp":
        shaped = st.one_of(st.floats(0, 2e9), st.just("2026-12-05T00:00:00Z"))
    else:
        shaped = st.text(max_size=4)
    if not junk:
        return shaped
    return st.one_of(*[shaped] * 12, _junk())


_OPERATIONS = [("dynamodb", op) for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem",
                                           "Query", "TransactWriteItems")] + [
    ("ecs", "RunTask"), ("ecs", "DescribeTasks"), ("ecs", "StopTask")]


@settings(max_examples=200, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(data=st.data(), which=st.sampled_from(_OPERATIONS))
def test_parameters_walked_are_moto_s_parse_of_their_json(data: st.DataObject,
                                                           which: tuple[str, str]) -> None:
    # Given an operation's parameters, shaped by its input or not, JSON-safe or not
    import botocore.session

    from fanout.local.moto.params import ParamsWalk, Unsupported

    model = botocore.session.get_session().get_service_model(which[0]).operation_model(
        which[1])
    junk = data.draw(st.booleans())
    params = data.draw(_from_shape(model.input_shape, junk=junk).filter(
        lambda p: isinstance(p, dict)))
    # When the walk reads them, Then it gives what moto's parser reads from their JSON,
    # type for type and in the same order, or refuses them (moto's parser then runs)
    theirs = _moto_s_parse(model, params)
    try:
        ours = _strict(ParamsWalk().parse(params, model.input_shape))
    except Unsupported:
        return
    assert ours == theirs


def test_every_call_of_a_run_is_read_as_moto_s_parser_reads_it(
        e2e_stack: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a local run whose every direct call's parameters are also read by moto's parser
    from fanout.local.moto import params as params_module
    from fanout.local.runner import LocalOptions, LocalRun

    walked, refused, differences = [], [], []
    original = params_module.ParamsWalk.parse

    def compared(self: Any, params: dict[str, Any], shape: Any) -> dict[str, Any]:
        theirs = _moto_s_parse(_model_of(shape), params)
        try:
            ours = original(self, params, shape)
        except params_module.Unsupported:
            refused.append(shape.name)
            raise
        walked.append(shape.name)
        if _strict(ours) != theirs:
            differences.append((shape.name, params))
        return ours

    models: dict[str, Any] = {}

    def _model_of(shape: Any) -> Any:
        return models[shape.name]

    import botocore.session

    for service in ("dynamodb", "ecs", "stepfunctions"):
        model = botocore.session.get_session().get_service_model(service)
        for name in model.operation_names:
            if model.operation_model(name).input_shape is not None:
                models[model.operation_model(name).input_shape.name] = \
                    model.operation_model(name)
    monkeypatch.setattr(params_module.ParamsWalk, "parse", compared)
    spec = {"job": "prog", "retry": {"max_attempts": 2},
            "items": [{"code": 3 if i == 1 else 0, "sleep": 0, "fail": 0} for i in range(4)]}
    # When it runs
    summary = LocalRun(LocalOptions(config_path=e2e_stack, records_dir=tmp_path / "runs",
                                    stop_grace_seconds=0.5)).run(spec)
    # Then every call the walk read is read as moto's parser reads it, and it read nearly all
    assert summary.status in ("SUCCEEDED", "FAILED")
    assert differences == []
    assert {"GetItemInput", "TransactWriteItemsInput", "UpdateItemInput",
            "RunTaskRequest"} <= set(walked)
    assert len(refused) <= len(walked) // 10


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=20)


@given(value=_JSON)
@settings(max_examples=200, deadline=None)
def test_a_json_round_trip_without_the_json_is_json_s(value: Any) -> None:
    # Given a JSON value, and values JSON would change (a key not a string, a tuple, bytes)
    import json

    from fanout.local.moto.params import Unsupported, json_round_trip

    # When each goes round, Then it comes back as JSON's own round trip gives it
    assert json_round_trip(value) == json.loads(json.dumps(value))
    # And what JSON would change is refused, at the top or deep inside
    for changed in ({1: "a"}, ("a",), b"a", {"k": [{"n": {2: 0}}]}, [{"t": (1,)}]):
        with pytest.raises(Unsupported):
            json_round_trip(changed)
        with pytest.raises(Unsupported):
            json_round_trip({"v": value, "changed": [changed]})


@given(value=_JSON)
@settings(max_examples=200, deadline=None)
def test_the_interpreter_s_json_copies_are_deep_copies(value: Any) -> None:
    # Given a JSON value (what the interpreter's states hold), and one holding an object
    import copy

    from fanout.local.moto.speedups import json_copy

    class Held:
        def __init__(self) -> None:
            self.inner = [1]

    # When it is copied, Then the copy equals deepcopy's and shares no list or dict with it
    copied = json_copy(value)
    assert copied == copy.deepcopy(value)

    def containers(v: Any) -> list[int]:
        if isinstance(v, dict):
            return [id(v), *(i for x in v.values() for i in containers(x))]
        if isinstance(v, list):
            return [id(v), *(i for x in v for i in containers(x))]
        return []

    assert not set(containers(copied)) & set(containers(value))
    held = Held()
    wrapped = json_copy({"v": value, "held": [held]})
    assert wrapped["held"][0] is not held and wrapped["held"][0].inner == [1]
    assert wrapped["held"][0].inner is not held.inner


def test_a_run_s_state_machine_copies_as_json() -> None:
    # Given the speed-ups applied
    import importlib

    from fanout.local.moto.speedups import _INTERPRETER_COPIES, json_copies_in_step_functions

    modules = [importlib.import_module(name) for name in _INTERPRETER_COPIES]
    before = [m.copy for m in modules]
    restore = json_copies_in_step_functions()
    try:
        # Then each module's deepcopy is the JSON copy; and after, moto's own again
        assert all(m.copy.deepcopy.__name__ == "json_copy" for m in modules)
    finally:
        restore()
    assert [m.copy for m in modules] == before


_DYNAMO = st.recursive(
    st.one_of(st.builds(lambda s: {"S": s}, st.text(max_size=6)),
              st.builds(lambda n: {"N": str(n)}, st.integers(-10**6, 10**6)),
              st.builds(lambda n: {"N": n}, st.sampled_from(["1.50", "-0.001", "7E+2"])),
              st.builds(lambda b: {"BOOL": b}, st.booleans()), st.just({"NULL": True}),
              st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=4),
                                                             min_size=1, max_size=3)),
              st.builds(lambda s: {"NS": sorted(map(str, s))}, st.sets(st.integers(0, 99),
                                                                       min_size=1, max_size=3)),
              st.builds(lambda b: {"B": b}, st.binary(max_size=5))),
    lambda inner: st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3))
    | st.builds(lambda v: {"M": v}, st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)


@given(pairs=st.lists(st.tuples(_DYNAMO, _DYNAMO), min_size=1, max_size=10))
@settings(max_examples=200, deadline=None)
def test_plain_strings_and_sizes_answer_as_moto_s_own(pairs: list[tuple[Any, Any]]) -> None:
    # Given values of every type, in pairs, and moto's own hash, equality, order and size
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from fanout.local.moto.dynamodb import plain_strings_and_sizes

    def answers() -> list[Any]:
        out: list[Any] = []
        for left, right in pairs:
            a, b = DynamoType(left), DynamoType(right)
            judges: list[tuple[str, Any]] = [
                ("hash", lambda a, b: hash(a)), ("eq", lambda a, b: a == b),
                ("lt", lambda a, b: a < b), ("size", lambda a, b: (a.size(), b.size()))]
            for name, judge in judges:
                try:
                    out.append((name, judge(a, b)))
                except Exception as error:  # moto's own refusal (unhashable, unordered)
                    out.append((name, type(error).__name__))
        item = Item(DynamoType({"S": "k"}), None,
                    {f"a{n}": value for n, (value, _) in enumerate(pairs)})
        out.append(("item size", item.size()))
        return out

    own = answers()
    restore = plain_strings_and_sizes()
    try:
        # When the same are asked with the speed-up, Then every answer is moto's
        assert answers() == own
    finally:
        restore()
    assert answers() == own


def test_clauses_of_a_parsed_update_are_found_once_and_handed_fresh() -> None:
    # Given the update expressions cached, and a tree parsed through them
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    from fanout.local.moto.expressions import cached_update_expressions

    restore = cached_update_expressions()
    try:
        tree = UpdateExpressionParser.make("SET #a = :v, b = #c REMOVE #d")
        kinds = [ast_nodes.ExpressionAttributeName]
        # When its names are asked twice, Then both are moto's walk's answer, fresh lists
        first = tree.find_clauses(kinds)
        first.append("changed by the caller")
        second = tree.find_clauses(kinds)
        assert [n.get_attribute_name_placeholder() for n in second] == ["#a", "#c", "#d"]
        assert second == ast_nodes.Node.find_clauses(tree, kinds)
    finally:
        restore()
    assert "find_clauses" not in ast_nodes.UpdateExpression.__dict__


def test_answers_serialized_with_kept_keys_are_moto_s_own() -> None:
    # Given ECS and Step Functions on moto: a cluster, a task definition, a service with
    # tags, a state machine and an execution
    import json

    import boto3
    from moto import mock_aws

    from fanout.local.moto.speedups import cached_attribute_keys

    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        iam = "arn:aws:iam::123456789012:role/r"
        ecs.create_cluster(clusterName="c", tags=[{"key": "k", "value": "v"}])
        ecs.register_task_definition(
            family="f", networkMode="bridge", requiresCompatibilities=["EC2"],
            cpu="256", memory="512", executionRoleArn=iam,
            containerDefinitions=[{"name": "main", "image": "busybox", "essential": True,
                                   "memory": 512,
                                   "environment": [{"name": "A", "value": "1"}]}])
        ecs.create_service(cluster="c", serviceName="s", taskDefinition="f", desiredCount=0,
                           launchType="EC2", tags=[{"key": "item", "value": "7"}])
        machine = sfn.create_state_machine(
            name="m", roleArn=iam,
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                    "End": True}}}))
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"],
                                        input='{"a": 1}')["executionArn"]

        def answers() -> list[Any]:
            calls = [
                ecs.describe_services(cluster="c", services=["s"]),
                ecs.describe_services(cluster="c", services=["s"], include=["TAGS"]),
                ecs.describe_task_definition(taskDefinition="f", include=["TAGS"]),
                ecs.describe_clusters(clusters=["c"], include=["TAGS", "SETTINGS"]),
                ecs.list_services(cluster="c"),
                sfn.list_executions(stateMachineArn=machine["stateMachineArn"]),
                sfn.describe_execution(executionArn=execution),
                sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"]),
            ]
            for call in calls:
                call.pop("ResponseMetadata")
            return calls

        own = answers()
        restore = cached_attribute_keys()
        try:
            # When they are asked again with the keys kept (twice: found, then kept),
            # Then every answer is the one moto's own picker gave
            assert answers() == own
            assert answers() == own
        finally:
            restore()
        assert answers() == own
    assert own[1]["services"][0]["tags"] == [{"key": "item", "value": "7"}]
    assert own[6]["status"] in ("RUNNING", "SUCCEEDED")


def test_kept_keys_are_where_moto_s_picker_looks() -> None:
    # Given every field of every answer of three services, asked of values of several
    # classes: a dict, classes named as the shapes' prefixes, one with serialization aliases
    from moto.core import serialize
    from moto.core.utils import get_service_model

    from fanout.local.moto.speedups import cached_attribute_keys

    class Service:
        pass

    class Task:
        pass

    class Aliased:
        class Meta:
            serialization_aliases = {"taskArn": "arn", "name": "title"}

    values: list[Any] = [{}, Service(), Task(), Aliased()]
    picker = serialize.XFormedAttributePicker
    contexts = []
    for service in ("ecs", "stepfunctions", "dynamodb"):
        model = get_service_model(service)  # moto's shapes, as its serializer walks them
        for operation in model.operation_names:
            todo, seen = [model.operation_model(operation).output_shape], set()
            while todo:
                shape = todo.pop()
                if shape is None or shape.name in seen:
                    continue
                seen.add(shape.name)
                for name, member in getattr(shape, "members", {}).items():
                    member.parent = shape  # as moto's serializer sets it
                    contexts += [serialize.AttributePickerContext(obj=v, key=name, shape=member)
                                 for v in values]
                    todo += [member, getattr(member, "member", None)]
    own = [list(picker().get_possible_keys(c)) for c in contexts]
    assert len(contexts) > 2000 and len({tuple(k) for k in own}) > 100
    restore = cached_attribute_keys()
    try:
        # When each is asked again with the keys kept, twice, Then each is moto's answer
        for _ in range(2):
            assert [list(picker().get_possible_keys(c)) for c in contexts] == own
    finally:
        restore()


def test_the_emulated_fargate_s_answers_handed_over_are_botocore_s_parse_of_moto_s(
        e2e_stack: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a local run (a retried item, a stopped one) whose every ECS answer handed over
    # parsed is also written by moto's serializer and read by botocore's parser
    from botocore.parsers import create_parser
    from moto.core.responses import ActionResult

    from fanout.local.moto import answers
    from fanout.local.runner import LocalOptions, LocalRun

    handed_class = answers._handed_result_class()
    ours_of = handed_class.execute_result
    parser = create_parser("json")
    compared, differences = [], []

    def both(self: Any, context: Any) -> Any:
        wanted = answers.wanted()
        status, headers, body = ours_of(self, context)
        if not wanted:
            return status, headers, body
        ours = getattr(answers._local, "answer", None)
        assert ours is not None, context.operation_model.name  # every answer is walked
        _, _, written = ActionResult.execute_result(self, context)
        theirs = parser.parse({"status_code": 200, "headers": {}, "body": written.encode()},
                              context.operation_model.output_shape)
        theirs.pop("ResponseMetadata", None)
        compared.append(context.operation_model.name)
        if theirs != ours:
            differences.append((context.operation_model.name, theirs, ours))
        return status, headers, body

    monkeypatch.setattr(handed_class, "execute_result", both)
    spec = {"job": "prog", "retry": {"max_attempts": 2},
            "items": [{"code": 3 if i == 1 else 0, "sleep": 0, "fail": 0} for i in range(4)]}
    # When it runs
    summary = LocalRun(LocalOptions(config_path=e2e_stack, records_dir=tmp_path / "runs",
                                    stop_grace_seconds=0.5)).run(spec)
    # Then each answer handed over (timestamps among them) is botocore's parse of moto's
    assert summary.status in ("SUCCEEDED", "FAILED")
    assert compared.count("RunTask") >= 5
    assert differences == []
