"""An emulated EventBridge bus: the synthesized rules' patterns decide what reaches whom.

Delivery is asynchronous, as in EventBridge, and a target that raises is retried twice
(Lambda's asynchronous invocation). ``lose_event`` and ``duplicate_event`` faults strike
ECS task state changes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fanout.local.faults import Dice

if TYPE_CHECKING:
    from fanout.local.stack import LocalStack

log = logging.getLogger(__name__)

Target = Callable[[dict[str, Any]], None]


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` matches an EventBridge ``pattern`` (every key given must match)."""
    for key, wanted in pattern.items():
        present = key in event
        value = event.get(key)
        if isinstance(wanted, Mapping):
            if not isinstance(value, Mapping) or not matches(wanted, value):
                return False
        elif isinstance(wanted, list):
            if not _matches_any(wanted, value, present):
                return False
        else:
            raise ValueError(f"pattern value for {key!r} must be an object or a list")
    return True


def _matches_any(rules: list[Any], value: Any, present: bool) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, Mapping):
            if _matches_operator(rule, values, present):
                return True
        elif present and rule in values:
            return True
    return False


def _matches_operator(rule: Mapping[str, Any], values: list[Any], present: bool) -> bool:
    ((op, arg),) = rule.items()
    if op == "exists":
        return present is bool(arg)
    if not present:
        return False
    if op == "prefix":
        if isinstance(arg, Mapping):  # {"prefix": {"equals-ignore-case": "x"}}
            low = str(arg.get("equals-ignore-case", "")).lower()
            return any(isinstance(v, str) and v.lower().startswith(low) for v in values)
        return any(isinstance(v, str) and v.startswith(arg) for v in values)
    if op == "suffix":
        return any(isinstance(v, str) and v.endswith(arg) for v in values)
    if op == "equals-ignore-case":
        return any(isinstance(v, str) and v.lower() == str(arg).lower() for v in values)
    if op == "anything-but":
        if isinstance(arg, Mapping):
            inner = [{k: v} for k, v in arg.items()]
            return not any(_matches_operator(r, values, present) for r in inner)
        excluded = arg if isinstance(arg, list) else [arg]
        return all(v not in excluded for v in values)
    if op == "numeric":
        return any(_numeric(arg, v) for v in values if isinstance(v, int | float))
    raise ValueError(f"event pattern operator {op!r} is not emulated")


def _numeric(conditions: list[Any], number: float) -> bool:
    checks = {"<": number.__lt__, "<=": number.__le__, "=": number.__eq__,
              ">": number.__gt__, ">=": number.__ge__}
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](limit) for op, limit in pairs)


@dataclass(frozen=True)
class Rule:
    """A rule of the template: an event pattern or a schedule, and the functions it invokes."""

    name: str
    targets: tuple[str, ...]
    pattern: Mapping[str, Any] | None = None
    schedule: str | None = None
    enabled: bool = True


class EventBus:
    """Puts events, matches them against the rules, delivers to targets on worker threads."""

    def __init__(
        self,
        rules: list[Rule],
        invoke: Callable[[str, dict[str, Any]], Any],
        dice: Dice,
        *,
        workers: int = 8,
        retries: int = 2,
        retry_delay_seconds: float = 0.2,
        late_seconds: float = 0.5,
    ) -> None:
        self.rules = [r for r in rules if r.enabled and r.pattern is not None]
        self.invoke = invoke
        self.dice = dice
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.late_seconds = late_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eventbus")
        self._pending = 0
        self._idle = threading.Condition()
        self.dead_letters: list[tuple[str, dict[str, Any], str]] = []

    def put(self, event: dict[str, Any]) -> None:
        """PutEvents: deliver ``event`` to every matching rule's targets."""
        targets = [t for rule in self.rules if rule.pattern and matches(rule.pattern, event)
                   for t in rule.targets]
        if not targets:
            return
        if event.get("source") == "aws.ecs":
            if self.dice.roll("lose_event"):
                return
            if self.dice.roll("duplicate_event"):
                delay = self.dice.uniform(0.0, self.late_seconds)
                for target in targets:
                    self._submit(target, event, delay)
        for target in targets:
            self._submit(target, event, 0.0)

    def _submit(self, target: str, event: dict[str, Any], delay: float) -> None:
        with self._idle:
            self._pending += 1
        self._pool.submit(self._deliver, target, event, delay)

    def _deliver(self, target: str, event: dict[str, Any], delay: float) -> None:
        try:
            if delay:
                time.sleep(delay)  # a late duplicate: the delay is the point
            for attempt in range(self.retries + 1):
                try:
                    self.invoke(target, event)
                    return
                except Exception as exc:
                    if attempt == self.retries:
                        log.warning("event to %s dead-lettered: %s", target, exc)
                        self.dead_letters.append((target, event, repr(exc)))
                    else:
                        time.sleep(self.retry_delay_seconds * (attempt + 1))
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every event put so far has been delivered (or dead-lettered)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def execution_status_event(execution: Mapping[str, Any], stack: LocalStack) -> dict[str, Any]:
    """A "Step Functions Execution Status Change" event for the execution as it ended."""

    def millis(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if isinstance(value, datetime) else None

    now = datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": stack.account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": stack.region,
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": millis(execution.get("startDate")),
            "stopDate": millis(execution.get("stopDate")),
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        },
    }
