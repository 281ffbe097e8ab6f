"""Every refused RunTask that AWS documents gets one verdict: throttle, capacity wait, or
fail for good (fanout.aws.launch_errors, the table in docs/operating.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fanout.aws.ecs import EcsLauncher, LaunchError, LaunchRequest
from fanout.aws.launch_errors import RULES, Rule, classify

ROOT = Path(__file__).resolve().parents[2]


def _id(rule: Rule) -> str:
    return f"{rule.kind}:{rule.reason}"


@pytest.mark.parametrize("rule", RULES, ids=_id)
def test_each_documented_answer_gets_its_rows_verdict(rule: Rule) -> None:
    # Given the answer as AWS gives it: an API error code, or a failures[].reason
    code = rule.codes[0] if rule.codes else ""
    # When classified
    verdict = classify(code, rule.example)
    # Then it is the row's verdict, with the reason the waiting item shows
    assert (verdict.kind, verdict.reason) == (rule.kind, rule.reason)


@pytest.mark.parametrize("rule", RULES, ids=_id)
def test_each_row_is_in_the_operating_guide_with_its_source(rule: Rule) -> None:
    # The table a user reads says the same as the code, with where AWS says it.
    guide = (ROOT / "docs" / "operating.md").read_text()
    rows = [line for line in guide.splitlines()
            if line.startswith("|") and f"| {rule.reason} |" in line]
    assert rows, f"docs/operating.md has no row for {rule.reason!r}"
    assert any(rule.source in row and f"| {rule.kind} |" in row for row in rows), rows


@pytest.mark.parametrize(("code", "message", "kind", "reason"), [
    # The Fargate vCPU quota, typographic apostrophe and all, wraps as a client error too.
    ("", "You\u2019ve reached the limit on the number of vCPUs you can run concurrently",
     "capacity", "vCPU quota"),
    ("ClientException", "You've reached the limit on the number of vCPUs you can run "
     "concurrently. For more information, see the Troubleshooting section",
     "capacity", "vCPU quota"),
    ("InvalidParameterException", "Not enough IP space available in subnet subnet-1",
     "capacity", "subnet IP addresses"),
    ("", "arn:aws:ecs:us-east-1:1:container-instance/c/1 TaskFailedToStart: RESOURCE:ENI",
     "capacity", "ENI limit"),
    ("RequestLimitExceeded", "Request limit exceeded.", "throttled", "EC2 request limit"),
    # A client error that names an attribute is still what its code says.
    ("InvalidParameterException", "attribute ecs.capability.x is required",
     "refused", "invalid parameter"),
    # Words in prose are not failure reason codes.
    ("ClientException", "the agent is missing the task definition", "refused", "client error"),
    # An unknown server error is retried; an unknown client error fails.
    ("SomethingNew", "boom", "refused", "launch refused"),
])
def test_answers_seen_in_the_wild(code: str, message: str, kind: str, reason: str) -> None:
    assert (classify(code, message).kind, classify(code, message).reason) == (kind, reason)


def test_an_unknown_5xx_is_retried_as_a_throttle() -> None:
    assert classify("SomethingNew", "boom", 503).kind == "throttled"


class _Ecs:
    """An ECS client that answers RunTask with one error or one failure."""

    def __init__(self, error: tuple[str, str] | None = None,
                 failure: str | None = None) -> None:
        self.error, self.failure = error, failure

    def run_task(self, **_: Any) -> dict[str, Any]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error[0], "Message": self.error[1]},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "RunTask")
        return {"tasks": [], "failures": [{"reason": self.failure}]}


REQUEST = LaunchRequest(run_id="r", index=0, attempt=1, task_definition="td",
                        container="main", command=[], environment={}, capacity="FARGATE",
                        client_token="t")


@pytest.mark.parametrize(("client", "kind", "reason"), [
    (_Ecs(failure="You've reached the limit on the number of vCPUs you can run concurrently"),
     "capacity", "vCPU quota"),
    (_Ecs(error=("ClientException", "You've reached the limit on the number of vCPUs you can "
                                    "run concurrently")), "capacity", "vCPU quota"),
    (_Ecs(error=("ThrottlingException", "Rate exceeded")), "throttled", "launch throttled"),
    (_Ecs(error=("AccessDeniedException", "not authorized")), "refused", "access denied"),
])
def test_the_launcher_raises_the_verdict(client: _Ecs, kind: str, reason: str) -> None:
    # Given RunTask answers with an error or a failure
    launcher = EcsLauncher("c", client=client)  # type: ignore[arg-type]
    # When a task is launched / Then the error carries the verdict and the reason shown
    with pytest.raises(LaunchError) as raised:
        launcher.run_task(REQUEST)
    assert (raised.value.kind, raised.value.reason) == (kind, reason)


def test_fanout_items_shows_why_an_item_waits() -> None:
    # Given an item waiting for the vCPU quota, as the records view gives it
    from fanout.cli.render import items_text

    waiting = {"index": 3, "status": "WAITING", "attempt_count": 1, "exit_code": None,
               "reason": None, "params": {"n": 3},
               "waiting": {"why": "vCPU quota", "since": "2026-12-01T10:00:00Z", "tries": 4}}
    done = {**waiting, "index": 4, "status": "SUCCEEDED", "exit_code": 0, "waiting": None}
    # When listed / Then its status says what it waits for; a done item just its status
    lines = items_text([waiting, done]).splitlines()
    assert "WAITING: vCPU quota" in lines[-2] and "SUCCEEDED" in lines[-1]
