"""StepEnded: a run (maybe a pipeline's step) or a pipeline execution ended."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("step_ended")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.runtime import context as ctx
    from fanout.runtime.observe import logger
    from fanout.runtime.step_ended import ExecutionEnded, step_ended
    from fanout.settings import StepEndedEnv

    env = ctx.env(StepEndedEnv)
    result = step_ended(ExecutionEnded.model_validate(event),
                        pipeline_machine=env.fanout_pipeline_machine,
                        pipelines=ctx.pipelines(env.fanout_table),
                        runs=ctx.records(env.fanout_table),
                        executions=ctx.executions(env.fanout_run_machine),
                        callbacks=ctx.callbacks())
    logger.info("execution ended", extra=result)
    return result
