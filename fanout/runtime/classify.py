"""How a stopped task is classified, and what the run's retry policy makes of it.

Pure functions over the ECS task description (the ``detail`` of an "ECS Task State
Change" event has the same shape as DescribeTasks' task), so Record and Reconcile agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fanout.policy import Capacity, RetryPolicy
from fanout.runtime import errors

#: StopTask reasons fanout gives, so the stop can be told apart from a user's.
TIMEOUT_REASON = "fanout: timed out"
ABORT_REASON = "fanout: run aborted"
OOM_EXIT = 137


class StopClass(StrEnum):
    SUCCEEDED = "succeeded"
    EXIT_NONZERO = "exit_nonzero"
    OUT_OF_MEMORY = "out_of_memory"
    SPOT_INTERRUPTION = "spot_interruption"
    START_FAILURE = "start_failure"  # image pull or network set-up (ENI, secrets, logs)
    TIMEOUT = "timeout"
    ABORTED = "aborted"
    STOPPED = "stopped"  # stopped by someone else (console, API)
    LOST = "lost"  # the task can no longer be found

    @property
    def infrastructure(self) -> bool:
        return self in (StopClass.SPOT_INTERRUPTION, StopClass.START_FAILURE, StopClass.LOST)


@dataclass(frozen=True)
class Stop:
    stop_class: StopClass
    exit_code: int | None
    stop_code: str | None
    reason: str
    #: The task's memory (MiB), as its description gives it: "out of memory (512 MiB)".
    memory_mib: int | None = None


def _container(task: dict[str, Any], name: str | None) -> dict[str, Any]:
    containers = task.get("containers") or [{}]
    for container in containers:
        if name is None or container.get("name") == name:
            return dict(container)
    return dict(containers[0])


def classify(task: dict[str, Any], container: str | None = None) -> Stop:
    """The class of a STOPPED task, from stopCode, stoppedReason and the container's exit."""
    stop_code = task.get("stopCode")
    reason = str(task.get("stoppedReason") or "")
    main = _container(task, container)
    exit_code = main.get("exitCode")
    exit_code = int(exit_code) if exit_code is not None else None
    container_reason = str(main.get("reason") or "")
    text = f"{reason} {container_reason}"
    detail = container_reason or reason

    memory = task.get("memory")
    memory_mib = int(str(memory)) if str(memory or "").isdigit() else None

    def stop(kind: StopClass, why: str = detail) -> Stop:
        return Stop(kind, exit_code, stop_code, why.strip(), memory_mib)

    if reason.startswith(TIMEOUT_REASON):
        return stop(StopClass.TIMEOUT, reason)
    if reason.startswith(ABORT_REASON):
        return stop(StopClass.ABORTED, reason)
    if stop_code in ("SpotInterruption", "TerminationNotice"):
        return stop(StopClass.SPOT_INTERRUPTION, reason or "Spot interruption")
    if "OutOfMemoryError" in text:
        return stop(StopClass.OUT_OF_MEMORY)
    if ("CannotPullContainerError" in text or "ResourceInitializationError" in text
            or stop_code == "TaskFailedToStart"):
        return stop(StopClass.START_FAILURE)
    if exit_code == 0:
        return stop(StopClass.SUCCEEDED, reason or "Essential container exited")
    if exit_code is not None:
        return stop(StopClass.EXIT_NONZERO)
    if stop_code == "UserInitiated":
        return stop(StopClass.STOPPED, reason or "stopped by a user")
    # No exit code and no known cause: the platform lost it (host, agent): infrastructure.
    return stop(StopClass.START_FAILURE if stop_code else StopClass.LOST,
                reason or "stopped without an exit code")


_NO_FILE = re.compile(r"(?:No such file or directory|no such file or directory)\W*'?\"?([^'\"\s]*)")
_NOT_IN_PATH = re.compile(r'exec: \\?"([^"\\]+)\\?": executable file not found')
_ERROR_NAME = re.compile(r"^[A-Za-z]+Error:\s*")
#: A reason is one line a person reads in a table: at most this long.
REASON_CHARS = 200


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 3] + "..."


def _cannot_start(detail: str) -> str:
    missing = _NOT_IN_PATH.search(detail) or _NO_FILE.search(detail)
    if missing and missing[1]:
        return f"cannot start: no such file '{missing[1]}'"
    if "CannotPullContainerError" in detail:
        return _one_line("cannot pull the image: " + _ERROR_NAME.sub("", detail))
    return _one_line("cannot start: " + _ERROR_NAME.sub("", detail))


def describe(stop: Stop, *, timeout_seconds: int | None = None) -> str:
    """The stop in a user's words, one line: "exit code 3", "timed out after 5 s",
    "Spot interruption", "cannot start: no such file 'analyzer'", "out of memory (512 MiB)"."""
    kind = stop.stop_class
    if kind is StopClass.SUCCEEDED:
        return "exit code 0"
    if kind is StopClass.EXIT_NONZERO:
        return f"exit code {stop.exit_code}"
    if kind is StopClass.OUT_OF_MEMORY:
        return f"out of memory ({stop.memory_mib} MiB)" if stop.memory_mib else "out of memory"
    if kind is StopClass.SPOT_INTERRUPTION:
        return "Spot interruption"
    if kind is StopClass.TIMEOUT:
        return f"timed out after {timeout_seconds} s" if timeout_seconds else "timed out"
    if kind is StopClass.START_FAILURE:
        return _cannot_start(stop.reason)
    if kind is StopClass.ABORTED:
        why = stop.reason.removeprefix(ABORT_REASON).lstrip(": ")
        return _one_line(f"aborted: {why}" if why else "aborted")
    if kind is StopClass.STOPPED:
        return _one_line(f"stopped: {stop.reason}")
    return _one_line(f"lost: {stop.reason}" if stop.reason else "lost")


@dataclass(frozen=True)
class Decision:
    """What happens after an attempt: ``outcome`` is success, retry or fail."""

    outcome: str
    item_status: str | None  # the item's final status, None on retry
    error: str | None = None
    cause: str = ""
    next_attempt: int | None = None
    delay_seconds: int = 0
    on_demand: bool = False

    def answer(self, output: dict[str, Any]) -> dict[str, Any]:
        if self.outcome == "success":
            return {"outcome": "success", "output": output}
        return {"outcome": self.outcome, "error": self.error, "cause": self.cause}


_FINAL = {
    StopClass.TIMEOUT: ("TIMED_OUT", errors.ITEM_TIMED_OUT),
    StopClass.ABORTED: ("ABORTED", errors.ITEM_ABORTED),
}


def decide(stop: Stop, policy: RetryPolicy, attempt: int, capacity: Capacity,
           ran_on: str | None = None) -> Decision:
    """Retry or settle, by the run's policy and the attempts left.

    ``ran_on`` is the capacity the attempt was launched on (its record's). Under
    ``FARGATE_SPOT_THEN_FARGATE`` a Spot interruption is always followed by an on-demand
    attempt, at once, whatever ``on_infrastructure`` and the attempts left say; that
    attempt does not count against ``max_attempts`` (docs/run-spec.md).
    """
    if stop.stop_class is StopClass.SUCCEEDED:
        return Decision("success", "SUCCEEDED")
    kind = stop.stop_class
    counted = attempt
    if capacity is Capacity.FARGATE_SPOT_THEN_FARGATE:
        if kind is StopClass.SPOT_INTERRUPTION and ran_on != Capacity.FARGATE.value:
            cause = json.dumps({"attempt": attempt + 1, "delay_seconds": 0,
                                "class": kind.value, "on_demand": True,
                                "reason": stop.reason[:500]})
            return Decision("retry", None, errors.RETRY, cause, attempt + 1, 0, on_demand=True)
        if ran_on == Capacity.FARGATE.value:
            # Under this capacity an attempt runs on-demand only after a Spot interruption
            # (once per item): that attempt was the free one.
            counted = attempt - 1
    if kind is StopClass.ABORTED:
        retryable = False
    elif kind is StopClass.TIMEOUT:
        retryable = policy.on_timeout
    elif kind.infrastructure:
        retryable = policy.on_infrastructure
    elif kind in (StopClass.EXIT_NONZERO, StopClass.OUT_OF_MEMORY):
        code = stop.exit_code if stop.exit_code is not None else OOM_EXIT
        retryable = policy.retries_exit_code(code)
    else:
        retryable = False
    if retryable and counted < policy.max_attempts:
        delay = policy.delay_before(counted + 1)
        cause = json.dumps({"attempt": attempt + 1, "delay_seconds": delay,
                            "class": kind.value, "reason": stop.reason[:500]})
        return Decision("retry", None, errors.RETRY, cause, attempt + 1, delay)
    status, error = _FINAL.get(kind, ("FAILED", errors.ITEM_FAILED))
    exit_text = f" exit code {stop.exit_code}" if stop.exit_code is not None else ""
    cause = f"attempt {attempt}: {kind.value}{exit_text}: {stop.reason}"[:1000]
    return Decision("fail", status, error, cause)
