"""Finalize: settle every item, decide the run's status, notify, return the summary.

A large run takes several invocations: until ``done``, the state machine calls again
with the output (the cursor) as the outcome.
"""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("finalize")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.aws.clients import client
    from fanout.metrics_names import RUNS_FAILED, RUNS_SUCCEEDED
    from fanout.runtime import context as ctx
    from fanout.runtime.closing import Budget
    from fanout.runtime.finalize import FinalizeInput, finalize
    from fanout.runtime.notify import chat_of
    from fanout.runtime.observe import count
    from fanout.settings import FinalizeEnv

    env = ctx.env(FinalizeEnv)
    webhooks = env.fanout_webhooks
    chat = chat_of(webhooks, client("secretsmanager") if webhooks else None)
    result = finalize(FinalizeInput.model_validate(event), store=ctx.records(env.fanout_table),
                      launcher=ctx.launcher(env.fanout_cluster), callbacks=ctx.callbacks(),
                      sns=client("sns"), topic_arn=env.fanout_topic_arn, s3=client("s3"),
                      bucket=env.fanout_bucket, prices=env.prices(), budget=Budget.of(context),
                      chat=chat)
    if result["done"]:
        count(RUNS_SUCCEEDED if result["status"] == "SUCCEEDED" else RUNS_FAILED)
    return result
