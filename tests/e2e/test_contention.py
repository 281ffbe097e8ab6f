"""DynamoDB's contention, emulated (``--faults ddb_conflict``): cancelled transactions are
retried, never read as a lost race, so no event is dropped and no item runs twice."""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytestmark = pytest.mark.slow


def test_a_run_under_transaction_conflicts_runs_every_item_once(e2e_stack, fanout_local,
                                                                tmp_path):
    # Given 300 no-op items that may be retried (a dropped event would show as a second
    # task), and 30% of the transactions that meet another on an item cancelled
    spec = tmp_path / "three-hundred.json"
    spec.write_text(json.dumps({
        "job": "prog", "params": {"n": {"range": {"start": 0, "stop": 300}}},
        "command": ["--exit", "0"], "max_concurrency": 100,
        "retry": {"max_attempts": 3, "delay_seconds": 0, "backoff_rate": 1.0,
                  "on_infrastructure": True},
    }))

    # When the run ends
    outcome = fanout_local(spec, "--config", e2e_stack, "--reconcile-seconds", "0.5",
                           "--faults", "ddb_conflict=0.3,seed=7", timeout=600)

    # Then transactions were cancelled for conflicts
    summary = outcome.summary
    assert summary is not None, outcome.stderr[-3000:]
    assert summary["faults"].get("ddb_conflict", 0) > 0, summary["faults"]
    # and the run SUCCEEDED with every item run exactly once (one attempt, one task)
    assert (summary["status"], outcome.code) == ("SUCCEEDED", 0), outcome.stderr[-3000:]
    items = outcome.items()
    assert len(items) == summary["total"] == 300
    assert [(i["index"], i["attempts"], len(i["tasks"])) for i in items
            if i["attempts"] != 1 or len(i["tasks"]) != 1] == []
    # and its totals are the count of item states
    states = Counter(i["status"] for i in items)
    assert states == {"SUCCEEDED": 300}
    assert (summary["succeeded"], summary["failed"], summary["timed_out"],
            summary["aborted"]) == (300, 0, 0, 0)
