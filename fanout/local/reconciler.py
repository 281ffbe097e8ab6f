"""Reconcile on a short period, as its schedule rule invokes it on AWS."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fanout.local.functions import Functions
    from fanout.local.stack import LocalStack


class Reconciler:
    """Invokes the Reconcile function on a short period, as its schedule rule would."""

    def __init__(self, functions: Functions, stack: LocalStack, period: float) -> None:
        self.functions = functions
        self.stack = stack
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="reconcile")
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        from fanout.local.functions import FunctionError

        fn = self.functions.by_kind("reconcile")
        rule = next((r for r in self.stack.rules if fn.arn in r.targets and r.schedule), None)
        while not self._stop.wait(self.period):
            event = {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                "source": "aws.events", "account": self.stack.account,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.stack.region,
                "resources": [f"arn:aws:events:{self.stack.region}:{self.stack.account}:rule/"
                              f"{rule.name}"] if rule else [],
                "detail": {},
            }
            try:
                self.functions.invoke(fn.arn, event)
            except FunctionError as exc:
                self.errors.append(str(exc))
