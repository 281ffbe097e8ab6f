"""The pipeline spec: its checks (one line naming the step and field) and the steps' order."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fanout.config import FanoutConfig
from fanout.pipelines.model import Pipeline, Step, is_pipeline_document
from fanout.pipelines.plan import decide, find_cycle, pipeline_status, waves
from fanout.pipelines.validate import PipelineError, parse_pipeline

#: The seed's case: B only after A has succeeded, C at any time.
SEED: dict[str, Any] = {
    "pipeline": "seed",
    "timeout_seconds": 3600,
    "steps": {
        "A": {"job": "analyzer", "items": [{"year": 1999}]},
        "B": {"job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 2003}}},
              "needs": ["A"]},
        "C": {"job": "analyzer", "items": [{"year": 2010}]},
    },
}


def with_steps(**steps: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SEED)
    for name, body in steps.items():
        if body is None:
            del doc["steps"][name]
        else:
            doc["steps"][name] = body
    return doc


def refusal(doc: Any, config: FanoutConfig) -> str:
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(doc, config)
    message = caught.value.message
    assert "\n" not in message
    return message


def test_the_seed_case_parses_into_its_steps(config: FanoutConfig) -> None:
    pipeline = parse_pipeline(SEED, config)
    assert list(pipeline.steps) == ["A", "B", "C"]
    assert pipeline.steps["B"].needs == ("A",)
    assert pipeline.steps["C"].needs == ()
    assert pipeline.timeout_seconds == 3600
    assert "needs" not in pipeline.steps["B"].spec
    assert waves(pipeline.needs()) == [["A", "C"], ["B"]]


@pytest.mark.parametrize(("doc", "expected"), [
    (with_steps(B={"job": "analyzer", "items": [{"year": 1}], "needs": ["X"]}),
     "steps.B.needs[0]: unknown step 'X' (steps: A, B, C)"),
    (with_steps(A={"job": "analyzer", "items": [{"year": 1}], "needs": ["B"]}),
     "steps.A.needs: the steps wait for each other in a cycle (A -> B -> A)"),
    (with_steps(A={"job": "analyzer", "items": [{"year": 1}], "needs": ["A"]}),
     "steps.A.needs[0]: a step cannot need itself"),
    (with_steps(**{"bad name": {"job": "analyzer", "items": [{"year": 1}]}}),
     "steps.bad name: 'bad name' is not a step name"),
    (with_steps(C={"job": "analyzer", "items": [{"year": 1}], "when": "sometimes"}),
     "steps.C.when: must be one of on_success, always, not 'sometimes'"),
    (with_steps(C={"job": "nope", "items": [{"year": 1}]}),
     "steps.C.job: unknown job 'nope'"),
    (with_steps(C={"job": "analyzer", "items": [{"year": 1}], "retry": {"max_attempts": 0}}),
     "steps.C.retry.max_attempts: must be at least 1"),
    (with_steps(C={"job": "analyzer", "items": [{"y": 1}]}),
     "steps.C.job analyzer command[1]: unknown placeholder {year}"),
    (with_steps(C={"job": "analyzer", "items": [{"year": 1}], "logical_time": "2024-01-01"}),
     "steps.C.logical_time: a step cannot set it; give it once, at the pipeline's top level"),
    (with_steps(C={"job": "analyzer", "items_from": {"step": "A"}}),
     "steps.C.items_from.step: 'A' must be in needs too (add it)"),
    (with_steps(C={"job": "analyzer", "items_from": {"step": "Z"}, "needs": ["A"]}),
     "steps.C.items_from.step: unknown step 'Z'"),
    ({**SEED, "timeout_seconds": 0}, "timeout_seconds: must be a whole number of seconds"),
    ({**SEED, "pipeline": "has space"}, "pipeline: 'has space' is not a pipeline name"),
    ({**SEED, "stepz": {}}, "stepz: unknown key"),
    ({"pipeline": "p", "steps": {}}, "steps: must be an object naming at least one step"),
], ids=["unknown-need", "cycle", "self-need", "bad-step-name", "bad-when", "unknown-job",
        "bad-retry", "bad-placeholder", "step-sets-pipeline-field", "items-from-not-needed",
        "items-from-unknown", "bad-timeout", "bad-pipeline-name", "unknown-top-key",
        "no-steps"])
def test_a_bad_pipeline_is_refused_in_one_line_naming_the_step_and_field(
    doc: dict[str, Any], expected: str, config: FanoutConfig
) -> None:
    assert expected in refusal(doc, config)


def test_a_longer_cycle_is_named_along_its_steps(config: FanoutConfig) -> None:
    doc = with_steps(A={"job": "analyzer", "items": [{"year": 1}], "needs": ["C"]},
                     C={"job": "analyzer", "items": [{"year": 1}], "needs": ["B"]})
    assert "(A -> C -> B -> A)" in refusal(doc, config)


def test_a_step_over_the_item_cap_is_refused_before_anything_runs(
    make_config: Any,
) -> None:
    config = make_config(max_items=2)
    assert refusal(SEED, config).endswith("steps.B.params.year: 3 values is over the cap of 2")


def test_a_step_fed_by_an_earlier_step_checks_its_own_fields(config: FanoutConfig) -> None:
    doc = with_steps(C={"job": "analyzer", "items_from": {"step": "B"}, "needs": ["B"],
                        "command": ["-y", "{year}", "--in", "{input}"]})
    pipeline = parse_pipeline(doc, config)
    assert pipeline.steps["C"].items_from_step == "B"
    assert pipeline.steps["C"].spec["items_from"] == {"step": "B"}


def test_only_documents_with_steps_are_pipelines() -> None:
    assert is_pipeline_document(SEED)
    assert not is_pipeline_document({"job": "analyzer", "items": [{}]})
    assert not is_pipeline_document([])


def test_find_cycle_and_waves_on_a_diamond() -> None:
    needs = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    assert find_cycle(needs) is None
    assert waves(needs) == [["a"], ["b", "c"], ["d"]]
    assert find_cycle({**needs, "a": ["d"]}) == ["a", "d", "b", "a"]


def pipeline_of(**needs: tuple[str, ...]) -> Pipeline:
    return Pipeline("p", {n: Step(n, {}, tuple(v), "always" if n.startswith("always")
                                  else "on_success") for n, v in needs.items()})


def test_a_step_starts_when_its_needs_succeeded_and_not_before() -> None:
    pipeline = pipeline_of(A=(), B=("A",), C=())
    assert decide(pipeline, {"A": "PENDING", "B": "PENDING", "C": "PENDING"}).start == ["A", "C"]
    assert decide(pipeline, {"A": "RUNNING", "B": "PENDING", "C": "RUNNING"}).start == []
    assert decide(pipeline, {"A": "SUCCEEDED", "B": "PENDING", "C": "RUNNING"}).start == ["B"]


def test_a_step_whose_need_failed_is_skipped_with_the_reason_and_so_are_its_dependants() -> None:
    pipeline = pipeline_of(A=(), B=("A",), D=("B",), always_report=("B", "C"), C=())
    status = {"A": "FAILED", "B": "PENDING", "D": "PENDING", "always_report": "PENDING",
              "C": "SUCCEEDED"}
    first = decide(pipeline, status)
    assert first.skip == {"B": "needs A (FAILED), which did not succeed"}
    status.update(dict.fromkeys(first.skip, "SKIPPED"))
    second = decide(pipeline, status)
    assert second.skip == {"D": "needs B (SKIPPED), which did not succeed"}
    assert second.start == ["always_report"]  # when: always runs once its needs ended
    status.update(D="SKIPPED", always_report="SUCCEEDED")
    assert pipeline_status(status) == "FAILED"


def test_the_pipeline_succeeds_only_when_every_step_did() -> None:
    assert pipeline_status({"A": "SUCCEEDED", "B": "RUNNING"}) == "RUNNING"
    assert pipeline_status({"A": "SUCCEEDED", "B": "SUCCEEDED"}) == "SUCCEEDED"
    assert pipeline_status({"A": "SUCCEEDED", "B": "ABORTED"}) == "FAILED"


def test_a_rerun_of_failed_reruns_failed_steps_then_what_follows_them() -> None:
    from fanout.pipelines.plan import rerun_plan

    pipeline = pipeline_of(A=(), B=("A",), C=(), D=("B",), always_E=("B",), F=("C",))
    status = {"A": "SUCCEEDED", "B": "FAILED", "C": "SUCCEEDED", "D": "SKIPPED",
              "always_E": "SUCCEEDED", "F": "REJECTED"}
    ran = {"A": True, "B": True, "C": True, "always_E": True}
    assert rerun_plan(pipeline, status, True, ran) == {
        "A": "carry", "C": "carry", "B": "rerun_failed", "F": "fresh",
        # D was skipped because of B; E took B's outputs, which change
        "D": "fresh", "always_E": "fresh"}
    assert set(rerun_plan(pipeline, status, False, ran).values()) == {"fresh"}


@pytest.mark.parametrize("command", ["local", "start"])
def test_the_cli_refuses_a_bad_pipeline_with_exit_2_one_line_and_nothing_written(
    command: str, capsys: pytest.CaptureFixture[str], cdk_json: Any, tmp_path: Any
) -> None:
    from fanout.cli.main import main

    # Given a pipeline whose step B needs a step that does not exist
    spec = tmp_path / "pipeline.json"
    spec.write_text(json.dumps(with_steps(B={"job": "analyzer", "items": [{"year": 1}],
                                             "needs": ["X"]})))
    records = tmp_path / "runs"
    extra = ["--records-dir", str(records)] if command == "local" else []

    # When it is run
    code = main([command, str(spec), "--config", str(cdk_json), *extra])

    # Then: exit 2, one line naming the step and field, no records
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == ("fanout: invalid pipeline spec: steps.B.needs[0]: unknown step 'X' "
                           "(steps: A, B, C)")
    assert not records.exists()


def test_a_rerun_begins_from_the_old_steps_as_the_local_and_aws_reruns_both_do(
    config: FanoutConfig,
) -> None:
    from fanout.pipelines.plan import rerun_start

    # Given a pipeline run where A failed (so B was SKIPPED) and C succeeded
    pipeline = parse_pipeline(SEED, config)
    old = {"A": {"status": "FAILED", "runs": ["p1.A"]},
           "B": {"status": "SKIPPED", "runs": []},
           "C": {"status": "SUCCEEDED", "runs": ["p1.C"], "total": 1, "succeeded": 1}}
    # When a rerun of its failed steps begins
    start = rerun_start(pipeline, old, True, "p1")
    # Then C is carried over, A reruns its failed items of its last run, B runs afresh
    assert start == {
        "A": {"runs": ["p1.A"], "rerun_of": "p1.A"},
        "C": {"status": "SUCCEEDED", "runs": ["p1.C"], "total": 1, "succeeded": 1,
              "reason": "carried over from p1"}}
    # And a rerun of all of it begins every step afresh
    assert rerun_start(pipeline, old, False, "p1") == {}


def test_pipelines_named_in_the_config_are_checked_and_scheduled(
    config: FanoutConfig,
) -> None:
    from fanout.config import ConfigError
    from fanout.pipelines.validate import check_pipelines
    from infra.schedules import schedule_input

    context = config.model_dump(mode="json")
    # Given a config naming the seed's pipeline, scheduled every morning from a date
    good = FanoutConfig.model_validate({
        **context, "pipelines": {"seed": SEED},
        "schedules": [{"name": "mornings", "expression": "cron(0 9 * * ? *)",
                       "timezone": "Europe/Paris", "start_date": "2027-01-04",
                       "pipeline": "seed"}]})
    check_pipelines(good)
    # Then the schedule starts the pipeline's document, marked as the schedule's
    started = json.loads(schedule_input(good.schedules[0], good.pipelines))
    assert started["steps"] == SEED["steps"] and started["pipeline"] == "seed"
    assert (started["trigger"], started["schedule"]) == ("schedule", "mornings")
    assert started["logical_time"] == "<aws.scheduler.scheduled-time>"
    # And a bad pipeline in the config is named by its key, step and field
    bad = FanoutConfig.model_validate({**context, "pipelines": {"seed": with_steps(
        B={"job": "analyzer", "items": [{"year": 1}], "needs": ["X"]})}})
    with pytest.raises(ConfigError) as caught:
        check_pipelines(bad)
    assert caught.value.message.endswith(
        "fanout.pipelines.seed.steps.B.needs[0]: unknown step 'X' (steps: A, B, C)")
    # And a schedule naming no configured pipeline is refused
    with pytest.raises(ValueError, match="no pipeline 'nope' in pipelines"):
        FanoutConfig.model_validate({**context, "schedules": [
            {"name": "x", "expression": "cron(0 9 * * ? *)", "pipeline": "nope"}]})


def test_fan_in_lists_every_output_of_the_succeeded_items_of_the_needed_steps(
    tmp_path: Any,
) -> None:
    from fanout.local.fanin import succeeded_items, write_inputs, write_step_items

    # Given a step's run with two items, one succeeded, each having written files
    records = tmp_path / "runs"
    run = records / "p-1.years"
    run.mkdir(parents=True)
    rows = [{"record": "run", "run_id": "p-1.years", "status": "FAILED"},
            {"record": "item", "index": 0, "params": {"year": 1999}, "status": "SUCCEEDED"},
            {"record": "item", "index": 1, "params": {"year": 2000}, "status": "FAILED"}]
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for index in (0, 1):
        (run / "outputs" / str(index) / "part").mkdir(parents=True)
        (run / "outputs" / str(index) / "part" / "result.csv").write_text("x" * (index + 3))

    # When the items of the step after it and its FANOUT_INPUTS manifest are made
    items = succeeded_items(records, ["p-1.years"])
    write_step_items(tmp_path / "items.jsonl", items)
    count = write_inputs(tmp_path / "inputs.jsonl", records, {"years": ["p-1.years"]})

    # Then only the succeeded item feeds it, with its output location
    location = str(run.resolve() / "outputs" / "0") + "/"
    assert [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()] \
        == [{"year": 1999, "input": location}]
    assert count == 1
    assert json.loads((tmp_path / "inputs.jsonl").read_text()) == {
        "step": "years", "run_id": "p-1.years", "index": 0, "params": {"year": 1999},
        "location": location, "key": "part/result.csv", "size": 3}


def test_fanout_status_reads_a_local_pipeline_run(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Any) -> None:
    from fanout.cli.main import main
    from fanout.local.pipeline import FORMAT, PIPELINE_RECORD

    # Given a local pipeline run's record, as fanout local leaves it
    folder = tmp_path / "runs" / "seed-1"
    folder.mkdir(parents=True)
    step = {"status": "SUCCEEDED", "run_id": "seed-1.A", "runs": ["seed-1.A"], "reason": None,
            "started_at": None, "finished_at": None, "total": 1, "succeeded": 1,
            "needs": [], "when": "on_success"}
    record = {"pipeline_run_id": "seed-1", "pipeline": "seed", "status": "SUCCEEDED",
              "reason": None, "started_at": None, "finished_at": None,
              "timeout_seconds": None, "parent_pipeline_run": None, "records": str(folder),
              "steps": {"A": step}, "format": FORMAT, "pid": 1, "spec": SEED, "config": "x"}
    (folder / PIPELINE_RECORD).write_text(json.dumps(record))
    # When its status is read with --local
    code = main(["status", "seed-1", "--local", "--records-dir", str(tmp_path / "runs"),
                 "--json"])
    # Then it is the pipeline's summary: its status and each step's status and run id
    shown = json.loads(capsys.readouterr().out)
    assert code == 0
    assert shown["status"] == "SUCCEEDED"
    assert shown["steps"]["A"]["run_id"] == "seed-1.A" and "spec" not in shown
