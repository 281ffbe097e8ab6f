"""The launch gate's store interface: the queue, the dispatcher's lease, the token buckets
and the job slots (docs/decisions/0006).

Implemented on DynamoDB by :class:`fanout.records.dynamo.DynamoRecords` (partition ``GATE``,
:mod:`fanout.records.dynamo_gate`) and in memory by
:class:`fanout.testing.gate_store.MemoryGateStore` (tests). The launch gate
(:mod:`fanout.runtime.gate`, :mod:`fanout.runtime.dispatch`) reaches its records only
through :class:`GateStore`; the attempts and items it moves go through
:class:`fanout.records.store.RecordsStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fanout.records.model import AttemptRecord

#: An attempt queued longer than this (seconds) before its task started waited.
WAITED_SECONDS = 1.0
#: A wake-up is sent at most this often while no dispatcher holds the lease.
KICK_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class QueueEntry:
    """One attempt waiting in the launch queue (``sk``: its place, oldest first)."""

    sk: str
    run_id: str
    index: int
    attempt: int
    capacity: str
    #: How many attempts of its batch were queued with it (a packed run's batch child);
    #: 0 when unknown (one item per task, or a dispatcher gathers its batch-mates).
    turn: int = 0


class GateStore(Protocol):
    """The launch gate's records. Every write that can race says if it won."""

    # --- the queue ---------------------------------------------------------------------
    def queue_entries(self, capacity: str, limit: int) -> list[QueueEntry]:
        """The oldest entries of one capacity type's queue, at most ``limit``."""
        ...

    def drop_entry(self, sk: str) -> None:
        """Forget an entry whose attempt is no longer queued."""
        ...

    # --- the dispatcher's lease and its wake-ups ----------------------------------------
    def claim_wake(self, *, again: bool) -> bool:
        """Win the right to wake the dispatcher: none holds the lease and none was woken in
        the last :data:`KICK_EVERY_SECONDS` (``again``: whenever none holds the lease)."""
        ...

    def acquire_lease(self, owner: str, seconds: float) -> bool:
        """Hold the dispatcher's lease for ``seconds`` unless another owner holds it."""
        ...

    def release_lease(self, owner: str) -> None:
        """Give the lease up (when ``owner`` holds it)."""
        ...

    # --- the token buckets --------------------------------------------------------------
    def bucket_state(self, capacity: str) -> dict[str, float]:
        """A capacity type's bucket as last saved (empty when never saved)."""
        ...

    def save_bucket(self, capacity: str, state: dict[str, float]) -> None: ...

    # --- job slots (max_running) --------------------------------------------------------
    def take_slot(self, attempt: AttemptRecord, job: str, limit: int) -> bool:
        """Hold one of ``job``'s ``limit`` running slots for the attempt, unless all are
        taken; the slot goes back when the attempt settles."""
        ...

    def give_slot(self, attempt: AttemptRecord, job: str) -> bool:
        """Give back the slot of an attempt whose RunTask was refused (it waits on)."""
        ...

    def running_of(self, job: str) -> int:
        """How many of ``job``'s slots are held."""
        ...
