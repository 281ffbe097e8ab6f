"""Time as ISO UTC strings (what the records hold); one place so tests can move it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def later(moment: datetime, seconds: float) -> str:
    return iso(moment + timedelta(seconds=seconds))


class Timer(Protocol):
    """The time a loop that paces itself reads and waits on (the launch dispatcher): the
    wall clock in seconds (what buckets keep in the table), a monotonic reading for its
    own deadlines, a sleep, and the records' UTC moment. A test gives a fake one whose
    sleep only moves the time on."""

    def time(self) -> float: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def utcnow(self) -> datetime: ...


class SystemTimer:
    """:class:`Timer` on the machine's clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def utcnow(self) -> datetime:
        return utcnow()
