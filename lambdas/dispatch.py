"""Dispatch: launch the items waiting in the launch queue, at the pace Fargate grants."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools

#: Seconds kept back from the function's timeout to finish the RunTask calls in flight.
MARGIN_SECONDS = 20


@powertools("dispatch")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.metrics_names import LAUNCH_THROTTLED, LAUNCHED
    from fanout.runtime import context as ctx
    from fanout.runtime.dispatch import Dispatcher
    from fanout.runtime.observe import count
    from fanout.settings import DispatchEnv

    env = ctx.env(DispatchEnv)
    budget = max(context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS, 5)
    result = Dispatcher(env=env, store=ctx.records(env.fanout_table),
                        gate=ctx.gate(env.fanout_table, env.fanout_dispatcher),
                        launcher=ctx.launcher(env.fanout_cluster),
                        callbacks=ctx.callbacks()).run(budget)
    count(LAUNCHED, int(result.get("launched", 0)))
    count(LAUNCH_THROTTLED, int(result.get("throttled", 0)) + int(result.get("capacity", 0)))
    return result
