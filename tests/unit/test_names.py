"""Names fanout and AWS share (fanout.names): each made in one place, by one rule."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from fanout.names import console_url, logs_console_url, output_id

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


TASK = "arn:aws:ecs:eu-west-1:123456789012:task/fanout-cluster/0f1e2d3c4b5a"
LOGS = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:"


def test_logs_console_url_is_the_streams_page_in_the_tasks_region() -> None:
    # Given an attempt's task ARN, its job's log group and its stream
    url = logs_console_url(TASK, "/fanout/analyzer", "fanout/analyzer/0f1e2d3c4b5a")
    # Then it is the CloudWatch console of the task's region on that stream, each name
    # percent-encoded twice with '%' written '$' ('/' is $252F), as the console reads it
    assert url == (f"{LOGS}log-groups/log-group/$252Ffanout$252Fanalyzer"
                   "/log-events/fanout$252Fanalyzer$252F0f1e2d3c4b5a")


def test_logs_console_url_escapes_what_the_fragment_cannot_hold() -> None:
    # Names with '$', '#', '[', a space, '&' and '<' stay inside their path segment
    url = logs_console_url(ARN, "/aws/vendedlogs/states/my$group", "a [b]#c&d <e>")
    # The execution's region, and nothing of the names left unescaped
    assert url.startswith(LOGS)
    assert url.endswith("log-group/$252Faws$252Fvendedlogs$252Fstates$252Fmy$2524group"
                        "/log-events/a$2520$255Bb$255D$2523c$2526d$2520$253Ce$253E")
    fragment = url.split("#", 1)[1]
    assert not set(fragment) & set("#&<>[] %\"'")


def test_logs_console_url_of_a_group_alone_is_the_groups_page() -> None:
    assert logs_console_url(TASK, "/fanout/analyzer") == \
        f"{LOGS}log-groups/log-group/$252Ffanout$252Fanalyzer"


@pytest.mark.parametrize("arn", ["", None, "not-an-arn", "arn:aws:ecs",
                                 "arn:aws:ecs:eu-west-1:123:task/c/1",
                                 "arn:aws:ecs::123456789012:task/c/1",
                                 "arn:aws-cn:ecs:cn-north-1:123456789012:task/c/1",
                                 "arn:aws:ecs:eu-west-1\"><script>:123456789012:task/c/1"])
def test_logs_console_url_of_an_unknown_or_malformed_arn_is_empty(arn: str | None) -> None:
    # No task (not launched, local) or a malformed ARN, or another partition's (whose
    # console is elsewhere): no link, and nothing raises
    assert logs_console_url(arn, "/fanout/analyzer", "s") == ""
    assert logs_console_url(TASK, "", "s") == ""


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
