"""A local run's garbage collection: fewer passes over a heap that mostly only grows.

A run keeps what it makes (moto's tables and executions, the records, the tasks' logs)
until it ends, and makes short-lived containers by the million (every call's parameters
and answers). With Python's default thresholds (a young-generation pass every 700 net
container allocations) the collector ran about 1,300 passes in a 500-item run and a few
full ones over every object of the process (the stand-up's modules and models among them):
about a seventh of the run's CPU time (docs/benchmarks.md, issue 28's seventh pass).

:func:`fewer_collections` (applied with the moto speed-ups, :func:`fanout.local.aws.take_over`,
once the stack is stood up) raises the young generation's threshold for the duration of a
run and freezes what the stand-up made (``gc.freeze``: never scanned until unfrozen);
both are put back when the last run in the process ends. Nothing is left uncollected:
cycles are still found, in fewer and larger passes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

#: The collector's thresholds during a run (Python's default: 700, 10, 10).
THRESHOLDS = (10_000, 10, 10)

_lock = threading.Lock()
_runs = 0
_saved: tuple[int, int, int] = (700, 10, 10)


def fewer_collections() -> Callable[[], None]:
    """Set :data:`THRESHOLDS` and freeze the heap so far; returns what puts them back.
    Runs may overlap in one process: the first to start sets them, the last to end puts
    Python's own back."""
    global _runs, _saved
    with _lock:
        if _runs == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*THRESHOLDS)
        _runs += 1
    done = threading.Event()

    def restore() -> None:
        global _runs
        with _lock:
            if done.is_set():
                return
            done.set()
            _runs -= 1
            if _runs == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()

    return restore
