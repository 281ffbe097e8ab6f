"""The pipeline loop's pure parts (fanout.runtime.pipeline, fanout.runtime.step_ended):
what a step's status is when its run ends, what crosses the state machine's state, and
which input starts what. The races on the records are tested on DynamoDB's conditional
writes (moto): tests/integration/test_pipelines_aws.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fanout.records.model import RunRecord
from fanout.runtime.errors import InvalidPipelineSpec
from fanout.runtime.pipeline import document_of, output
from fanout.runtime.step_ended import ExecutionEnded, run_ending


def run(status: str, **counts: int) -> RunRecord:
    return RunRecord(run_id="p.s", job="analyzer", status=status,  # type: ignore[arg-type]
                     started_at="2026-12-05T00:00:00Z", total=sum(counts.values()) or 1,
                     counts={k.upper(): v for k, v in counts.items()},
                     summary="items: unknown job" if status == "REJECTED" else None)


@pytest.mark.parametrize(("record", "execution", "expected"), [
    # The run's record, once closed, says how the step ended, with its counts
    (run("SUCCEEDED", succeeded=3), "SUCCEEDED", ("SUCCEEDED", None)),
    (run("FAILED", succeeded=1, failed=1), "FAILED",
     ("FAILED", "1 failed, 0 timed out, 0 aborted of 2")),
    (run("REJECTED"), "FAILED", ("REJECTED", "items: unknown job")),
    (run("ABORTED", aborted=2), "ABORTED", ("ABORTED", "0 failed, 0 timed out, 2 aborted of 2")),
    # A run not closed yet (Abort closes it on the same event), or never recorded: the
    # execution's status
    (run("RUNNING", running=2), "TIMED_OUT", ("ABORTED", "its run's execution ended TIMED_OUT")),
    (None, "FAILED", ("FAILED", "its run's execution ended FAILED")),
    (None, "SUCCEEDED", ("SUCCEEDED", None)),
])
def test_a_steps_status_when_its_run_ends(record: RunRecord | None, execution: str,
                                          expected: tuple[str, str | None]) -> None:
    status, reason, _ = run_ending(record, execution)
    assert (status, reason) == expected


def test_only_ids_a_counter_and_a_summary_cross_the_pipeline_state() -> None:
    # Given a pipeline run's record with a step of 100,000 items
    record = {"pipeline_run_id": "p1", "pipeline": "portfolio", "status": "RUNNING",
              "changes": 7, "steps": {"years": {"status": "RUNNING", "total": 100_000},
                                      "report": {"status": "PENDING"}}}
    # When Decide answers the state machine
    out = output(record, ended=False)
    # Then its output is a few hundred bytes, whatever the steps' sizes
    assert set(out) == {"pipeline_run_id", "ended", "status", "changes", "again",
                        "wait_seconds", "summary"}
    assert out["changes"] == 7
    assert out["summary"] == "pipeline portfolio run p1 RUNNING: years RUNNING, report PENDING"
    assert len(json.dumps(out)) < 400


def test_what_an_execution_input_starts() -> None:
    named: dict[str, Any] = {"nightly": {"steps": {"a": {"job": "analyzer",
                                                         "items": [{"x": 1}]}}}}
    # A document is itself; a configured name is that document, named by its key, with
    # the fields the input adds
    given = {"pipeline": "p", "steps": {}}
    assert document_of(given, named) is given
    assert document_of({"pipeline": "nightly", "trigger": "schedule"}, named) == {
        "pipeline": "nightly", "trigger": "schedule", **named["nightly"]}
    # Anything else fails the execution, saying what an input may be
    with pytest.raises(InvalidPipelineSpec, match="no pipeline 'nope' in the config"):
        document_of({"pipeline": "nope"}, named)
    with pytest.raises(InvalidPipelineSpec, match="the input must be a pipeline document"):
        document_of([1, 2], named)


def test_an_execution_status_event_is_read_as_eventbridge_sends_it() -> None:
    event = ExecutionEnded.model_validate({"detail-type": "Step Functions Execution Status "
                                           "Change", "detail": {
                                               "name": "p1.years", "status": "SUCCEEDED",
                                               "stateMachineArn": "arn:...:Fanout-run"}})
    assert (event.name, event.status, event.state_machine) == (
        "p1.years", "SUCCEEDED", "arn:...:Fanout-run")
