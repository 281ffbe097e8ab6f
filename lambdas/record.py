"""Record: an ECS task of fanout stopped; settle its attempt and answer the item's token."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("record")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.metrics_names import ITEMS_FAILED, ITEMS_SUCCEEDED
    from fanout.runtime import context as ctx
    from fanout.runtime.observe import count, logger
    from fanout.runtime.record import TaskStateChange, record_stop
    from fanout.runtime.settle import outputs_under
    from fanout.settings import RecordEnv

    env = ctx.env(RecordEnv)
    change = TaskStateChange.parse(event)
    result = record_stop(change.detail, store=ctx.records(env.fanout_table),
                         callbacks=ctx.callbacks(), log_tail=ctx.log_tail(),
                         log_groups=env.fanout_log_groups,
                         outputs=outputs_under(env.fanout_outputs))
    logger.info("task stopped", extra=result)
    count(ITEMS_SUCCEEDED, result.get("result") == "success")
    count(ITEMS_FAILED, result.get("result") == "fail")
    if result.get("slot") or result.get("requeued"):
        # A task of a job with max_running stopped: its waiting items may launch now.
        ctx.gate(env.fanout_table, env.fanout_dispatcher).wake(again=True)
    return result
