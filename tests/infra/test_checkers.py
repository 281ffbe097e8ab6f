"""Independent checkers on the synthesized template: cfn-lint and asl-validator.

cfn-lint silently skips a state machine whose ``DefinitionString`` is built with
``Fn::Join`` (as CDK writes ours), so the definition is resolved first, with an ARN-shaped
placeholder for every reference, and inlined as a ``Definition`` object; then cfn-lint's
E3601 checks it against the States language. asl-validator checks the same definition.
Each checker is also shown a broken definition, so that a checker that checks nothing
fails here rather than passing silently.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanout.local.template import resources, run_state_machine, state_machine_definition
from tests.infra.conftest import REPO

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
REGION = "us-east-1"
ACCOUNT = "123456789012"

#: cfn-lint findings below Error that this template keeps, each with its reason.
KEPT_WARNINGS: dict[str, str] = {
    "W3005": "CDK adds an explicit DependsOn from each function to its role's default "
    "policy, which a GetAtt of the role already implies; CDK's own output, harmless",
}

#: The ARN service and resource type of a placeholder, by CloudFormation type.
ARN_SHAPES: dict[str, tuple[str, str]] = {
    "AWS::Lambda::Function": ("lambda", "function:"),
    "AWS::S3::Bucket": ("s3", ""),
    "AWS::SNS::Topic": ("sns", ""),
    "AWS::SQS::Queue": ("sqs", ""),
    "AWS::DynamoDB::Table": ("dynamodb", "table/"),
    "AWS::ECS::Cluster": ("ecs", "cluster/"),
    "AWS::IAM::Role": ("iam", "role/"),
    "AWS::StepFunctions::StateMachine": ("states", "stateMachine:"),
}


def placeholder_refs(template: dict[str, Any]) -> dict[str, str]:
    """An ARN-shaped value for every ``Fn::GetAtt <id>.Arn`` and a name for every ``Ref``."""
    refs: dict[str, str] = {}
    for lid, resource in template["Resources"].items():
        service, prefix = ARN_SHAPES.get(resource["Type"], ("cloudformation", "resource/"))
        name = lid.lower()
        region, account = ("", "") if service in ("s3", "iam") else (REGION, ACCOUNT)
        refs[f"{lid}.Arn"] = f"arn:aws:{service}:{region}:{account}:{prefix}{name}"
        refs[lid] = name
    return refs


def lintable(template: dict[str, Any]) -> dict[str, Any]:
    """The template with each state machine's definition resolved and inlined."""
    out = copy.deepcopy(template)
    refs = placeholder_refs(template)
    for lid, machine in resources(out, "AWS::StepFunctions::StateMachine").items():
        properties = machine["Properties"]
        properties["Definition"] = state_machine_definition(template, refs, lid)
        del properties["DefinitionString"]
    return out


def cfn_lint(template: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    assert CFN_LINT.exists(), f"no {CFN_LINT}: `make setup` installs requirements.txt"
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--regions", REGION, "--", str(path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    # Exit codes are a bit mask of the levels found (2 error, 4 warning, 8 info); 1 = crash.
    assert result.returncode != 1, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return findings


def asl_validate(definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert ASL_VALIDATOR.exists(), f"no {ASL_VALIDATOR}: `make setup` runs npm ci"
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def broken(definition: dict[str, Any]) -> dict[str, Any]:
    """``definition`` with the Launch task, inside the Distributed Map, missing its
    ``Resource``: an error only a checker that reads nested states finds."""
    out = copy.deepcopy(definition)
    del out["States"]["FanOut"]["ItemProcessor"]["States"]["Launch"]["Resource"]
    return out


def summary(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['Rule']['Id']} {f['Level']}: {f['Message']}" for f in findings]


@pytest.fixture(scope="module")
def inlined(template: dict[str, Any]) -> dict[str, Any]:
    return lintable(template)


@pytest.fixture(scope="module")
def definition(inlined: dict[str, Any]) -> dict[str, Any]:
    machine = inlined["Resources"][run_state_machine(inlined)]
    inline: dict[str, Any] = machine["Properties"]["Definition"]
    return inline


@pytest.fixture(scope="module")
def pipeline_definition(inlined: dict[str, Any]) -> dict[str, Any]:
    (machine,) = [m for lid, m in resources(inlined, "AWS::StepFunctions::StateMachine").items()
                  if lid.startswith("Pipelines")]
    inline: dict[str, Any] = machine["Properties"]["Definition"]
    return inline


def test_the_definition_is_inlined_whole_with_arn_placeholders(
        definition: dict[str, Any]) -> None:
    # Then the linted definition is the real one, every reference an ARN-shaped value
    assert definition["StartAt"] == "Expand"
    launch = definition["States"]["FanOut"]["ItemProcessor"]["States"]["Launch"]
    function = launch["Parameters"]["FunctionName"]
    assert function.startswith(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:")
    assert "<" not in json.dumps(definition)


def test_cfn_lint_finds_no_error_and_only_the_kept_warnings(
        inlined: dict[str, Any], tmp_path: Path) -> None:
    # When cfn-lint reads the template with the definition inlined
    findings = cfn_lint(inlined, tmp_path)
    # Then it finds no error, and no warning but those kept with a reason
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, summary(errors)
    unexplained = [f for f in findings if f["Rule"]["Id"] not in KEPT_WARNINGS]
    assert not unexplained, summary(unexplained)


def test_cfn_lint_checks_the_inlined_definition(
        inlined: dict[str, Any], definition: dict[str, Any], tmp_path: Path) -> None:
    # Given only the state machine, its definition broken
    lid = run_state_machine(inlined)
    machine = copy.deepcopy(inlined["Resources"][lid])
    machine["Properties"]["Definition"] = broken(definition)
    machine["Properties"]["RoleArn"] = f"arn:aws:iam::{ACCOUNT}:role/run"
    machine["Properties"].pop("LoggingConfiguration", None)
    machine.pop("DependsOn", None)
    small = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {lid: machine}}
    # When cfn-lint reads it, Then E3601 reports the definition's error
    findings = cfn_lint(small, tmp_path)
    assert any(f["Rule"]["Id"] == "E3601" and "'Resource' is a required property"
               in f["Message"] for f in findings), summary(findings)


def test_asl_validator_finds_no_error(definition: dict[str, Any], tmp_path: Path) -> None:
    result = asl_validate(definition, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_rejects_a_broken_definition(
        definition: dict[str, Any], tmp_path: Path) -> None:
    result = asl_validate(broken(definition), tmp_path)
    assert result.returncode != 0
    assert "/States/FanOut/ItemProcessor/States/Launch is invalid" in result.stderr, (
        result.stdout + result.stderr)


def test_asl_validator_finds_no_error_in_the_pipeline_state_machine(
        pipeline_definition: dict[str, Any], tmp_path: Path) -> None:
    # Given the synthesized pipeline loop (Decide -> AwaitStep -> Decide)
    assert pipeline_definition["StartAt"] == "Decide"
    assert pipeline_definition["States"]["AwaitStep"]["TimeoutSecondsPath"] == "$.wait_seconds"
    # Then asl-validator finds it valid, and finds a broken copy invalid
    result = asl_validate(pipeline_definition, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    broken_loop = copy.deepcopy(pipeline_definition)
    broken_loop["States"]["AwaitStep"]["Next"] = "Nowhere"
    assert asl_validate(broken_loop, tmp_path).returncode != 0
