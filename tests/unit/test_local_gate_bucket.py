"""What the local mode tells the launch gate of the emulated Fargate's bucket (ADR 0012)."""

from __future__ import annotations

import json

from fanout.config import LaunchGateConfig
from fanout.local.tasks import LaunchRate, gate_env
from fanout.runtime.bucket import Bucket


def told(env: dict[str, str]) -> LaunchGateConfig:
    """The gate's configuration, checked as the dispatcher checks it (its model's bounds)."""
    return LaunchGateConfig.model_validate(json.loads(env["FANOUT_LAUNCH_GATE"]))


def test_without_a_launch_rate_the_gate_is_told_no_permit_need_wait() -> None:
    # Given no --launch-rate and no launch_gate in the config (the emulation throttles nothing)
    # When the gate's environment is made
    config = told(gate_env(None))
    # Then both capacity types get a bucket no local run empties: 5,000 launches asked within
    # a second all get a permit (what the burst gives past its reserve, and a second of
    # refill), and it refills faster than any machine launches
    for bucket in (config.FARGATE, config.FARGATE_SPOT):
        gate = Bucket(burst=bucket.burst, rate=bucket.per_second)
        assert bucket.burst - gate.reserve + bucket.per_second * 1.0 >= 5_000
        assert bucket.per_second >= 1_000
        # And a throttle injected by --faults holds the launches back a tenth of a second at
        # most, even at the rate's floor after many throttles in a row
        for _ in range(10):
            gate.throttled()
        assert gate.wait(gate.at) <= 0.11


def test_a_launch_rate_is_told_to_the_gate_and_a_configured_gate_is_kept() -> None:
    # Given --launch-rate 10,5
    config = told(gate_env(LaunchRate(10, 5.0)))
    # Then the gate paces to that very bucket, on both capacity types
    assert (config.FARGATE.burst, config.FARGATE.per_second) == (10, 5.0)
    assert config.FARGATE_SPOT == config.FARGATE
    # And with the config naming a launch_gate and no --launch-rate, the template's stays
    assert gate_env(None, configured=True) == {}
    # And --launch-rate wins over the config
    assert told(gate_env(LaunchRate(3, 1.0), configured=True)).FARGATE.burst == 3
