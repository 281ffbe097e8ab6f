"""fanout.local.template: reading a synthesized template back, intrinsics resolved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fanout.local.template import (
    UnresolvedToken,
    load_template,
    logical_id,
    resolve,
    state_machine_definition,
)

TEMPLATE = {
    "Resources": {
        "ExpandFn1234": {
            "Type": "AWS::Lambda::Function",
            "Metadata": {"aws:cdk:path": "Fanout/Functions/Expand/Resource"},
        },
        "Table99": {"Type": "AWS::DynamoDB::Table",
                    "Metadata": {"aws:cdk:path": "Fanout/Records/Table/Resource"}},
        "Machine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "DefinitionString": {
                    "Fn::Join": ["", [
                        '{"StartAt":"Expand","States":{"Expand":{"Type":"Task","Resource":"arn:',
                        {"Ref": "AWS::Partition"},
                        ':states:::lambda:invoke","Parameters":{"FunctionName":"',
                        {"Fn::GetAtt": ["ExpandFn1234", "Arn"]},
                        '","Payload":{"table":"',
                        {"Ref": "Table99"},
                        '"}},"End":true}}}',
                    ]]
                }
            },
        },
    }
}


def test_definition_resolves_tokens_from_refs() -> None:
    # Given the values each logical id stands for
    refs = {"ExpandFn1234.Arn": "arn:aws:lambda:eu-west-1:1:function:x", "Table99": "runs"}

    # When the definition is read back
    definition = state_machine_definition(TEMPLATE, refs)

    # Then the tokens are replaced, and the pseudo parameter has its default
    task = definition["States"]["Expand"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == "arn:aws:lambda:eu-west-1:1:function:x"
    assert task["Parameters"]["Payload"] == {"table": "runs"}


def test_definition_without_refs_uses_placeholders() -> None:
    definition = state_machine_definition(TEMPLATE)

    params = definition["States"]["Expand"]["Parameters"]
    assert params["FunctionName"] == "<ExpandFn1234>"
    assert params["Payload"]["table"] == "<Table99>"


def test_missing_ref_is_named() -> None:
    with pytest.raises(UnresolvedToken, match=r"ExpandFn1234\.Arn"):
        state_machine_definition(TEMPLATE, {"Table99": "runs"})


def test_getatt_falls_back_to_logical_id_and_select_works() -> None:
    value = {"Fn::Select": [1, [{"Ref": "A"}, {"Fn::GetAtt": ["B", "Arn"]}]]}

    assert resolve(value, {"A": "a", "B": "b-arn"}) == "b-arn"


def test_logical_id_by_construct_path() -> None:
    assert logical_id(TEMPLATE, "Functions/Expand/Resource") == "ExpandFn1234"
    assert logical_id(TEMPLATE, "Fanout/Records/Table/Resource") == "Table99"
    with pytest.raises(KeyError):
        logical_id(TEMPLATE, "Functions/Nope/Resource")


def test_load_template_reads_cdk_out(tmp_path: Path) -> None:
    (tmp_path / "Fanout.template.json").write_text(json.dumps(TEMPLATE))

    assert load_template(tmp_path, "Fanout") == TEMPLATE
