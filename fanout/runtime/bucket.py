"""The launch gate's token bucket: Fargate's burst and refill per capacity type, with AIMD
on throttles and a backoff on capacity refusals (docs/decisions/0006)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: A capacity type refused for capacity is tried again after 1, 2, 4 ... up to this (s).
CAPACITY_BACKOFF_MAX = 15.0
#: After a throttle the rate is halved, never below this share of the configured rate.
AIMD_FLOOR = 0.1
#: The rate climbs back by this share of the configured rate per second without throttle.
AIMD_CLIMB = 0.1
#: A worker waits at most this long for its permit before handing its entry back (seconds;
#: well inside the attempt's launch lease).
PERMIT_WAIT_MAX = 10.0
#: A permit that came after this wait (seconds) counts as the attempt having waited.
PERMIT_WAITED = 0.05
#: The share of the burst never given out: calls that reach Fargate a little late, or
#: bunched up behind a slow moment, find tokens there instead of a throttle.
RESERVE_SHARE = 0.1


@dataclass
class Bucket:
    """A token bucket with AIMD on throttles and a backoff on capacity refusals."""

    burst: int
    rate: float
    tokens: float = -1.0
    current: float = 0.0
    at: float = 0.0
    blocked_until: float = 0.0
    backoff: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)
        if self.current <= 0:
            self.current = self.rate

    def refill(self, now: float) -> None:
        elapsed = max(now - self.at, 0.0) if self.at else 0.0
        self.at = now
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.current)
        if self.current < self.rate:
            self.current = min(self.rate, self.current + elapsed * self.rate * AIMD_CLIMB)

    @property
    def reserve(self) -> int:
        return int(self.burst * RESERVE_SHARE)

    def take(self, now: float) -> bool:
        self.refill(now)
        if now < self.blocked_until or self.tokens < 1 + self.reserve:
            return False
        self.tokens -= 1
        return True

    def acquire(self, *, now: Callable[[], float] = time.time,
                sleep: Callable[[float], None] = time.sleep,
                most: float = PERMIT_WAIT_MAX) -> float | None:
        """Take a permit, waiting for it up to ``most`` seconds: the seconds waited, or
        None when none came in time. Called by the worker right before its RunTask, so the
        calls reach Fargate at the pace the permits were given (no queue in between)."""
        start = now()
        while True:
            with self.lock:
                moment = now()
                if self.take(moment):
                    return moment - start
                pause = self.wait(moment)
            if moment + pause - start > most:
                return None
            sleep(max(pause, 0.001))

    def wait(self, now: float) -> float:
        """Seconds until :meth:`take` can succeed."""
        if now < self.blocked_until:
            return self.blocked_until - now
        return max((1 + self.reserve - self.tokens) / self.current, 0.0)

    def throttled(self) -> None:
        self.current = max(self.rate * AIMD_FLOOR, self.current / 2)
        self.tokens = min(self.tokens, 0.0)

    def refused(self, now: float) -> None:
        self.backoff = min(max(self.backoff * 2, 1.0), CAPACITY_BACKOFF_MAX)
        self.blocked_until = now + self.backoff

    def launched(self) -> None:
        self.backoff = 0.0

    def state(self) -> dict[str, float]:
        return {"tokens": self.tokens, "current": self.current, "at": self.at,
                "blocked_until": self.blocked_until, "backoff": self.backoff}
