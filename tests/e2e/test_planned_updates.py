"""Updates applied from a plan (fanout.local.moto.updates) answer as moto's own walks do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import moto_table

_NAMES = ("a", "b", "c", "n", "s", "g", "status", "pk")
_VALUES = (
    {"S": "x"}, {"S": ""}, {"S": "other"}, {"N": "1"}, {"N": "-2.5"}, {"N": "10"},
    {"BOOL": True}, {"NULL": True}, {"SS": ["p", "q"]}, {"NS": ["1", "3"]},
    {"L": [{"S": "y"}]}, {"M": {"x": {"N": "4"}}}, {"B": "AAE="}, {"B": ""},
)
_PLACEHOLDERS = (":v0", ":v1", ":v2", ":v3")


@st.composite
def _cases(draw: st.DrawFn) -> dict[str, Any]:
    """An update of the shapes a plan applies (and of their mistakes), and three calls of
    it, each with its own item and values."""
    names: dict[str, str] = {}

    def path() -> str:
        top = draw(st.sampled_from(_NAMES))
        if draw(st.booleans()):
            names[f"#p{len(names)}"] = top
            return f"#p{len(names) - 1}"
        return top

    def value() -> str:
        return draw(st.sampled_from((*_PLACEHOLDERS, ":undefined")))

    def action(kind: str) -> str:
        if kind == "SET":
            shape = draw(st.sampled_from(("value", "read", "if_not_exists")))
            operand = {"value": value, "read": path,
                       "if_not_exists": lambda: f"if_not_exists({path()}, {value()})"}[shape]()
            return f"{path()} = {operand}"
        return path() if kind == "REMOVE" else f"{path()} {value()}"

    kinds = draw(st.permutations(("SET", "REMOVE", "ADD")))[:draw(st.integers(1, 3))]
    expression = " ".join(
        f"{kind} " + ", ".join(action(kind) for _ in range(draw(st.integers(1, 3))))
        for kind in kinds)
    # The values the expression names (and now and then one it does not: moto refuses it)
    used = [p for p in _PLACEHOLDERS if p in expression]
    if draw(st.integers(0, 9)) == 0:
        used.append(":unused")
    def item() -> dict[str, Any]:
        held = {name: draw(st.sampled_from(_VALUES)) for name in
                draw(st.lists(st.sampled_from(("a", "b", "c", "n", "s", "status")),
                              max_size=6))}
        if draw(st.booleans()):  # the index's key: a string, as the table defines it
            held["g"] = {"S": "indexed"}
        return held

    calls = [{"item": item(), "values": {p: draw(st.sampled_from(_VALUES)) for p in used}}
             for _ in range(3)]
    return {"expression": expression, "names": names, "calls": calls}


def _call(case: dict[str, Any], n: int) -> dict[str, Any]:
    params: dict[str, Any] = {"TableName": "t", "UpdateExpression": case["expression"]}
    if case["names"]:
        params["ExpressionAttributeNames"] = case["names"]
    if case["calls"][n]["values"]:
        params["ExpressionAttributeValues"] = case["calls"][n]["values"]
    return params


def _answers(cases: list[dict[str, Any]], *patches: Callable[[], Callable[[], None]]) -> list[Any]:
    """Each case's three calls, each on its own item: an UpdateItem (each kind of return
    value in turn) or a transaction's update; every answer, error and item after."""
    from botocore.exceptions import ClientError

    got: list[Any] = []
    with moto_table(*patches, indexes={"by_g": ("g",)}) as ddb:
        for number, case in enumerate(cases):
            for n in range(3):
                key = {"pk": {"S": f"k{number}"}}
                ddb.put_item(TableName="t", Item={**key, **case["calls"][n]["item"]})
                params = {**_call(case, n), "Key": key}
                try:
                    if (number + n) % 3 == 2:
                        del params["TableName"]
                        got.append(ddb.transact_write_items(TransactItems=[
                            {"Update": {"TableName": "t", **params}}])["ResponseMetadata"]
                            ["HTTPStatusCode"])
                    else:
                        returned = ("ALL_NEW", "NONE", "ALL_OLD", "UPDATED_OLD",
                                    "UPDATED_NEW")[(number + n) % 5]
                        got.append(ddb.update_item(**params, ReturnValues=returned)
                                   .get("Attributes"))
                except ClientError as exc:
                    got.append(exc.response["Error"])
                got.append(ddb.get_item(TableName="t", Key=key).get("Item"))
    return got


def _planned(run: Callable[[], list[Any]]) -> tuple[list[Any], list[Any]]:
    """What ``run`` answers, and the writes applied from a plan while it ran."""
    from fanout.local.moto import updates

    applied: list[Any] = []
    apply = updates._apply

    def counted(item: Any, writes: Any) -> None:
        applied.append(writes)
        apply(item, writes)

    updates._apply = counted  # type: ignore[assignment]
    try:
        return run(), applied
    finally:
        updates._apply = apply  # type: ignore[assignment]


_RUN_S_SHAPES = {
    "expression": "SET #p0 = :v0, s = if_not_exists(s, :v1), c = a REMOVE b ADD n :v2",
    "names": {"#p0": "status"},
    "calls": [{"item": {"a": {"S": "x"}, "b": {"S": "y"}, "n": {"N": "1"}},
               "values": {":v0": {"S": "RUNNING"}, ":v1": {"N": "9"}, ":v2": {"N": "2"}}}] * 3}


def _three(expression: str, names: dict[str, str], *values: dict[str, Any]) -> dict[str, Any]:
    return {"expression": expression, "names": names,
            "calls": [{"item": {"b": {"S": "y"}}, "values": {":v0": v}} for v in values]}


#: An index key set right, then to a number, then empty; spelled as itself and as a
#: placeholder (which moto does not check against the table's definitions).
_KEY_MISTAKES = [_three("SET g = :v0", {}, {"S": "x"}, {"N": "1"}, {"S": ""}),
                 _three("SET #p0 = :v0", {"#p0": "g"}, {"S": "x"}, {"N": "1"}, {"S": ""})]


@given(cases=st.lists(_cases(), min_size=5, max_size=20))
@example(cases=[_RUN_S_SHAPES] * 5)
@example(cases=_KEY_MISTAKES * 3)
@settings(max_examples=25, deadline=None,
          phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_updates_applied_from_their_plan_answer_as_moto_s_walks(
        cases: list[dict[str, Any]]) -> None:
    # Given updates of the shapes a plan applies (SET of a value, of an attribute, of
    # if_not_exists; REMOVE; ADD) and their mistakes (key attributes, values not defined
    # or of the wrong type, empty index keys, attributes missing, maps and sets read or
    # added to, overlapping paths), each made three times with other items and values
    # (the run's own shapes first: the plan applies the second and third)
    from fanout.local.moto import speedups

    cases = [_RUN_S_SHAPES, *cases]
    # When each is made with the plan in place, and on moto as it comes
    ours, applied = _planned(lambda: _answers(
        cases, speedups.cached_traversal_maps, speedups.cached_update_expressions,
        speedups.uncopied_updates, speedups.planned_updates))
    theirs = _answers(cases)
    # Then every answer, every error and every item is the one moto's walks give
    assert ours == theirs
    # And the plan made the run's updates after the first, in moto's order (REMOVE before ADD)
    assert len(applied) >= 2
    assert [name for name, _ in applied[0]] == ["status", "s", "c", "b", "n"]


def _sized_answers(updates: list[tuple[str, dict[str, Any]]],
                   *patches: Callable[[], Callable[[], None]]) -> list[Any]:
    from botocore.exceptions import ClientError

    from fanout.local.moto.limits import DYNAMODB_ITEM_BYTES

    got: list[Any] = []
    with moto_table(*patches) as ddb:
        for number, (expression, values) in enumerate(updates):
            key = {"pk": {"S": f"k{number}"}}
            # An item 100 bytes short of the limit: "pk" and its value, "zz" and its
            # value, "x" and 3 bytes, "y" and 1
            pad = DYNAMODB_ITEM_BYTES - 100 - (2 + len(key["pk"]["S"])) - 2 - (1 + 3) - (1 + 1)
            item = {**key, "zz": {"S": "p" * pad}, "x": {"S": "xxx"}, "y": {"S": "y"}}
            for _ in range(3):  # the first by moto's walks, then from the plan
                ddb.put_item(TableName="t", Item=item)
                try:
                    ddb.update_item(TableName="t", Key=key, UpdateExpression=expression,
                                    ExpressionAttributeValues=values)
                    got.append("updated")
                except ClientError as exc:
                    got.append(exc.response["Error"])
                stored = ddb.get_item(TableName="t", Key=key)["Item"]
                got.append({name: value for name, value in stored.items() if name != "zz"})
    return got


def test_an_update_from_its_plan_is_weighed_as_each_of_its_sets_is_by_moto() -> None:
    # Given an item 100 bytes short of DynamoDB's 400 KB, and updates that grow it
    from fanout.local.moto import limits, speedups

    big, small, one = {"S": "z" * 120}, {"S": "z" * 20}, {"N": "1"}
    updates = [
        ("SET a = :big", {":big": big}),                       # over at its one set
        ("SET a = :small, b = :big", {":small": small, ":big": big}),  # over at the second
        ("SET x = :v", {":v": {"S": "z" * 103}}),              # x replaced: 100 bytes more
        ("REMOVE zz SET a = :big", {":big": big}),             # room made first
        ("SET a = :big REMOVE zz", {":big": big}),             # moto sets first: refused
        ("SET a = :small ADD n :one", {":small": small, ":one": one}),  # both fit
        ("SET y = :v", {":v": {"S": "y" * 101}}),              # exactly at the limit
        ("SET y = :w", {":w": {"S": "y" * 102}}),              # a byte over it
    ]
    # When each is made with the limit in place, from its plan and by moto's walks
    ours, applied = _planned(lambda: _sized_answers(
        updates, limits.dynamodb_item_size, speedups.cached_update_expressions,
        speedups.uncopied_updates, speedups.planned_updates))
    theirs = _sized_answers(updates, limits.dynamodb_item_size)
    # Then the same updates are refused with the same error, leaving the same item
    assert ours == theirs
    assert len(applied) == 2 * len(updates)
    refused = [answer["Message"] for answer in theirs if isinstance(answer, dict)
               and "Message" in answer]
    assert len(refused) == 4 * 3
    assert all("exceeded the maximum allowed size" in message for message in refused)


def _transactions(*patches: Callable[[], Callable[[], None]]) -> list[Any]:
    from botocore.exceptions import ClientError

    key = {"pk": {"S": "a"}}
    put = {"TableName": "t", "Item": {**key, "v": {"N": "1"}},
           "ConditionExpression": "attribute_not_exists(pk)"}
    update = {"TableName": "t", "Key": {"pk": {"S": "b"}},
              "UpdateExpression": "SET v = :v", "ConditionExpression": "v = :old",
              "ExpressionAttributeValues": {":v": {"N": "2"}, ":old": {"N": "1"}}}
    failing = {**update, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("put_item", {"TableName": "t", "Item": {"pk": {"S": "b"}, "v": {"N": "1"}}}),
        ("transact_write_items", {"TransactItems": [{"Put": put}, {"Update": update}]}),
        # the same again: the Put's item exists now, the Update's holds 2
        ("transact_write_items", {"TransactItems": [{"Put": put}, {"Update": failing}]}),
        ("transact_write_items", {"TransactItems": [{"Update": failing}]}),
        # alone, outside a transaction, each condition judged as ever
        ("put_item", put), ("update_item", update),
        ("update_item", {**failing, "ExpressionAttributeValues": {
            ":v": {"N": "3"}, ":old": {"N": "2"}}}),
        ("put_item", {**put, "Item": {"pk": {"S": "c"}}}),
    ]
    got: list[Any] = []
    with moto_table(*patches) as ddb:
        for _ in range(2):  # the second time from the plan
            for operation, params in calls:
                try:
                    answer = getattr(ddb, operation)(**params)
                    got.append({k: v for k, v in answer.items() if k != "ResponseMetadata"})
                except ClientError as exc:
                    got.append((exc.response["Error"],
                                exc.response.get("CancellationReasons")))
                got.append(ddb.scan(TableName="t")["Items"])
            for name in ("a", "b", "c"):
                ddb.delete_item(TableName="t", Key={"pk": {"S": name}})
    return got


def test_a_transaction_s_writes_judged_once_answer_as_moto_s() -> None:
    # Given transactions whose Put and Update conditions hold, then do not (one asking
    # for the item it failed on), and the same writes made alone
    from moto.dynamodb import comparisons

    from fanout.local.moto import speedups

    parses: list[str] = []
    parse = comparisons.ConditionExpressionParser.parse

    def counted(self: Any) -> Any:
        parses.append(self.condition_expression)
        return parse(self)

    # When each is made with the conditions judged once, and on moto as it comes
    comparisons.ConditionExpressionParser.parse = counted  # type: ignore[method-assign]
    try:
        ours = _transactions(speedups.cached_update_expressions, speedups.planned_updates,
                             speedups.conditions_judged_once)
        judged_once = len(parses)
        parses.clear()
        theirs = _transactions()
    finally:
        comparisons.ConditionExpressionParser.parse = parse  # type: ignore[method-assign]
    # Then every answer, every cancellation reason and every item is moto's own
    assert ours == theirs
    # And fewer conditions were parsed: a transaction's writes were judged once
    assert judged_once < len(parses)
