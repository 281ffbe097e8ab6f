"""A local run's garbage collection: fewer passes during runs, Python's own after them."""

from __future__ import annotations

import gc
import weakref

from fanout.local.collector import THRESHOLDS, fewer_collections


def test_runs_collect_less_often_and_put_python_s_collector_back() -> None:
    # Given the collector as the process had it
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    # When a run starts, and another overlaps it
    first = fewer_collections()
    assert gc.get_threshold() == THRESHOLDS and gc.get_freeze_count() > frozen
    second = fewer_collections()
    # Then the first to end leaves the second's setting, the last puts Python's back
    first()
    first()  # ending twice is ending once
    assert gc.get_threshold() == THRESHOLDS
    second()
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_a_cycle_made_during_a_run_is_still_collected() -> None:
    # Given a run in progress and a cycle it drops
    restore = fewer_collections()
    try:
        class Node:
            pass

        node = Node()
        node.self = node  # type: ignore[attr-defined]
        gone = weakref.ref(node)
        del node
        # When the collector passes, Then the cycle is freed
        gc.collect()
        assert gone() is None
    finally:
        restore()
