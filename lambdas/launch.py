"""Launch: queue an item's attempt for the launch gate and keep the state machine's task token."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("launch")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.metrics_names import LAUNCH_THROTTLED
    from fanout.runtime import context as ctx
    from fanout.runtime import errors
    from fanout.runtime.launch import LaunchInput, launch
    from fanout.runtime.observe import count
    from fanout.settings import LaunchEnv

    env = ctx.env(LaunchEnv)
    try:
        return launch(LaunchInput.model_validate(event), store=ctx.records(env.fanout_table),
                      callbacks=ctx.callbacks(),
                      gate=ctx.gate(env.fanout_table, env.fanout_dispatcher))
    except errors.LaunchThrottled:
        count(LAUNCH_THROTTLED)
        raise
