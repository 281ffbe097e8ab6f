"""The launch gate's token bucket: permits at Fargate's pace, a wait with a limit."""

from __future__ import annotations

import threading

from fanout.runtime.bucket import Bucket


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


def test_the_burst_is_given_at_once_then_one_permit_per_refill() -> None:
    clock = FakeTime()
    bucket = Bucket(burst=3, rate=2.0)
    waits = [bucket.acquire(now=clock.time, sleep=clock.sleep) for _ in range(7)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    # then 2 per second: each later permit waits half a second for its token
    assert all(w is not None and abs(w - 0.5) < 1e-6 for w in waits[3:])
    assert abs(clock.now - 1002.0) < 1e-6


def test_a_permit_not_given_within_the_limit_is_refused_without_taking_a_token() -> None:
    clock = FakeTime()
    bucket = Bucket(burst=1, rate=0.1)  # one launch every ten seconds
    assert bucket.acquire(now=clock.time, sleep=clock.sleep) == 0.0
    assert bucket.acquire(now=clock.time, sleep=clock.sleep, most=5.0) is None
    assert clock.slept == []  # it saw it could not come in time: it did not wait for nothing
    assert bucket.acquire(now=clock.time, sleep=clock.sleep, most=20.0) is not None


def test_a_capacity_refusal_blocks_permits_until_its_backoff_ends() -> None:
    clock = FakeTime()
    bucket = Bucket(burst=10, rate=5.0)
    bucket.refused(clock.time())
    waited = bucket.acquire(now=clock.time, sleep=clock.sleep)
    assert waited is not None and abs(waited - 1.0) < 1e-6  # the first backoff is 1 s


def test_a_throttle_halves_the_rate_and_empties_the_bucket() -> None:
    clock = FakeTime()
    bucket = Bucket(burst=10, rate=4.0)
    bucket.acquire(now=clock.time, sleep=clock.sleep)
    bucket.throttled()
    waited = bucket.acquire(now=clock.time, sleep=clock.sleep)
    # 2 per second after the halving (it climbs back slowly), and the reserve (one token of
    # the ten) refilled first: about a second
    assert waited is not None and 0.9 < waited <= 1.0


def test_a_tenth_of_the_burst_is_kept_in_reserve_for_late_calls() -> None:
    clock = FakeTime()
    bucket = Bucket(burst=20, rate=10.0)
    waits = [bucket.acquire(now=clock.time, sleep=clock.sleep) for _ in range(20)]
    # 18 at once (2 of the 20 stay in Fargate's bucket), then 10 a second as before
    assert waits[:18] == [0.0] * 18
    assert all(w is not None and abs(w - 0.1) < 1e-6 for w in waits[18:])
