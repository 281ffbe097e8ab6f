"""Reconcile (scheduled): settle attempts whose STOPPED event never came; stop late tasks."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("reconcile")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.metrics_names import ATTEMPTS_RECONCILED
    from fanout.runtime import context as ctx
    from fanout.runtime.observe import count
    from fanout.runtime.reconcile import reconcile
    from fanout.runtime.settle import outputs_under
    from fanout.settings import ReconcileEnv

    env = ctx.env(ReconcileEnv)
    counts = reconcile(store=ctx.records(env.fanout_table),
                       launcher=ctx.launcher(env.fanout_cluster), callbacks=ctx.callbacks(),
                       log_tail=ctx.log_tail(), log_groups=env.fanout_log_groups,
                       outputs=outputs_under(env.fanout_outputs))
    count(ATTEMPTS_RECONCILED, counts["settled"] + counts["timed_out"] + counts["lost"])
    # Items wait in the launch queue and no dispatcher runs (it died): wake one.
    gate = ctx.gate(env.fanout_table, env.fanout_dispatcher)
    counts["dispatcher_woken"] = int(gate.waiting() and gate.wake())
    return counts
