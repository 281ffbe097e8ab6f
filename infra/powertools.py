"""Where the functions get Powertools (and pydantic) from, in every partition.

The public layer is published by a different account in each partition, and only in some
regions: the table below is Powertools' own list (docs, "Lambda Layer": commercial
regions, "AWS China regions", "AWS GovCloud regions"). Elsewhere the config names a layer
(``powertools.layer_arn``) or the stack publishes one from ``build/powertools-layer``
(``powertools.bundle``, made by ``make powertools-layer``). docs/deploy.md says which.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, CfnMapping, Stack, Token
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from fanout.config import PowertoolsConfig
from fanout.errors import ConfigError, Problem

#: The runtime and architecture every function, and so the layer, is built for.
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python312-arm64"

#: The account that publishes the public layer in each partition.
COMMERCIAL = "017000801446"
#: Region -> (partition, publishing account) where the public layer exists.
PUBLIC_LAYERS: dict[str, tuple[str, str]] = {
    **{region: ("aws", COMMERCIAL) for region in (
        "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
        "ca-central-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
        "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
        "me-south-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    )},
    "cn-north-1": ("aws-cn", "498634801083"),
    "us-gov-east-1": ("aws-us-gov", "165087284144"),
    "us-gov-west-1": ("aws-us-gov", "165093116878"),
}

#: What ``make powertools-layer`` fills (``python/`` inside, as Lambda expects of a layer).
BUNDLE_DIR = Path(__file__).resolve().parent.parent / "build" / "powertools-layer"


def public_layer_arn(region: str, version: int) -> str | None:
    """The public layer's ARN in ``region``; None where it is not published."""
    if region not in PUBLIC_LAYERS:
        return None
    partition, account = PUBLIC_LAYERS[region]
    return f"arn:{partition}:lambda:{region}:{account}:layer:{LAYER_NAME}:{version}"


def no_layer_in(region: str) -> ConfigError:
    return ConfigError([Problem(
        "fanout.powertools",
        f"the public Powertools layer does not exist in {region}: set "
        f"powertools.layer_arn to a Powertools layer ({LAYER_NAME}) of your own, or "
        f"powertools.bundle to true to publish one with the stack "
        f"(run `make powertools-layer` first)",
    )])


class Powertools(Construct):
    """The Powertools layer of the functions (``layer``): the public one of the stack's
    region, the config's ``layer_arn``, or one published from ``bundle_dir``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PowertoolsConfig,
        bundle_dir: Path = BUNDLE_DIR,
    ) -> None:
        super().__init__(scope, id)
        region = Stack.of(self).region
        if config.layer_arn:
            self.layer = lambda_.LayerVersion.from_layer_version_arn(
                self, "Layer", config.layer_arn
            )
        elif config.bundle:
            if not (bundle_dir / "python").is_dir():
                raise ConfigError([Problem(
                    "fanout.powertools.bundle",
                    f"{bundle_dir}/python does not exist: run `make powertools-layer`",
                )])
            self.layer = lambda_.LayerVersion(
                self,
                "Layer",
                code=lambda_.Code.from_asset(str(bundle_dir)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description="Powertools for AWS Lambda (Python) and pydantic, for fanout",
            )
        elif Token.is_unresolved(region):
            # A template for any region: the ARN is looked up at deploy time. A region
            # without the layer fails the deploy naming this mapping ("PowertoolsLayer").
            self.layer = lambda_.LayerVersion.from_layer_version_arn(
                self, "Layer", self._mapped_arn(config.layer_version)
            )
        else:
            arn = public_layer_arn(region, config.layer_version)
            if arn is None:
                raise no_layer_in(region)
            self.layer = lambda_.LayerVersion.from_layer_version_arn(self, "Layer", arn)

    def _mapped_arn(self, version: int) -> str:
        mapping = CfnMapping(self, "PowertoolsLayer", mapping={
            region: {"arn": public_layer_arn(region, version)} for region in PUBLIC_LAYERS
        })
        mapping.override_logical_id("PowertoolsLayer")
        return mapping.find_in_map(Aws.REGION, "arn")
