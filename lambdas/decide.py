"""Decide: the pipeline loop's step: skip, start and end a pipeline run's steps."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("decide")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.aws.clients import client
    from fanout.config import FanoutConfig
    from fanout.runtime import context as ctx
    from fanout.runtime.closing import Budget
    from fanout.runtime.pipeline import DecideInput, Decider
    from fanout.settings import DecideEnv

    env = ctx.env(DecideEnv)
    config = FanoutConfig(jobs=env.fanout_jobs, limits=env.fanout_limits)
    decider = Decider(pipelines=ctx.pipelines(env.fanout_table),
                      runs=ctx.records(env.fanout_table),
                      executions=ctx.executions(env.fanout_run_machine),
                      callbacks=ctx.callbacks(), s3=client("s3"), bucket=env.fanout_bucket,
                      config=config, named=env.fanout_pipelines, budget=Budget.of(context))
    return decider(DecideInput.model_validate(event))
