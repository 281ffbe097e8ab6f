"""Names fanout and AWS share (fanout.names): each made in one place, by one rule."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from fanout.names import console_url, output_id

ARN = "arn:aws:states:eu-west-1:123456789012:execution:fanout-runs:my-run"


def test_console_url_is_the_executions_page_in_its_region() -> None:
    # Given an execution ARN / When its console page is asked for
    url = console_url(ARN)
    # Then it is the Step Functions console of the ARN's region, on that execution
    assert url == ("https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1"
                   f"#/v2/executions/details/{ARN}")


@pytest.mark.parametrize("arn", ["", None, "not-an-arn", "arn:aws:states",
                                 "arn:aws:states:eu-west-1:123:execution"])
def test_console_url_of_an_unknown_or_malformed_arn_is_empty(arn: str | None) -> None:
    # A run with no execution (local) or a malformed ARN has no link, and nothing raises.
    assert console_url(arn) == ""


def test_the_runtimes_message_has_no_link_for_a_malformed_arn() -> None:
    # Given a run record whose execution ARN is malformed (the runtime once raised
    # IndexError here, so Finalize and Abort could not announce the run)
    from fanout.records.model import RunRecord
    from fanout.runtime.notify import message_of

    run = RunRecord(run_id="r1", job="analyzer", status="FAILED",
                    started_at="2026-01-01T00:00:00Z", execution_arn="arn:broken")
    # When its notification is made / Then it is, with an empty link
    assert message_of(run, [])["console_url"] == ""
    assert message_of(replace(run, execution_arn=ARN), [])["console_url"] == console_url(ARN)


@pytest.mark.parametrize(("job", "spelled"), [("analyzer", "Analyzer"),
                                              ("my-job-2", "MyJob2")])
def test_output_id_is_how_the_stack_names_a_jobs_outputs(job: str, spelled: str) -> None:
    assert output_id(job) == spelled


def test_a_made_run_id_is_the_job_the_time_and_six_random_hex_digits() -> None:
    from datetime import UTC, datetime

    from fanout.names import new_run_id, run_id_problem

    # Given a job and a moment / When two run ids are made for it
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first, second = new_run_id("analyzer", moment), new_run_id("analyzer", moment)
    # Then each names the job and the time, and they differ (random tail)
    assert re.fullmatch(r"analyzer-20260102T030405Z-[0-9a-f]{6}", first), first
    assert first != second
    # And each is a valid execution name
    assert run_id_problem(first) is None


@pytest.mark.parametrize("job", ["j" * 40, "j" * 56, "j" * 57, "j" * 200])
def test_a_made_run_id_fits_step_functions_80_character_execution_name(job: str) -> None:
    from fanout.names import MAX_EXECUTION_NAME, new_run_id, run_id_problem

    # Given a job of any length / When a run id is made for it
    run_id = new_run_id(job)
    # Then it is at most 80 characters, keeps its time and random tail, and is accepted
    assert len(run_id) <= MAX_EXECUTION_NAME == 80
    assert re.search(r"-\d{8}T\d{6}Z-[0-9a-f]{6}$", run_id), run_id
    assert run_id_problem(run_id) is None
