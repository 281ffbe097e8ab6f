"""Closing an attempt and answering its token: shared by Record, Reconcile, Finalize, Abort.

The attempt's result and the answer owed are written first (one transaction with the
item and the run's counters), the token is answered after. If the answer is lost (a
crash in between), the next event or Reconcile finds the attempt closed but unanswered
and answers it then: write once, answer at least once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fanout.aws.stepfunctions import TaskCallbacks
from fanout.outputs import list_outputs, output_location
from fanout.policy import Capacity, RetryPolicy
from fanout.records.model import AttemptRecord, RunRecord, Settlement
from fanout.records.store import RecordsStore
from fanout.runtime.classify import Decision, Stop, StopClass, decide, describe
from fanout.runtime.clock import parse

log = logging.getLogger(__name__)
#: (run id, item index) -> what the item wrote (its listing's record form), or None.
Outputs = Callable[[str, int], dict[str, Any] | None]


def outputs_under(root: str, s3: Any = None) -> Outputs:
    """What an ending item wrote under its location in ``root`` (the functions'
    ``FANOUT_OUTPUTS``). A listing that fails is recorded partial, never in the way of
    settling the item: the item's ending matters more than the list of its files."""
    def listed(run_id: str, index: int) -> dict[str, Any] | None:
        location = output_location(root, run_id, index)
        try:
            return list_outputs(location, s3=s3).to_json()
        except Exception as exc:  # botocore's AccessDenied, throttling, a network error
            log.warning("could not list the outputs of %s item %s: %s", run_id, index, exc)
            return {"location": location, "entries": [], "count": 0, "bytes": 0,
                    "partial": True}
    return listed



def policy_of(run: RunRecord) -> tuple[RetryPolicy, Capacity]:
    settings = run.settings
    return (RetryPolicy.model_validate(settings.get("retry", {})),
            Capacity(settings.get("capacity", Capacity.FARGATE.value)))


def settle(store: RecordsStore, callbacks: TaskCallbacks, run: RunRecord,
           attempt: AttemptRecord, stop: Stop, *, stopped_at: str,
           started_at: str | None = None, version: int | None = None,
           log_stream: str | None = None, decision: Decision | None = None,
           log_tail: list[str] | None = None, image_digest: str | None = None,
           outputs: Outputs | None = None) -> str:
    """Settle an open attempt by the run's policy; returns what happened (for logs/tests).

    The attempt (and a failed item) carries the stop in a user's words and ``log_tail``;
    an item that ends carries what it wrote, as ``outputs`` lists it.
    """
    policy, capacity = policy_of(run)
    decision = decision or decide(stop, policy, attempt.attempt, capacity, attempt.capacity)
    begun = started_at or attempt.started_at
    duration = None
    if begun:
        duration = max(0.0, (parse(stopped_at) - parse(begun)).total_seconds())
    owed = decision.answer({})
    if owed["outcome"] == "success":
        # The success output is rebuilt from the settled attempt when it is given
        # (:func:`output_of`): storing it would repeat the record's own fields, and every
        # later write of the attempt pays for its size.
        del owed["output"]
    settlement = Settlement(
        status=decision.item_status or "RETRY",
        item_status=decision.item_status,  # type: ignore[arg-type]
        stop_class=stop.stop_class.value,
        stopped_at=stopped_at,
        answer=owed,
        exit_code=stop.exit_code,
        stop_code=stop.stop_code,
        stopped_reason=stop.reason or None,
        started_at=begun,
        duration_seconds=duration,
        log_stream=log_stream,
        event_version=version,
        on_demand=decision.on_demand,
        reason=describe(stop, timeout_seconds=run.settings.get("timeout_seconds")),
        log_tail=log_tail if stop.stop_class is not StopClass.SUCCEEDED else None,
        image_digest=image_digest,
        outputs=outputs(attempt.run_id, attempt.index)
        if outputs is not None and decision.item_status is not None else None,
    )
    if store.settle_attempt(attempt, settlement):
        fresh = store.get_attempt(attempt.run_id, attempt.index, attempt.attempt)
        if fresh is not None:
            answer(store, callbacks, fresh)
        return decision.outcome
    return heal(store, callbacks, attempt, version)


def heal(store: RecordsStore, callbacks: TaskCallbacks, attempt: AttemptRecord,
         version: int | None) -> str:
    """The attempt was settled before: answer it if that answer was never given."""
    current = store.get_attempt(attempt.run_id, attempt.index, attempt.attempt)
    if current is None or current.is_open:
        return "ignored"
    if version is not None and current.event_version is not None \
            and version < current.event_version:
        return "stale"
    if current.answered or current.answer is None:
        return "duplicate"
    answer(store, callbacks, current)
    return "healed"


def output_of(attempt: AttemptRecord) -> dict[str, Any]:
    """What a settled attempt answers its token with on success (the child's output)."""
    return {"run_id": attempt.run_id, "index": attempt.index, "attempt": attempt.attempt,
            "status": attempt.status, "exit_code": attempt.exit_code,
            "task_arn": attempt.task_arn, "class": attempt.stop_class}


def answer(store: RecordsStore, callbacks: TaskCallbacks, attempt: AttemptRecord) -> None:
    reply: dict[str, Any] = attempt.answer or {}
    if reply.get("outcome") == "success":
        callbacks.succeed(attempt.task_token, reply.get("output") or output_of(attempt))
    elif reply.get("outcome") in ("retry", "fail"):
        callbacks.fail(attempt.task_token, str(reply["error"]), str(reply.get("cause", "")))
    else:  # settled without an answer owed (the Lambda that raised was the answer)
        pass
    store.mark_answered(attempt.run_id, attempt.index, attempt.attempt)


def final_stop(kind: StopClass, reason: str, exit_code: int | None = None) -> Stop:
    return Stop(kind, exit_code, None, reason)
