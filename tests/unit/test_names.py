"""Names fanout and AWS share (fanout.names): each made in one place, by one rule."""

from __future__ import annotations

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
