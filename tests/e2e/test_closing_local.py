"""The state machine's Finalize loop in the local mode: a run closed over several turns."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_finalize_loops_in_the_local_state_machine_until_done(e2e_stack, monkeypatch,
                                                              tmp_path) -> None:
    from fanout.local.runner import LocalOptions, LocalRun
    from fanout.runtime import closing

    # Given Finalize's invocations allowed one page of two records each (an item and its
    # attempt), and a run of 5 items of which 4 fail
    monkeypatch.setattr(closing, "PAGE_RECORDS", 2)
    monkeypatch.setattr(closing.Budget, "of",
                        classmethod(lambda cls, context: cls(0.0, clock=lambda: 0.0)))
    spec: dict[str, Any] = {
        "job": "prog", "retry": {"max_attempts": 1}, "tolerated_failure_percent": 100,
        "items": [{"code": 0 if i == 2 else 3, "sleep": 0, "fail": 0} for i in range(5)]}
    local = LocalRun(LocalOptions(config_path=e2e_stack, records_dir=tmp_path / "runs",
                                  stop_grace_seconds=0.5))
    # When it runs
    summary = local.run(spec)
    # Then the synthesized state machine called Finalize again on each "done": false, one
    # turn per item, until it listed every failed item
    assert local.functions is not None
    assert local.functions.invocations["finalize"] == 5
    assert summary.status == "SUCCEEDED"  # every failure tolerated
    assert (summary.succeeded, summary.failed) == (1, 4)
    assert [i.status for i in summary.items] == ["FAILED", "FAILED", "SUCCEEDED", "FAILED",
                                                 "FAILED"]
