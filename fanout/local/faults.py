"""Fault injection for the local mode: what Fargate and EventBridge really do, on demand.

``--faults throttle=0.3,capacity=0.1,seed=7`` makes 30% of RunTask calls throttled, 10%
refused for capacity, and the dice reproducible. Each fault is rolled independently.
``launch_latency=3`` is a duration, not a fraction: every RunTask answers 3 s after its
task started.
``capacity_outage=SECONDS`` refuses every RunTask for capacity during the run's first SECONDS.
``spot_after=SECONDS`` makes a ``spot`` interruption strike SECONDS after its task started
(a task that carries several items is then interrupted mid-batch).
``vcpu_quota=VCPUS`` is the account's Fargate vCPU quota: a RunTask that would run more
vCPUs at once is refused as AWS refuses it ("You've reached the limit on the number of
vCPUs you can run concurrently"), and its item waits until running tasks end.
``ddb_conflict=P`` cancels a DynamoDB transaction that meets another one on an item with
probability P (``TransactionConflict``); ``ddb_hot_key=WCU`` throttles writes to one item
beyond WCU write units a second (:class:`fanout.local.moto.dynamodb.Contention`).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields

from fanout.errors import FanoutInputError, Problem


class FaultsError(FanoutInputError):
    """A ``--faults`` value that cannot be used."""

    what = "--faults"


@dataclass(frozen=True)
class Faults:
    """The fraction (0..1) of opportunities at which each fault strikes."""

    #: RunTask raises ThrottlingException.
    throttle: float = 0.0
    #: RunTask answers "Capacity is unavailable at this time" (a failure, no task).
    capacity: float = 0.0
    #: A task on FARGATE_SPOT is stopped by a Spot interruption shortly after it starts.
    spot: float = 0.0
    #: Seconds after its start a ``spot`` interruption strikes a task (0: within 50 ms).
    spot_after: float = 0.0
    #: An ECS Task State Change event is never delivered.
    lose_event: float = 0.0
    #: An ECS Task State Change event is delivered twice, the copy possibly late.
    duplicate_event: float = 0.0
    #: The launch function dies after its RunTask went through.
    launch_crash: float = 0.0
    #: Seconds RunTask takes to answer after its task started (a launch in flight).
    launch_latency: float = 0.0
    #: Every RunTask is refused for capacity during the run's first this many seconds.
    capacity_outage: float = 0.0
    #: The account's Fargate vCPU quota (vCPUs running at once); 0: none.
    vcpu_quota: float = 0.0
    #: A DynamoDB transaction meeting another one on one of its items is cancelled
    #: (``TransactionConflict``).
    ddb_conflict: float = 0.0
    #: Write units one DynamoDB item takes per second; beyond, writes are throttled
    #: (0: no limit).
    ddb_hot_key: float = 0.0
    seed: int | None = None

    @classmethod
    def names(cls) -> list[str]:
        """The faults given as fractions (rolled)."""
        return [f.name for f in fields(cls) if f.name != "seed"
                and f.name not in (*cls.durations(), *cls.amounts(), *cls.rates())]

    @classmethod
    def durations(cls) -> list[str]:
        """The faults given as seconds."""
        return ["launch_latency", "capacity_outage", "spot_after"]

    @classmethod
    def amounts(cls) -> list[str]:
        """The faults given as a quantity (vCPUs)."""
        return ["vcpu_quota"]

    @classmethod
    def rates(cls) -> list[str]:
        """The faults given as write units per second."""
        return ["ddb_hot_key"]

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        """``name=fraction`` pairs and ``seed=N``, comma-separated; every bad pair is named."""
        if not text:
            return cls()
        values: dict[str, float] = {}
        seed: int | None = None
        problems: list[Problem] = []
        named: set[str] = set()
        for pair in (p.strip() for p in text.split(",")):
            if not pair:
                continue
            name, sep, raw = pair.partition("=")
            name = name.strip()
            if name in named:
                problems.append(Problem(name, "given twice; give each fault once"))
                continue
            named.add(name)
            if not sep:
                problems.append(Problem(name, "give name=value"))
            elif name == "seed":
                try:
                    seed = int(raw)
                except ValueError:
                    problems.append(Problem("seed", f"{raw!r} is not an integer"))
            elif name not in cls.names() and name not in ranges_of(cls):
                every = ", ".join([*cls.names(), *cls.durations(), *cls.amounts(), *cls.rates()])
                problems.append(Problem(name, f"unknown fault (faults: {every}, seed)"))
            else:
                low, high, what = ranges_of(cls).get(name, FRACTION)
                value = _within(raw, low, high)
                if value is None:
                    problems.append(Problem(name, f"{raw!r} is not {what}"))
                else:
                    values[name] = value
        if problems:
            raise FaultsError(problems)
        return cls(seed=seed, **values)

    @property
    def any(self) -> bool:
        return any(getattr(self, name) > 0
                   for name in [*self.names(), *self.durations(), *self.amounts(),
                                *self.rates()])


#: (lowest, highest, what it is) of a value given as a fraction, and of each other kind.
FRACTION = (0.0, 1.0, "a fraction between 0 and 1")
SECONDS = (0.0, 86_400.0, "a number of seconds between 0 and 86400")
VCPUS = (0.25, 100_000.0, "a number of vCPUs between 0.25 and 100000")
WRITE_UNITS = (1.0, 1_000_000.0, "a number of write units per second between 1 and 1000000")


def ranges_of(faults: type[Faults]) -> dict[str, tuple[float, float, str]]:
    """The range of each fault not given as a fraction."""
    return {**dict.fromkeys(faults.durations(), SECONDS),
            **dict.fromkeys(faults.amounts(), VCPUS),
            **dict.fromkeys(faults.rates(), WRITE_UNITS)}


def _within(raw: str, low: float, high: float) -> float | None:
    """``raw`` as a number from ``low`` to ``high`` (None: not a number, or out of range)."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


class Dice:
    """Thread-safe, seedable rolls against the configured fractions."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._lock = threading.Lock()
        self.counts: dict[str, int] = dict.fromkeys([*Faults.names(), *Faults.rates()], 0)

    def roll(self, name: str) -> bool:
        fraction: float = getattr(self.faults, name)
        if fraction <= 0:
            return False
        with self._lock:
            hit = self._random.random() < fraction
            if hit:
                self.counts[name] += 1
        return hit

    def note(self, name: str) -> None:
        """Count a fault that struck without a roll (a throttled write)."""
        with self._lock:
            self.counts[name] += 1

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._random.uniform(low, high)
