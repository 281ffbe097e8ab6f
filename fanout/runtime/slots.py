"""The duplicate-delivery guard of schedules: one run per schedule and scheduled time.

EventBridge Scheduler may deliver a schedule's StartExecution more than once (a retried
delivery), and each delivery starts an execution with a new name: Scheduler's templated
Step Functions target sets only the input, and the scheduled time it could name an
execution by (``2024-01-02T03:00:00Z``) holds ``:``, which execution names may not. So
Expand claims a *slot* record ``SLOT#<schedule>#<scheduled time>`` with a conditional
write before it writes anything else; a second execution for the same slot ends with
``Fanout.DuplicateScheduledRun`` before anything is launched or recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fanout.records.store import RecordsStore
from fanout.runtime.errors import FanoutError

DuplicateScheduledRun = type(
    "Fanout.DuplicateScheduledRun", (FanoutError,), {"__module__": __name__})

#: How long a slot is kept: far longer than Scheduler retries a delivery (24 h at most).
SLOT_DAYS = 7


def claim_slot(store: RecordsStore, schedule: str, logical_time: str, run_id: str,
               now: datetime) -> str:
    """Claim the slot for ``run_id``; returns the run that owns it (``run_id`` if we won).

    A retried Expand of the same execution finds its own run id there and goes on.
    """
    expires = int((now + timedelta(days=SLOT_DAYS)).timestamp())
    return store.claim_slot(schedule, logical_time, run_id, expires)


def guard_schedule(store: RecordsStore, spec: Any, run_id: str, logical_time: str,
                   now: datetime) -> None:
    """End a scheduled run whose slot another execution already holds."""
    if spec.trigger != "schedule" or not spec.schedule:
        return
    owner = claim_slot(store, spec.schedule, logical_time, run_id, now)
    if owner != run_id:
        raise DuplicateScheduledRun(
            f"schedule {spec.schedule} at {logical_time} already started run {owner}; "
            "this duplicate delivery launches nothing")
