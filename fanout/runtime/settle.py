"""Closing an attempt and answering its token: shared by Record, Reconcile, Finalize, Abort.

The attempt's result and the answer owed are written first (one transaction with the
item and the run's counters), the token is answered after. If the answer is lost (a
crash in between), the next event or Reconcile finds the attempt closed but unanswered
and answers it then: write once, answer at least once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fanout.aws.stepfunctions import TaskCallbacks
from fanout.outputs import list_outputs, output_location
from fanout.policy import Capacity, RetryPolicy
from fanout.records.model import TERMINAL, AttemptRecord, ItemRecord, RunRecord, Settlement
from fanout.records.store import RecordsStore
from fanout.runtime import errors
from fanout.runtime.classify import Decision, Stop, StopClass, decide, describe
from fanout.runtime.clock import parse
from fanout.runtime.packing import batch_indexes, packing_of

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
    done = store.settle_attempt(attempt, settlement)
    if done is not None:
        answer(store, callbacks, done, run)
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


def answer(store: RecordsStore, callbacks: TaskCallbacks, attempt: AttemptRecord,
           run: RunRecord | None = None) -> None:
    """Answer the attempt's token as its settlement says (``run``: the attempt's run, when
    the caller has it; read otherwise)."""
    if attempt.batch is not None:  # the token is its batch child's: answered once for all
        run = run or store.get_run(attempt.run_id, totals=False)
        if run is not None:
            answer_batch_now(store, callbacks, run, attempt.batch, attempt.task_token)
        return
    reply: dict[str, Any] = attempt.answer or {}
    if reply.get("outcome") == "success":
        callbacks.succeed(attempt.task_token, reply.get("output") or output_of(attempt))
    elif reply.get("outcome") in ("retry", "fail"):
        callbacks.fail(attempt.task_token, str(reply["error"]), str(reply.get("cause", "")))
    else:  # settled without an answer owed (the Lambda that raised was the answer)
        pass
    store.mark_answered(attempt.run_id, attempt.index, attempt.attempt)


#: The error a batch child fails with, by the first of its items that did not succeed.
FINAL_ERRORS = {"FAILED": errors.ITEM_FAILED, "TIMED_OUT": errors.ITEM_TIMED_OUT,
                "ABORTED": errors.ITEM_ABORTED}
#: The longest cause SendTaskFailure takes (characters).
MAX_CAUSE = 32768


def answer_batch_now(store: RecordsStore, callbacks: TaskCallbacks, run: RunRecord, batch: int,
                     token: str) -> bool:
    """Answer a batch child's token once none of its items has an attempt open
    (docs/decisions/0020); returns whether it was answered (False: its turn goes on, and
    the settlement of its last open attempt answers it).

    - items that need another turn (a retry by their policy, or never begun): the child's
      ``Fanout.Retry``, cause ``{"pending": [indexes], "delay_seconds": d}``, ``d`` the
      shortest backoff of its retried items, for the child's Wait; its next Launch queues
      exactly the items not settled for good (read from their records, not from the cause,
      so a cause cut to fit SendTaskFailure's 32,768 characters loses nothing);
    - else success when every item of the batch SUCCEEDED, else the first failed item's
      error (``Fanout.ItemFailed``...) and how many did not succeed.

    Two settlements that end a turn at once may both answer: the second answer finds the
    token answered and changes nothing (TaskCallbacks returns False)."""
    k, _ = packing_of(run)
    indexes = batch_indexes(batch, k, run.total)
    # Last first, up to the first item still open: a task runs its items in index order,
    # so every settlement but a turn's last finds the batch's last item open in one read
    # (reading all K on each of K settlements made a batch cost K x K reads).
    read: dict[int, ItemRecord | None] = {}
    for index in reversed(indexes):
        item = store.get_item(run.run_id, index)
        if item is not None and item.open_attempt is not None:
            return False
        read[index] = item
    items = [read[index] for index in indexes]
    latest = [store.get_attempt(run.run_id, i.index, i.attempts)
              for i in items if i is not None and i.attempts]
    turn = [a for a in latest if a is not None and a.batch == batch and not a.answered]
    tokens = list(dict.fromkeys([token, *(a.task_token for a in turn)]))
    pending = [index for index, i in zip(indexes, items, strict=True)
               if i is None or i.status not in TERMINAL]
    for give in tokens:
        if pending:
            delays = [_delay(a) for a in turn if (a.answer or {}).get("outcome") == "retry"]
            delay = min(delays) if delays else 0
            cause = json.dumps({"pending": pending, "delay_seconds": delay})
            if len(cause) > MAX_CAUSE:
                cause = json.dumps({"pending_count": len(pending), "delay_seconds": delay})
            callbacks.fail(give, errors.RETRY, cause)
            continue
        failed = [i for i in items if i is not None and i.status != "SUCCEEDED"]
        if not failed:
            callbacks.succeed(give, {"run_id": run.run_id, "batch": batch,
                                     "items": len(items), "succeeded": len(items)})
            continue
        first = failed[0]
        callbacks.fail(give, FINAL_ERRORS.get(first.status, errors.ITEM_FAILED),
                       f"{len(failed)} of {len(items)} items of batch {batch} did not "
                       f"succeed (item {first.index}: {first.status})")
    for attempt in turn:
        store.mark_answered(attempt.run_id, attempt.index, attempt.attempt)
    return True


def _delay(attempt: AttemptRecord) -> int:
    try:
        return int(json.loads(str((attempt.answer or {}).get("cause") or "{}"))
                   .get("delay_seconds", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def final_stop(kind: StopClass, reason: str, exit_code: int | None = None) -> Stop:
    return Stop(kind, exit_code, None, reason)
