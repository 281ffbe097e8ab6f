"""AwaitStep: leave the pipeline loop's task token for StepEnded (or answer it now)."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("await_step")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.runtime import context as ctx
    from fanout.runtime.pipeline import AwaitInput, await_step
    from fanout.settings import AwaitStepEnv

    env = ctx.env(AwaitStepEnv)
    return await_step(AwaitInput.model_validate(event),
                      pipelines=ctx.pipelines(env.fanout_table), callbacks=ctx.callbacks())
