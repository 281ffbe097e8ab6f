"""The cost of a run, against examples computed by hand from the price table."""

from __future__ import annotations

import pytest

from fanout.cost import (
    DISPATCHER_MEMORY_MB,
    DISPATCHER_SECONDS_PER_LAUNCH,
    PRICES_AS_OF,
    USAGE,
    AttemptUsage,
    ControlPlaneUsage,
    TaskSize,
    attempt_compute_usd,
    billed_seconds,
    control_plane_usage,
    control_plane_usd,
    prices_for,
    run_cost,
    task_shares,
)
from fanout.settings import FUNCTIONS

US_EAST_1 = prices_for("us-east-1")
#: 1 vCPU and 2 GB on x86 in us-east-1: 1 x $0.04048 + 2 x $0.004445 = $0.04937 an hour.
SIZE = TaskSize(cpu=1024, memory=2048, architecture="X86_64")


@pytest.mark.parametrize(("seconds", "billed"), [
    (0.0, 60), (1.0, 60), (59.9, 60), (60.0, 60), (60.1, 61), (90.2, 91), (3600.0, 3600),
])
def test_billing_is_per_second_with_a_one_minute_minimum(seconds: float, billed: int) -> None:
    assert billed_seconds(seconds) == billed


def test_a_short_attempt_is_billed_a_full_minute() -> None:
    # Given a 30 s attempt of 1 vCPU / 2 GB on-demand x86
    # When its compute cost is computed
    usd = attempt_compute_usd(cpu=1024, memory=2048, architecture="X86_64",
                              capacity="FARGATE", seconds=30.0, prices=US_EAST_1)
    # Then it is 60 s at $0.04937 an hour, by hand: 60 x 0.04937 / 3600
    assert usd == pytest.approx(0.000822833333, rel=1e-9)


def test_spot_takes_the_discount_and_arm_its_own_price() -> None:
    spot = attempt_compute_usd(cpu=1024, memory=2048, architecture="X86_64",
                               capacity="FARGATE_SPOT", seconds=120.0, prices=US_EAST_1)
    # 120 s x $0.04937 an hour x (1 - 0.70)
    assert spot == pytest.approx(120 * 0.04937 * 0.30 / 3600, rel=1e-9)
    arm = attempt_compute_usd(cpu=512, memory=1024, architecture="ARM64",
                              capacity="FARGATE", seconds=600.0, prices=US_EAST_1)
    # 0.5 x $0.03238 + 1 x $0.00356 = $0.01975 an hour, for 600 s
    assert arm == pytest.approx(0.0032916667, rel=1e-7)


def test_a_run_sums_its_attempts_and_its_control_plane() -> None:
    # Given a run of 3 items whose 4 attempts ran 30 s (billed 60), 90.2 s (billed 91),
    # 120 s on Spot (worth 36 on-demand seconds) and never (no task)
    attempts = [AttemptUsage("FARGATE", 30.0), AttemptUsage("FARGATE", 90.2),
                AttemptUsage("FARGATE_SPOT", 120.0), AttemptUsage("FARGATE", None)]
    # When its cost is computed
    cost = run_cost(attempts, items=3, size=SIZE, prices=US_EAST_1)
    # Then compute is 187 on-demand seconds at $0.04937 an hour: $0.0025644972
    assert cost["compute_usd"] == 0.002564
    # and the control plane, by the usage model: 11 transitions (5 + 1 per item + 3 for
    # the retry: $0.000275), 11 Lambda requests (Expand, Finalize, the dispatcher, Launch
    # and Record per attempt: $0.0000022) of 0.86526 GB-s (10 x 0.08 + 4 dispatches of
    # 20.08 ms at 832 MB: $0.0000115368), 95 write units (5 per item, 11 + 9 per attempt:
    # $0.000059375), 28.6 read units (1 per item, 5 + 1.4 per attempt: $0.000003575)
    assert control_plane_usage(items=3, attempts=4) == ControlPlaneUsage(
        transitions=11, invocations=11, gb_seconds=pytest.approx(0.86526, rel=1e-9),
        writes=95, reads=pytest.approx(28.6, rel=1e-9))
    assert control_plane_usd(items=3, attempts=4, prices=US_EAST_1) == pytest.approx(
        0.000275 + 0.0000022 + 0.86526 * 0.0000133334 + 0.000059375 + 0.000003575, rel=1e-9)
    assert cost["control_plane_usd"] == 0.000352
    assert cost["total_usd"] == round(0.0025644972 + 0.000351686857684, 6)
    assert cost["prices_as_of"] == PRICES_AS_OF


def test_the_config_overrides_a_regions_prices() -> None:
    # Given a config that sets a 50% Spot discount and its own x86 vCPU price in eu-west-1
    prices = prices_for("eu-west-1", {"eu-west-1": {
        "spot_discount": 0.5, "fargate_vcpu_hour": {"X86_64": 0.05}, "as_of": "2026-11-01"}})
    # Then those apply, and the rest is the table's (the fallback region's for a new one)
    assert prices.spot_discount == 0.5
    assert prices.fargate_vcpu_hour == {"X86_64": 0.05, "ARM64": 0.03238}
    assert prices.as_of == "2026-11-01"
    assert prices.transition == US_EAST_1.transition
    # And a region the table lacks falls back to us-east-1's prices
    assert prices_for("ap-south-1") == US_EAST_1


def test_the_dispatcher_is_billed_its_time_per_launch_at_its_memory() -> None:
    # docs/benchmarks.md: 20.08 ms of the dispatcher's CPU per launch; fanout.settings
    # gives it 832 MB (the figure the model uses must be the deployed one)
    spec = next(f for f in FUNCTIONS if f.name == "dispatch")
    assert spec.memory_mb == DISPATCHER_MEMORY_MB
    assert USAGE.dispatcher_gb_seconds_per_attempt == pytest.approx(
        DISPATCHER_SECONDS_PER_LAUNCH * 832 / 1024, rel=1e-12)
    without = control_plane_usage(items=10, attempts=10)
    with_one_more = control_plane_usage(items=10, attempts=11)
    assert with_one_more.gb_seconds - without.gb_seconds == pytest.approx(
        2 * 0.08 + 0.02008 * 832 / 1024, rel=1e-9)
    assert with_one_more.writes - without.writes == 11 + 9


@pytest.mark.parametrize(("attempts", "transitions", "writes", "reads", "usd_per_1000"), [
    (100, 105, 2497, 741, 0.0443),  # happy path
    (110, 135, 2744, 808, 0.0535),  # every 10th item retried once
])
def test_the_model_matches_what_the_benchmark_measures(
        attempts: int, transitions: int, writes: int, reads: int, usd_per_1000: float) -> None:
    # PYTHONPATH=$PWD .venv/bin/python bench/cost.py --items 100 at 2e8bc36 (2026-12-05,
    # the mean of two runs): 100 items of the noop job on the synthesized stack, per line
    # of the bill
    used = control_plane_usage(items=100, attempts=attempts)
    assert used.transitions == transitions
    assert used.writes == pytest.approx(writes, rel=0.02)
    assert used.reads == pytest.approx(reads, rel=0.05)
    # In dollars, within 5%: the model bills each Launch and Record 0.08 GB-s where the
    # benchmark bills their CPU time in process (lower than Lambda's billed duration)
    usd = control_plane_usd(items=100, attempts=attempts, prices=US_EAST_1) * 10
    assert usd == pytest.approx(usd_per_1000, rel=0.05)


def test_the_items_of_a_packed_task_share_its_billed_seconds() -> None:
    # Given a task of 20 s that ran three items of 2, 3 and 5 s (billed a whole minute)
    shares = task_shares(20.0, {0: 2.0, 1: 3.0, 2: 5.0})
    # Then each item pays its own seconds and a third of the other 50 billed seconds
    assert shares == pytest.approx({0: 2 + 50 / 3, 1: 3 + 50 / 3, 2: 5 + 50 / 3})
    # And the shares add up to what the task is billed: no more, no less
    assert sum(shares.values()) == pytest.approx(60.0)
    # And items that ran at once (their seconds add up past the task's) share it pro rata
    overlapped = task_shares(90.0, {0: 80.0, 1: 80.0})
    assert overlapped == pytest.approx({0: 45.0, 1: 45.0})


def test_a_packed_runs_state_machine_and_lambdas_work_per_batch_and_task() -> None:
    # Given 2,000 items at K = 50: 40 batch children, one turn each, 40 tasks
    one = control_plane_usage(items=2000, attempts=2000)
    packed = control_plane_usage(items=2000, attempts=2000, packed=(40, 40, 40))
    # Then its transitions are the run's and one per child, not one per item
    assert (one.transitions, packed.transitions) == (5 + 2000, 5 + 40)
    # And its Launches are per turn, its Records per task: 80, not 4,000
    assert one.invocations - packed.invocations == 4000 - 80
    # And its records are still per item and attempt
    assert (packed.writes, packed.reads) == (one.writes, one.reads)
    # And a second turn (a retried item) costs the child's loop: 3 transitions
    again = control_plane_usage(items=2000, attempts=2001, packed=(40, 41, 41))
    assert again.transitions == packed.transitions + 3
