"""Under injected faults the invariants hold: every item terminal, no duplicate launch,
run totals equal to item states, the run's status right."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import SPECS

pytestmark = pytest.mark.slow

ALL = "throttle=0.3,capacity=0.3,spot=0.3,lose_event=0.3,duplicate_event=0.3,launch_crash=0.3"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@pytest.mark.parametrize("faults", [
    "throttle=0.3", "capacity=0.3", "spot=0.3", "lose_event=0.3", "duplicate_event=0.3",
    "launch_crash=0.3", ALL,
])
def test_invariants_hold_under_faults(e2e_stack, fanout_local, faults):
    # Given 100 items of a program that succeeds, launched on Spot then on-demand,
    # with up to 4 attempts, and 30% of the chances for each fault taken
    spec = SPECS / "hundred.json"

    # When the run ends, behind an emulated Fargate bucket of 100 and 1,000 a second that
    # the gate paces to (--launch-rate): without one the gate is told of an unlimited
    # bucket, whose reserve (a tenth of its 100,000 burst) it waits to refill after every
    # injected throttle, some 10 s each at the AIMD floor's rate: minutes of waiting that
    # assert nothing here (pacing is test_gate.py's). This bucket's reserve is 10 tokens.
    outcome = fanout_local(spec, "--config", e2e_stack, "--concurrency", "50",
                           "--reconcile-seconds", "0.5", "--faults", f"{faults},seed=7",
                           "--launch-rate", "100,1000", timeout=420)

    # Then each fault asked for struck
    summary = outcome.summary
    assert summary is not None, outcome.stderr[-3000:]
    for name in (pair.split("=")[0] for pair in faults.split(",")):
        assert summary["faults"].get(name, 0) > 0, (name, summary["faults"])
    # and every item ended, none launched more tasks than its attempts
    items = outcome.items()
    assert len(items) == summary["total"] == 100
    assert {i["status"] for i in items} <= TERMINAL
    over = [(i["index"], i["attempts"], len(i["tasks"])) for i in items
            if not 1 <= len(i["tasks"]) <= i["attempts"]]
    assert over == []
    # and the run's totals are the count of item states
    states = Counter(i["status"] for i in items)
    assert (summary["succeeded"], summary["failed"], summary["timed_out"], summary["aborted"]) \
        == (states["SUCCEEDED"], states["FAILED"], states["TIMED_OUT"], states["ABORTED"])
    # and the run succeeded exactly when every item did (no failure is tolerated)
    everything_succeeded = states["SUCCEEDED"] == 100
    assert summary["status"] == ("SUCCEEDED" if everything_succeeded else "FAILED")
    assert outcome.code == (0 if everything_succeeded else 1)
