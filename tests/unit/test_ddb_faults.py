"""The DynamoDB contention faults of the local mode are parsed like the others."""

from __future__ import annotations

import pytest

from fanout.local.faults import Dice, Faults, FaultsError


def test_ddb_faults_parse():
    faults = Faults.parse("ddb_conflict=0.3,ddb_hot_key=1000,seed=7")
    assert (faults.ddb_conflict, faults.ddb_hot_key, faults.any) == (0.3, 1000.0, True)
    assert Faults.parse("ddb_hot_key=5").any


def test_bad_ddb_faults_are_named():
    with pytest.raises(FaultsError) as raised:
        Faults.parse("ddb_conflict=2,ddb_hot_key=0,ddb_hot_key=x")
    assert raised.value.fields == ["ddb_conflict", "ddb_hot_key", "ddb_hot_key"]


def test_throttled_writes_are_counted_with_the_faults():
    dice = Dice(Faults.parse("ddb_hot_key=5"))
    dice.note("ddb_hot_key")
    assert dice.counts["ddb_hot_key"] == 1
