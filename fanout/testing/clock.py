"""Fake time for loops that pace themselves (the launch dispatcher), and a worker pool that
works on the caller's thread, so that fake time moves only when the caller sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Where fake time starts: 2027-01-15 08:00:00 UTC.
EPOCH = 1_800_000_000.0


class FakeTimer:
    """:class:`~fanout.runtime.clock.Timer` whose ``sleep`` moves the time on at once."""

    def __init__(self, start: float = EPOCH) -> None:
        self.start = start
        self._now = start
        self._lock = threading.Lock()
        #: Seconds slept in all (what the loop would have waited).
        self.slept = 0.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self.start

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(seconds, 0.0)
            self.slept += max(seconds, 0.0)

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def elapsed(self) -> float:
        """Fake seconds since the start."""
        return self._now - self.start


class InlinePool(Executor):
    """An executor that runs each call at once, on the caller's thread."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> Any:
        return None
