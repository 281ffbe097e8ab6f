"""A task launcher in memory (tests): Fargate's launch bucket and a capacity outage, on a
clock the test gives (fake time), and every RunTask call counted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fanout.aws.ecs import LaunchError, LaunchRequest

#: What RunTask answers when Fargate has no capacity (the ECS failure reason).
CAPACITY_REASON = "Capacity is unavailable at this time. Please try again later or in a " \
    "different availability zone"


@dataclass
class Launched:
    arn: str
    request: LaunchRequest
    at: float
    stopped: bool = False


@dataclass
class MemoryLauncher:
    """:class:`~fanout.aws.ecs.TaskLauncher` in memory.

    ``burst``/``per_second``: the account's launch bucket (None: no limit), refilled on
    ``now``; ``outage``: (start, end) of ``now`` during which every RunTask is refused for
    capacity. A repeated ``clientToken`` returns the task it started (as ECS does).
    """

    now: Callable[[], float]
    burst: int | None = None
    per_second: float = 0.0
    outage: tuple[float, float] | None = None
    #: When set, every RunTask is refused for good with this message (a bad task definition).
    refusal: str | None = None
    tasks: dict[str, Launched] = field(default_factory=dict)
    run_task_calls: int = 0
    throttled: int = 0
    capacity_refused: int = 0
    #: ``now`` of every RunTask call and what it answered (launched, throttled, capacity,
    #: refused).
    calls: list[tuple[float, str]] = field(default_factory=list)
    _tokens: float = -1.0
    _at: float | None = None
    _by_token: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run_task(self, request: LaunchRequest) -> str:
        with self._lock:
            now = self.now()
            self.run_task_calls += 1
            if request.client_token in self._by_token:
                return self._by_token[request.client_token]
            if self.refusal is not None:
                self.calls.append((now, "refused"))
                raise LaunchError("refused", self.refusal)
            if not self._take(now):
                self.throttled += 1
                self.calls.append((now, "throttled"))
                raise LaunchError("throttled", "Rate exceeded")
            if self.outage is not None and self.outage[0] <= now < self.outage[1]:
                self.capacity_refused += 1
                self.calls.append((now, "capacity"))
                raise LaunchError("capacity", CAPACITY_REASON)
            arn = f"arn:aws:ecs:us-east-1:123456789012:task/fanout/{len(self.tasks) + 1:08d}"
            self.tasks[arn] = Launched(arn, request, now)
            self._by_token[request.client_token] = arn
            self.calls.append((now, "launched"))
            return arn

    def _take(self, now: float) -> bool:
        if self.burst is None:
            return True
        if self._tokens < 0:
            self._tokens = float(self.burst)
        elapsed = now - self._at if self._at is not None else 0.0
        self._at = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.per_second)
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def describe_tasks(self, task_arns: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {a: {"taskArn": a, "lastStatus": "STOPPED" if self.tasks[a].stopped
                    else "RUNNING", "tags": self.tasks[a].request.tags()}
                for a in task_arns if a in self.tasks}

    def stop_task(self, task_arn: str, reason: str) -> None:
        if task_arn in self.tasks:
            self.tasks[task_arn].stopped = True

    def running_tasks(self) -> list[str]:
        return [a for a, t in self.tasks.items() if not t.stopped]

    def launches(self, run_id: str) -> list[Launched]:
        """The tasks started for a run, in launch order."""
        return [t for t in self.tasks.values() if t.request.run_id == run_id]
