"""How a stopped task is classified, and the retry decision: tables of cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fanout.policy import Capacity, RetryPolicy
from fanout.runtime.classify import Stop, StopClass, classify, decide, describe

EVENTS = Path(__file__).parent.parent / "events"


def detail(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"task-stopped-{name}.json").read_text())
    return dict(loaded["detail"])


@pytest.mark.parametrize(("event", "kind", "exit_code"), [
    ("success", StopClass.SUCCEEDED, 0),
    ("exit-1", StopClass.EXIT_NONZERO, 1),
    ("oom", StopClass.OUT_OF_MEMORY, 137),
    ("spot", StopClass.SPOT_INTERRUPTION, 143),
    ("image-pull", StopClass.START_FAILURE, None),
    ("resource-init", StopClass.START_FAILURE, None),
    ("timeout", StopClass.TIMEOUT, 137),
])
def test_recorded_events_are_classified(event: str, kind: StopClass, exit_code: int | None) -> None:
    # Given a recorded STOPPED event, When it is classified
    stop = classify(detail(event), "main")
    # Then its class and exit code are the expected ones, with a reason a user can read
    assert (stop.stop_class, stop.exit_code) == (kind, exit_code)
    assert stop.reason


@pytest.mark.parametrize(("task", "kind"), [
    ({"stopCode": "UserInitiated", "stoppedReason": "fanout: run aborted: execution ABORTED",
      "containers": [{"exitCode": 143}]}, StopClass.ABORTED),
    ({"stopCode": "UserInitiated", "stoppedReason": "Task stopped by user",
      "containers": [{}]}, StopClass.STOPPED),
    ({"stopCode": "TerminationNotice", "stoppedReason": "Spot", "containers": [{}]},
     StopClass.SPOT_INTERRUPTION),
    ({"stoppedReason": "Host EC2 instance terminated", "containers": [{}]}, StopClass.LOST),
    ({"stopCode": "EssentialContainerExited", "containers": [
        {"name": "sidecar", "exitCode": 1}, {"name": "main", "exitCode": 0}]},
     StopClass.SUCCEEDED),
])
def test_other_stops_are_classified(task: dict[str, Any], kind: StopClass) -> None:
    # Given a stop fanout did not make or a task with a sidecar, When classified
    # Then the main container and the stop reason decide
    assert classify(task, "main").stop_class is kind


POLICY = RetryPolicy(max_attempts=3, delay_seconds=10, backoff_rate=2.0)


def stop(kind: StopClass, exit_code: int | None = None) -> Stop:
    return Stop(kind, exit_code, None, "why")


@pytest.mark.parametrize(("given", "policy", "attempt", "outcome", "status", "delay"), [
    (stop(StopClass.SUCCEEDED, 0), POLICY, 1, "success", "SUCCEEDED", 0),
    (stop(StopClass.EXIT_NONZERO, 1), POLICY, 1, "retry", None, 10),
    (stop(StopClass.EXIT_NONZERO, 1), POLICY, 2, "retry", None, 20),
    (stop(StopClass.EXIT_NONZERO, 1), POLICY, 3, "fail", "FAILED", 0),
    (stop(StopClass.EXIT_NONZERO, 2), POLICY.model_copy(update={"on_exit_codes": [1]}), 1,
     "fail", "FAILED", 0),
    (stop(StopClass.EXIT_NONZERO, 1), POLICY.model_copy(update={"on_exit_codes": [1]}), 1,
     "retry", None, 10),
    (stop(StopClass.EXIT_NONZERO, 1), POLICY.model_copy(update={"on_exit_codes": "none"}), 1,
     "fail", "FAILED", 0),
    (stop(StopClass.OUT_OF_MEMORY, 137), POLICY, 1, "retry", None, 10),
    (stop(StopClass.SPOT_INTERRUPTION), POLICY, 1, "retry", None, 10),
    (stop(StopClass.START_FAILURE), POLICY.model_copy(update={"on_infrastructure": False}), 1,
     "fail", "FAILED", 0),
    (stop(StopClass.TIMEOUT, 137), POLICY, 1, "retry", None, 10),
    (stop(StopClass.TIMEOUT, 137), POLICY.model_copy(update={"on_timeout": False}), 1,
     "fail", "TIMED_OUT", 0),
    (stop(StopClass.TIMEOUT, 137), POLICY, 3, "fail", "TIMED_OUT", 0),
    (stop(StopClass.ABORTED), POLICY, 1, "fail", "ABORTED", 0),
    (stop(StopClass.STOPPED), POLICY, 1, "fail", "FAILED", 0),
    (stop(StopClass.LOST), POLICY, 1, "retry", None, 10),
])
def test_retry_decision(given: Stop, policy: RetryPolicy, attempt: int, outcome: str,
                        status: str | None, delay: int) -> None:
    # Given a stop, a policy and the attempt number, When the policy decides
    decision = decide(given, policy, attempt, Capacity.FARGATE)
    # Then the outcome, the item's status and the delay are the expected ones
    assert (decision.outcome, decision.item_status, decision.delay_seconds) == (
        outcome, status, delay)
    if outcome == "retry":
        assert decision.error == "Fanout.Retry"
        assert json.loads(decision.cause)["attempt"] == attempt + 1
        assert json.loads(decision.cause)["delay_seconds"] == delay


@pytest.mark.parametrize(("kind", "error"), [
    (StopClass.EXIT_NONZERO, "Fanout.ItemFailed"), (StopClass.TIMEOUT, "Fanout.ItemTimedOut"),
    (StopClass.ABORTED, "Fanout.ItemAborted"), (StopClass.START_FAILURE, "Fanout.ItemFailed"),
])
def test_final_failures_are_named_by_class(kind: StopClass, error: str) -> None:
    # Given the last attempt, When it fails, Then the error names its class
    assert decide(stop(kind, 1), POLICY, 3, Capacity.FARGATE).error == error


SPOT_THEN = Capacity.FARGATE_SPOT_THEN_FARGATE


@pytest.mark.parametrize("policy", [
    POLICY, RetryPolicy(max_attempts=1), RetryPolicy(on_infrastructure=False),
])
@pytest.mark.parametrize("attempt", [1, 3])
def test_spot_interruption_under_spot_then_on_demand_is_a_free_on_demand_retry(
        policy: RetryPolicy, attempt: int) -> None:
    # Given Spot first then on-demand, whatever the policy and the attempts used
    # When a task on Spot is interrupted
    decision = decide(stop(StopClass.SPOT_INTERRUPTION), policy, attempt, SPOT_THEN,
                      "FARGATE_SPOT")
    # Then the item is tried again at once, on on-demand Fargate
    assert (decision.outcome, decision.on_demand, decision.delay_seconds) == ("retry", True, 0)
    assert decision.next_attempt == attempt + 1
    assert json.loads(decision.cause)["on_demand"] is True


def test_the_on_demand_attempt_after_a_spot_interruption_does_not_count() -> None:
    # Given max_attempts 2 under Spot then on-demand: attempt 1 interrupted on Spot,
    # attempt 2 on-demand (free)
    policy = RetryPolicy(max_attempts=2, delay_seconds=10, backoff_rate=2.0)
    # When attempt 2 exits 1, Then attempt 3 follows (the second counted), after the
    # first retry's delay
    second = decide(stop(StopClass.EXIT_NONZERO, 1), policy, 2, SPOT_THEN, "FARGATE")
    assert (second.outcome, second.next_attempt, second.delay_seconds) == ("retry", 3, 10)
    # And when attempt 3 exits 1 too, the item has used its two attempts
    third = decide(stop(StopClass.EXIT_NONZERO, 1), policy, 3, SPOT_THEN, "FARGATE")
    assert (third.outcome, third.item_status) == ("fail", "FAILED")


@pytest.mark.parametrize(("policy", "outcome"), [
    (RetryPolicy(max_attempts=1), "fail"), (RetryPolicy(on_infrastructure=False), "fail"),
    (POLICY, "retry"),
])
def test_spot_interruption_under_spot_only_is_an_infrastructure_failure(
        policy: RetryPolicy, outcome: str) -> None:
    # Given Spot only, When a task is interrupted, Then the policy decides, as for any
    # infrastructure failure, and the next attempt stays on Spot
    decision = decide(stop(StopClass.SPOT_INTERRUPTION), policy, 1, Capacity.FARGATE_SPOT,
                      "FARGATE_SPOT")
    assert (decision.outcome, decision.on_demand) == (outcome, False)


def test_backoff_is_capped_by_max_delay() -> None:
    # Given a long backoff, When attempt 9 follows, Then the delay is the cap
    policy = POLICY.model_copy(update={"max_attempts": 10, "max_delay_seconds": 60})
    assert decide(stop(StopClass.EXIT_NONZERO, 1), policy, 8, Capacity.FARGATE).delay_seconds == 60


def test_error_classes_carry_their_state_machine_names() -> None:
    # Given the Lambda runtime reports type(exc).__name__ as the error name
    from fanout.runtime import errors

    # Then each raised error is named as the state machine expects
    assert [c.__name__ for c in (errors.InvalidRunSpec, errors.LaunchThrottled,
                                 errors.CapacityUnavailable, errors.LaunchFailed)] == [
        "Fanout.InvalidRunSpec", "Fanout.LaunchThrottled", "Fanout.CapacityUnavailable",
        "Fanout.LaunchFailed"]


@pytest.mark.parametrize(("event", "timeout", "reason"), [
    ("success", None, "exit code 0"),
    ("exit-1", None, "exit code 1"),
    ("oom", None, "out of memory (512 MiB)"),
    ("spot", None, "Spot interruption"),
    ("timeout", 5, "timed out after 5 s"),
])
def test_every_stop_has_a_reason_in_a_users_words(event: str, timeout: int | None,
                                                   reason: str) -> None:
    # Given a recorded STOPPED event (the OOM one of a 512 MiB task)
    task = detail(event)
    if event == "oom":
        task["memory"] = "512"
    # When it is classified and described
    # Then the reason is the one line a user reads in the table
    assert describe(classify(task, "main"), timeout_seconds=timeout) == reason


@pytest.mark.parametrize(("detail_text", "reason"), [
    ("CannotStartContainerError: [Errno 2] No such file or directory: 'analyzer'",
     "cannot start: no such file 'analyzer'"),
    ('CannotStartContainerError: failed to create shim task: exec: "analyzer": executable '
     'file not found in $PATH: unknown', "cannot start: no such file 'analyzer'"),
    ("ResourceInitializationError: unable to pull secrets",
     "cannot start: unable to pull secrets"),
])
def test_a_start_failure_says_what_could_not_start(detail_text: str, reason: str) -> None:
    task = {"stopCode": "TaskFailedToStart", "stoppedReason": detail_text,
            "containers": [{"name": "main", "reason": detail_text}]}
    assert describe(classify(task, "main")) == reason


def test_an_image_pull_failure_is_one_short_line() -> None:
    reason = describe(classify(detail("image-pull"), "main"))
    assert reason.startswith("cannot pull the image: ")
    assert "\n" not in reason and len(reason) <= 200


def test_a_log_tail_is_the_last_20_lines_within_4_kb() -> None:
    from fanout.aws.logs import tail_lines

    # Given 30 lines, then a blank line
    lines = [f"line {i}" for i in range(30)] + [""]
    # Then the tail is the last 20 non-blank ones
    assert tail_lines(lines) == [f"line {i}" for i in range(10, 30)]
    # And a log of long lines keeps only what fits in 4 KB, the last line first
    long = ["x" * 1000 for _ in range(10)] + ["FATAL: giving up"]
    tail = tail_lines(long)
    assert tail[-1] == "FATAL: giving up"
    assert sum(len(t) + 1 for t in tail) <= 4096 + 1
    # And one huge last line keeps its end
    assert tail_lines(["y" * 10_000 + "END"])[0].endswith("END")
