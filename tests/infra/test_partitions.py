"""The stack in every partition: the Powertools layer per partition and region, a layer of
one's own or one the stack publishes where there is no public one, and a clear failure
where the config says neither."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

from fanout.config import PowertoolsConfig
from fanout.errors import ConfigError
from fanout.local.template import resources
from infra.powertools import COMMERCIAL, PUBLIC_LAYERS, Powertools, public_layer_arn
from tests.infra.conftest import REPO, repo_context, synthesize
from tests.infra.test_synth import cli_env

CHINA_LAYER = "arn:aws-cn:lambda:cn-north-1:123456789012:layer:powertools-python312-arm64:4"


def layer_of(region: str | None, config: PowertoolsConfig, **kwargs: Any) -> dict[str, Any]:
    """The template of a bare stack (bound to ``region``) holding only the Powertools layer,
    with a function using it."""
    from aws_cdk import aws_lambda as lambda_

    app = App()
    stack = Stack(app, "S", env=Environment(region=region) if region else None)
    made = Powertools(stack, "Powertools", config=config, **kwargs)
    lambda_.Function(stack, "F", runtime=lambda_.Runtime.PYTHON_3_12,
                     handler="index.handler", code=lambda_.Code.from_inline("x = 1"),
                     layers=[made.layer])
    return Template.from_stack(stack).to_json()


def layers(template: dict[str, Any]) -> list[Any]:
    (function,) = resources(template, "AWS::Lambda::Function").values()
    found: list[Any] = function["Properties"]["Layers"]
    return found


@pytest.mark.parametrize("region,partition,account", [
    ("eu-west-1", "aws", COMMERCIAL),
    ("cn-north-1", "aws-cn", "498634801083"),
    ("us-gov-west-1", "aws-us-gov", "165093116878"),
    ("us-gov-east-1", "aws-us-gov", "165087284144"),
])
def test_the_public_layer_is_the_one_of_the_stacks_partition_and_region(
        region: str, partition: str, account: str) -> None:
    # When a stack bound to the region takes the public layer (version from the config)
    template = layer_of(region, PowertoolsConfig(layer_version=27))
    # Then it names the layer its partition's publisher has in that region
    assert layers(template) == [
        f"arn:{partition}:lambda:{region}:{account}:layer:"
        "AWSLambdaPowertoolsPythonV3-python312-arm64:27"
    ]


def test_the_commercial_publisher_is_named_only_in_the_commercial_partition() -> None:
    for region, (partition, account) in PUBLIC_LAYERS.items():
        assert (account == COMMERCIAL) == (partition == "aws"), region
        arn = public_layer_arn(region, 27)
        assert arn is not None and arn.startswith(f"arn:{partition}:lambda:{region}:{account}:")


def test_a_region_free_template_looks_the_layer_up_by_region_at_deploy() -> None:
    template = layer_of(None, PowertoolsConfig())
    assert layers(template) == [
        {"Fn::FindInMap": ["PowertoolsLayer", {"Ref": "AWS::Region"}, "arn"]}
    ]
    mapping = template["Mappings"]["PowertoolsLayer"]
    assert set(mapping) == set(PUBLIC_LAYERS)
    assert mapping["cn-north-1"]["arn"] == public_layer_arn("cn-north-1", 27)


def test_a_layer_of_ones_own_is_used_in_any_region() -> None:
    template = layer_of("cn-northwest-1", PowertoolsConfig(layer_arn=CHINA_LAYER))
    assert layers(template) == [CHINA_LAYER]


def test_bundle_publishes_a_layer_from_the_prepared_folder(tmp_path: Path) -> None:
    # Given what `make powertools-layer` prepares (python/ inside)
    (tmp_path / "python" / "aws_lambda_powertools").mkdir(parents=True)
    (tmp_path / "python" / "aws_lambda_powertools" / "__init__.py").write_text("")
    # When a stack in a region without the public layer bundles it
    template = layer_of("cn-northwest-1", PowertoolsConfig(bundle=True), bundle_dir=tmp_path)
    # Then the stack publishes its own layer, for python3.12 on arm64, and uses it
    (lid, layer), = resources(template, "AWS::Lambda::LayerVersion").items()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layers(template) == [{"Ref": lid}]


def test_bundle_without_the_prepared_folder_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make powertools-layer"):
        layer_of("cn-northwest-1", PowertoolsConfig(bundle=True), bundle_dir=tmp_path)


def test_cn_north_1_synthesizes_with_a_layer_of_ones_own(tmp_path: Path) -> None:
    # Given the repository's config for cn-north-1, naming a layer of the account
    context = copy.deepcopy(repo_context())
    context["region"] = "cn-north-1"
    context["powertools"] = {"layer_arn": CHINA_LAYER}
    # When the whole app is synthesized (cdk-nag attached: any finding fails it)
    _, template = synthesize(context, tmp_path)
    # Then every function uses that layer, and nothing names the commercial publisher
    functions = resources(template, "AWS::Lambda::Function").values()
    assert functions
    for function in functions:
        if function["Properties"].get("Runtime") == "python3.12":
            assert function["Properties"]["Layers"] == [CHINA_LAYER]
    text = json.dumps(template)
    assert COMMERCIAL not in text
    assert '"arn:aws:' not in text  # every other ARN takes its partition from AWS::Partition


def test_a_region_without_the_layer_fails_synth_saying_what_to_choose(tmp_path: Path) -> None:
    # Given the repository's config for a region the public layer is not published in
    context = copy.deepcopy(repo_context())
    context["region"] = "cn-northwest-1"
    assert "cn-northwest-1" not in PUBLIC_LAYERS
    # When the app is run as the CDK CLI runs it
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "app.py"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env=cli_env(CDK_CONTEXT_JSON=json.dumps({"fanout": context}), CDK_OUTDIR=str(tmp_path)),
    )
    # Then it fails with one line naming the region and both ways out
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "cn-northwest-1" in line
    assert "powertools.layer_arn" in line and "powertools.bundle" in line
    assert "Traceback" not in done.stderr
