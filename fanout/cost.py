"""What a run cost, estimated from what it did: its attempts' compute and its control plane.

An estimate, not a bill (docs/cost.md says how it is computed and what it leaves out):

- Compute, per attempt: the task's vCPUs and GB of memory x its seconds x the Fargate
  price of its architecture, billed per second with Fargate's one-minute minimum; on
  ``FARGATE_SPOT`` the price less the Spot discount. An attempt that never started a task
  costs nothing.
- Control plane, per run: state transitions, Lambda requests and GB-seconds, DynamoDB
  writes and reads, counted from the run's items and attempts with the usage model below.

Prices are a dated table per region (:data:`PRICES`), overridable in the deployment config
(``cost.prices.<region>``). Pure: no AWS, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from fanout.policy import Frozen

#: The date the table below was checked against AWS's public price pages.
PRICES_AS_OF = "2026-06-17"
#: Fargate bills per second with a one-minute minimum per task.
MINIMUM_BILLED_SECONDS = 60
#: The region whose prices stand in for a region the table does not have.
FALLBACK_REGION = "us-east-1"
#: What Spot saves off the on-demand Fargate price (AWS says "up to 70%").
DEFAULT_SPOT_DISCOUNT = 0.70


class RegionPrices(Frozen):
    """The prices of one region, in USD. Every field can be overridden in the config."""

    as_of: str = PRICES_AS_OF
    #: Fargate, per vCPU-hour and per GB-hour, by CPU architecture (Linux).
    fargate_vcpu_hour: dict[str, float] = {"X86_64": 0.04048, "ARM64": 0.03238}
    fargate_gb_hour: dict[str, float] = {"X86_64": 0.004445, "ARM64": 0.00356}
    spot_discount: float = Field(default=DEFAULT_SPOT_DISCOUNT, ge=0.0, lt=1.0)
    #: Step Functions Standard, per state transition ($0.025 per 1,000).
    transition: float = 0.000025
    #: Lambda, per request and per GB-second on arm64.
    lambda_request: float = 0.0000002
    lambda_gb_second: float = 0.0000133334
    #: DynamoDB on-demand, per write and per read request unit.
    dynamodb_write: float = 0.000000625
    dynamodb_read: float = 0.000000125


#: The dated price table: region -> prices (Linux, on-demand; checked on :data:`PRICES_AS_OF`).
PRICES: dict[str, RegionPrices] = {
    "us-east-1": RegionPrices(),
    "us-east-2": RegionPrices(),
    "us-west-2": RegionPrices(),
}


class CostConfig(Frozen):
    """``cost`` in the deployment config: prices per region over the package's table."""

    #: region -> the fields of :class:`RegionPrices` to replace (the rest stay the table's).
    prices: dict[str, dict[str, Any]] = {}


#: The dispatcher's CPU time per launch (docs/benchmarks.md, bench/dispatcher.py: 20.08 ms
#: draining 600 items at a60621a; docs/decisions/0016-storm-dispatcher-memory.md).
DISPATCHER_SECONDS_PER_LAUNCH = 0.02008
#: The dispatcher function's memory (fanout.settings' FunctionSpec "dispatch"; a test
#: checks the two agree: fanout.settings imports this module, not the other way round).
DISPATCHER_MEMORY_MB = 832


@dataclass(frozen=True)
class Usage:
    """How much of the control plane a run, an item and an attempt use (the usage model).

    Step Functions: 5 transitions per run in the parent execution (one Finalize turn), 1
    per item in its child execution and 3 more for each retry. Lambda: Expand and Finalize
    once per run, Launch and Record once per attempt, about 0.08 GB-s each (measured at
    f2525b1); the launch dispatcher (fanout/runtime/dispatch.py) at least once per run (it
    drains the queue in one invocation of up to 300 s, then invokes itself again), billed
    :data:`DISPATCHER_SECONDS_PER_LAUNCH` at :data:`DISPATCHER_MEMORY_MB` per attempt.
    DynamoDB: the dispatcher's writes per attempt are counted from the code
    (fanout.runtime.gate.launch_entry on the happy path: ``claim_launch`` 1 unit, the task
    record 1, the dequeue transaction of 3 updates 6, the queue entry's delete 1), its reads
    too (the item once: the claim's write answers the attempt and the run is cached), plus
    its share of each turn's queue query and bucket read (0.4 per attempt, measured); the
    rest are Launch's and Record's (the queue entry's put among them; Launch reads the
    dispatcher's lease and writes a wake only when none holds it; Record reads a run once
    per process), fitted to what ``bench/cost.py --items 100`` measured at 2e8bc36 (two
    runs, 2026-12-05): 24.51 and 25.42 write units, 7.17 and 7.64 read calls per item on
    the happy path; 27.20 and 27.68, 7.89 and 8.27 with 10 retries per 100 items.
    """

    transitions_per_run: int = 5
    transitions_per_item: int = 1
    transitions_per_retry: int = 3
    lambda_invocations_per_run: int = 2  # Expand, Finalize
    lambda_invocations_per_attempt: int = 2  # Launch, Record
    lambda_gb_seconds_per_invocation: float = 0.08
    dispatcher_invocations_per_run: int = 1
    dispatcher_gb_seconds_per_attempt: float = (
        DISPATCHER_SECONDS_PER_LAUNCH * DISPATCHER_MEMORY_MB / 1024)
    dynamodb_writes_per_item: int = 5
    dynamodb_writes_per_attempt: int = 11  # Launch, Record
    dispatcher_writes_per_attempt: int = 9
    dynamodb_reads_per_item: int = 1
    dynamodb_reads_per_attempt: int = 5  # Launch, Record
    dispatcher_reads_per_attempt: float = 1.4


@dataclass(frozen=True)
class ControlPlaneUsage:
    """What a run made the control plane do, by the usage model (:func:`control_plane_usage`)."""

    transitions: int
    invocations: int
    gb_seconds: float
    writes: int
    reads: float


USAGE = Usage()


def prices_for(region: str | None, overrides: Mapping[str, Mapping[str, Any]] | None = None
               ) -> RegionPrices:
    """The prices of ``region``: the table's (or the fallback's), then the config's fields."""
    name = region or FALLBACK_REGION
    base = PRICES.get(name, PRICES[FALLBACK_REGION])
    override = dict((overrides or {}).get(name) or {})
    if not override:
        return base
    merged = base.model_dump()
    for key in ("fargate_vcpu_hour", "fargate_gb_hour"):
        if isinstance(override.get(key), Mapping):
            override[key] = {**merged[key], **override[key]}
    return RegionPrices.model_validate({**merged, **override})


def billed_seconds(seconds: float) -> int:
    """Fargate's billing: whole seconds, rounded up, at least one minute."""
    return max(MINIMUM_BILLED_SECONDS, math.ceil(seconds))


def task_shares(task_seconds: float, item_seconds: Mapping[Any, float]) -> dict[Any, float]:
    """The billed seconds of a packed task, shared among the items it ran
    (docs/decisions/0020): each gets its own seconds, and the rest of what the task is
    billed (start, the runner, the minimum's padding) is split evenly among them. The shares
    add up to the task's billed seconds."""
    if not item_seconds:
        return {}
    billed = billed_seconds(task_seconds)
    rest = max(0.0, billed - sum(item_seconds.values()))
    if rest == 0.0:  # items that overlapped (per_task_concurrency > 1) ran longer in sum
        total = sum(item_seconds.values())
        return {k: billed * s / total for k, s in item_seconds.items()}
    return {k: s + rest / len(item_seconds) for k, s in item_seconds.items()}


def attempt_compute_usd(*, cpu: int, memory: int, architecture: str, capacity: str,
                        seconds: float | None, prices: RegionPrices,
                        billed: float | None = None) -> float:
    """One attempt's Fargate cost: ``cpu`` in CPU units (1024 a vCPU), ``memory`` in MiB.

    ``seconds`` is None for an attempt that never ran a task: it costs nothing. ``billed``:
    the attempt's share of a packed task's billed seconds (:func:`task_shares`), in place
    of its own seconds billed as a task of its own.
    """
    if seconds is None:
        return 0.0
    arch = architecture if architecture in prices.fargate_vcpu_hour else "X86_64"
    per_hour = (cpu / 1024 * prices.fargate_vcpu_hour[arch]
                + memory / 1024 * prices.fargate_gb_hour[arch])
    if capacity == "FARGATE_SPOT":
        per_hour *= 1.0 - prices.spot_discount
    return (billed_seconds(seconds) if billed is None else billed) * per_hour / 3600


def control_plane_usage(*, items: int, attempts: int, usage: Usage = USAGE,
                        packed: tuple[int, int, int] | None = None) -> ControlPlaneUsage:
    """A run's transitions, Lambda requests and GB-seconds, DynamoDB writes and reads.

    ``packed``: a packed run's (child executions, turns, tasks), docs/decisions/0020: its
    state machine works per batch (one child execution, a Launch and 3 more transitions per
    further turn), its Record and dispatcher per task, its records per item and attempt."""
    if packed is None:
        children, turns, launches, records = items, attempts, attempts, attempts
    else:
        children, turns, launches = packed
        records = launches  # one STOPPED event, one Record, per task
    calls = turns + records  # Launch, Record
    return ControlPlaneUsage(
        transitions=(usage.transitions_per_run + usage.transitions_per_item * children
                     + usage.transitions_per_retry * max(0, turns - children)),
        invocations=(usage.lambda_invocations_per_run + usage.dispatcher_invocations_per_run
                     + calls),
        gb_seconds=((usage.lambda_invocations_per_run + calls)
                    * usage.lambda_gb_seconds_per_invocation
                    + usage.dispatcher_gb_seconds_per_attempt * launches),
        writes=(usage.dynamodb_writes_per_item * items
                + (usage.dynamodb_writes_per_attempt + usage.dispatcher_writes_per_attempt)
                * attempts),
        reads=(usage.dynamodb_reads_per_item * items
               + (usage.dynamodb_reads_per_attempt + usage.dispatcher_reads_per_attempt)
               * attempts))


def control_plane_usd(*, items: int, attempts: int, prices: RegionPrices,
                      usage: Usage = USAGE, packed: tuple[int, int, int] | None = None) -> float:
    """A run's Step Functions, Lambda and DynamoDB cost, by the usage model."""
    used = control_plane_usage(items=items, attempts=attempts, usage=usage, packed=packed)
    return (used.transitions * prices.transition + used.invocations * prices.lambda_request
            + used.gb_seconds * prices.lambda_gb_second + used.writes * prices.dynamodb_write
            + used.reads * prices.dynamodb_read)


@dataclass(frozen=True)
class AttemptUsage:
    """What the cost of one attempt depends on."""

    capacity: str
    seconds: float | None
    #: Its share of a packed task's billed seconds (None: a task of its own).
    billed: float | None = None


@dataclass(frozen=True)
class TaskSize:
    cpu: int = 256
    memory: int = 512
    architecture: str = "ARM64"


def round_usd(value: float) -> float:
    return round(value, 6)


def run_cost(attempts: Iterable[AttemptUsage], *, items: int, size: TaskSize,
             prices: RegionPrices, packed: tuple[int, int, int] | None = None
             ) -> dict[str, Any]:
    """The run's ``cost``: ``compute_usd``, ``control_plane_usd``, ``total_usd``,
    ``prices_as_of`` (the sums are exact; each is rounded to a millionth of a dollar);
    ``packed``: a packed run's (child executions, turns, tasks)."""
    compute = 0.0
    count = 0
    for attempt in attempts:
        count += 1
        compute += attempt_compute_usd(
            cpu=size.cpu, memory=size.memory, architecture=size.architecture,
            capacity=attempt.capacity, seconds=attempt.seconds, prices=prices,
            billed=attempt.billed)
    plane = control_plane_usd(items=items, attempts=count, prices=prices, packed=packed)
    return {"compute_usd": round_usd(compute), "control_plane_usd": round_usd(plane),
            "total_usd": round_usd(compute + plane), "prices_as_of": prices.as_of}
