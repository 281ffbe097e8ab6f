"""The CDK app: read the config once, build the stack, check it with cdk-nag."""

from __future__ import annotations

import sys

from aws_cdk import App

from fanout.config import CONTEXT_KEY, load_config
from fanout.errors import ConfigError
from fanout.pipelines.validate import check_pipelines
from fanout.spec.validate import check_schedule_specs
from infra import nag
from infra.functions import EnvTooLarge
from infra.stack import FanoutStack


def main() -> None:
    app = App()
    try:
        config = load_config(app.node.try_get_context(CONTEXT_KEY))
        check_schedule_specs(config)
        check_pipelines(config)
        stack = FanoutStack(app, config.stack_name, config=config)
    except (ConfigError, EnvTooLarge) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    nag.acknowledge(stack)
    nag.attach(app)
    app.synth()


if __name__ == "__main__":
    main()
