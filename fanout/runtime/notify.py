"""The announcement of a run's ending: one SNS message per run, whatever ended it.

Finalize announces the runs it closes (SUCCEEDED, FAILED); Abort announces every other
ending (ABORTED, TIMED_OUT, a failed execution, and REJECTED: a bad spec fails the
execution, which reaches Abort too). Every message has the same shape. The run record says
when its ending was published: a retried Finalize or Abort, or the Abort that follows a
run Finalize failed, publishes nothing more (published, then marked: a crash in between
can repeat a message, never lose one). The same message goes to the webhooks of the config
(Slack, Microsoft Teams, generic); a webhook that fails is logged and counted
(``NotificationsFailed``), and the run's ending goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fanout.config import Webhook
from fanout.metrics_names import NOTIFICATIONS_FAILED
from fanout.names import console_url
from fanout.records.model import RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime.observe import count, logger
from fanout.runtime.webhooks import deliver, secret_url

if TYPE_CHECKING:
    from fanout.cost import RegionPrices

#: Failed items listed by index in the summary and the notification.
LISTED = 20
#: What the notification says of each failed item (its log tail is at most 20 lines, 4 KB).
ITEM_KEYS = ("index", "status", "exit_code", "params", "reason", "log_tail")


def message_of(run: RunRecord, failed_items: list[dict[str, Any]],
               cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """What is published for a finished run (and what its subscribers may rely on):
    ``cost`` is the run's estimate (docs/cost.md), null when it was not priced."""
    return {"run_id": run.run_id, "job": run.job, "status": run.status,
            "summary": run.summary or "", "totals": run.totals(),
            "failed_items": [_listed(item) for item in failed_items[:LISTED]],
            "cost": cost, "console_url": console_url(run.execution_arn)}


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    """A failed item as the message has it: why it failed and its last words included."""
    listed = {key: item.get(key) for key in ITEM_KEYS}
    listed["log_tail"] = list(listed["log_tail"] or [])
    return listed


#: What posts a message to chat: given the message, it never raises.
Chat = Callable[[dict[str, Any]], None]


def chat_of(webhooks: Sequence[Webhook], secrets: Any) -> Chat | None:
    """What posts a run's ending to ``webhooks`` (their URLs read from Secrets Manager with
    the ``secrets`` client); a failure is logged by webhook name, never URL, and counted."""
    if not webhooks:
        return None

    def post_all(message: dict[str, Any]) -> None:
        failures = deliver(message, webhooks, lambda webhook: secret_url(secrets, webhook))
        for failure in failures:
            logger.warning(f"run ending not posted: {failure}", extra={"run_id": message.get(
                "run_id")})
        count(NOTIFICATIONS_FAILED, len(failures))

    return post_all


def announce(store: RecordsStore, sns: Any, topic_arn: str, run: RunRecord,
             failed_items: list[dict[str, Any]], prices: RegionPrices | None = None,
             chat: Chat | None = None) -> bool:
    """Publish the ending of ``run`` (already read back after it finished), once; priced
    with ``prices`` (its attempts read then: only when a message goes out); and post it to
    ``chat``."""
    if not topic_arn or sns is None or run.status == "RUNNING" or run.notified:
        return False
    cost = None
    if prices is not None and run.status != "REJECTED":
        from fanout.records.views import run_cost

        cost = run_cost(run, store.attempts(run.run_id), prices)
    message = message_of(run, failed_items, cost)
    sns.publish(TopicArn=topic_arn, Subject=f"fanout run {run.run_id} {run.status}"[:100],
                Message=json.dumps(message, indent=2, default=str))
    if chat is not None:
        chat(message)
    store.mark_notified(run.run_id)
    return True
