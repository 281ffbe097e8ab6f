"""Expand: validate and expand the run spec, write the manifest and the run record."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("expand")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.aws.clients import client
    from fanout.runtime import context as ctx
    from fanout.runtime.expand import ExpandInput, expand
    from fanout.settings import ExpandEnv

    env = ctx.env(ExpandEnv)
    output = expand(ExpandInput.model_validate(event), env=env,
                    store=ctx.records(env.fanout_table), s3=client("s3"))
    return output.model_dump()
