"""The local mode refuses, before anything starts, a run the machine cannot hold in flight."""

from __future__ import annotations

import pytest

from fanout.local import checks
from fanout.local.checks import LocalInputError, check_threads, threads_left


def test_this_machine_reports_how_many_threads_are_left() -> None:
    found = threads_left()
    assert found is not None  # Linux: /proc says it
    left, limit = found
    assert left > 0 and limit.startswith(("kernel.", "the cgroup"))


def test_a_run_that_would_run_out_of_threads_is_refused_saying_what_fits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "threads_left", lambda: (12_000, "kernel.pid_max"))
    with pytest.raises(LocalInputError) as caught:
        check_threads(10_000)
    text = str(caught.value)
    assert "max_concurrency" in text and "10000 items at once" in text
    assert "kernel.pid_max" in text and "--concurrency 3666 fits" in text


def test_a_run_that_fits_or_a_machine_that_cannot_say_goes_ahead(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "threads_left", lambda: (20_000, "kernel.pid_max"))
    check_threads(5_000)
    monkeypatch.setattr(checks, "threads_left", lambda: None)
    check_threads(1_000_000)
