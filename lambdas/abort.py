"""Abort: a run's execution stopped, failed or timed out; stop its tasks, close the run."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("abort")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import json

    from fanout.aws.clients import client
    from fanout.runtime import context as ctx
    from fanout.runtime.abort import ExecutionStatusChange, abort
    from fanout.runtime.closing import Budget
    from fanout.runtime.notify import chat_of
    from fanout.settings import AbortEnv

    env = ctx.env(AbortEnv)
    webhooks = env.fanout_webhooks
    chat = chat_of(webhooks, client("secretsmanager") if webhooks else None)
    result = abort(ExecutionStatusChange.model_validate(event),
                   store=ctx.records(env.fanout_table),
                   launcher=ctx.launcher(env.fanout_cluster), callbacks=ctx.callbacks(),
                   sns=client("sns"), topic_arn=env.fanout_topic_arn, s3=client("s3"),
                   bucket=env.fanout_bucket, prices=env.prices(), limits=env.fanout_limits,
                   budget=Budget.of(context), chat=chat)
    if "next_event" in result:
        # The run is larger than one invocation closes: the next one goes on from the
        # cursor (asynchronous, so retried and dead-lettered as the first event was).
        client("lambda").invoke(FunctionName=context.invoked_function_arn,
                                InvocationType="Event",
                                Payload=json.dumps(result.pop("next_event")).encode())
    return result
