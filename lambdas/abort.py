"""Abort: a run's execution stopped, failed or timed out; stop its tasks, close the run."""

from __future__ import annotations

from typing import Any

from fanout.runtime.observe import powertools


@powertools("abort")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from fanout.aws.clients import client
    from fanout.runtime import context as ctx
    from fanout.runtime.abort import ExecutionStatusChange, abort
    from fanout.runtime.notify import chat_of
    from fanout.settings import AbortEnv

    env = ctx.env(AbortEnv)
    webhooks = env.fanout_webhooks
    chat = chat_of(webhooks, client("secretsmanager") if webhooks else None)
    return abort(ExecutionStatusChange.model_validate(event),
                 store=ctx.records(env.fanout_table),
                 launcher=ctx.launcher(env.fanout_cluster), callbacks=ctx.callbacks(),
                 sns=client("sns"), topic_arn=env.fanout_topic_arn, s3=client("s3"),
                 bucket=env.fanout_bucket, prices=env.prices(), limits=env.fanout_limits,
                 chat=chat)
