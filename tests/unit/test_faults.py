"""`--faults`: one parser for every kind of value, each kind with its own range."""

from __future__ import annotations

import pytest

from fanout.local.faults import Faults, FaultsError


def test_each_kind_of_fault_reads_its_value() -> None:
    faults = Faults.parse("throttle=0.5,launch_latency=2,vcpu_quota=1,ddb_hot_key=10,seed=3")
    assert (faults.throttle, faults.launch_latency, faults.vcpu_quota, faults.ddb_hot_key,
            faults.seed) == (0.5, 2.0, 1.0, 10.0, 3)


@pytest.mark.parametrize(("text", "says"), [
    ("throttle=2", "'2' is not a fraction between 0 and 1"),
    ("throttle=nan", "'nan' is not a fraction between 0 and 1"),
    ("launch_latency=-1", "'-1' is not a number of seconds between 0 and 86400"),
    ("capacity_outage=86401", "is not a number of seconds between 0 and 86400"),
    ("vcpu_quota=0.1", "'0.1' is not a number of vCPUs between 0.25 and 100000"),
    ("ddb_hot_key=x", "'x' is not a number of write units per second between 1 and 1000000"),
    ("thunder=1", "thunder: unknown fault"),
])
def test_a_value_out_of_its_kinds_range_is_named(text: str, says: str) -> None:
    with pytest.raises(FaultsError) as exc:
        Faults.parse(text)
    assert says in str(exc.value)
