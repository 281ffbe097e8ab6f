"""A write that meets contention is retried and raised, never read as a lost race."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from fanout.records import writes
from fanout.records.writes import ContentionError, deadline_from_start, write


def cancelled(*codes: str) -> ClientError:
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "x"},
                        "CancellationReasons": [{"Code": c} for c in codes]},
                       "TransactWriteItems")


def refused(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}}, "UpdateItem")


class Calls:
    """A write that fails with the given errors first, then goes through."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.made = list(errors), 0

    def __call__(self) -> Any:
        self.made += 1
        if self.errors:
            raise self.errors.pop(0)
        return {}


def no_sleep(seconds: float) -> None:
    assert 0 <= seconds <= writes.CAP_SECONDS


@pytest.mark.parametrize("error", [cancelled("None", "ConditionalCheckFailed"),
                                   refused("ConditionalCheckFailedException")])
def test_a_failed_condition_is_a_lost_race(error):
    call = Calls(error)
    assert write(call, "w", sleep=no_sleep) is False and call.made == 1


@pytest.mark.parametrize("error", [
    cancelled("None", "TransactionConflict"), cancelled("ThrottlingError", "None"),
    cancelled("ProvisionedThroughputExceeded"), cancelled("RequestLimitExceeded"),
    cancelled("InternalServerError"),
    # a conflict beside a failed condition: the condition is tried again too
    cancelled("TransactionConflict", "ConditionalCheckFailed"),
    refused("ProvisionedThroughputExceededException"), refused("ThrottlingException"),
    refused("TransactionConflictException"), refused("InternalServerError"),
])
def test_contention_is_retried_until_the_write_goes_through(error):
    call = Calls(error, error)
    assert write(call, "w", sleep=no_sleep) is True and call.made == 3


def test_contention_that_lasts_is_raised_not_answered():
    call = Calls(*[cancelled("TransactionConflict")] * writes.TRIES)
    slept: list[float] = []
    with pytest.raises(ContentionError, match="TransactionConflict"):
        write(call, "a transaction", sleep=slept.append)
    assert call.made == writes.TRIES and len(slept) == writes.TRIES - 1
    # jittered exponential backoff, capped
    assert all(0 <= s <= min(writes.CAP_SECONDS, writes.BASE_SECONDS * 2 ** n)
               for n, s in enumerate(slept))


def test_any_other_refusal_is_raised_as_it_came():
    call = Calls(cancelled("ValidationError"))
    with pytest.raises(ClientError):
        write(call, "w", sleep=no_sleep)
    assert call.made == 1


def test_a_timeout_counts_from_the_task_start():
    # An attempt created at 10:00 with a 600 s timeout whose task started at 10:30
    assert deadline_from_start("2026-11-20T10:00:00.000000Z", "2026-11-20T10:10:00.000000Z",
                               "2026-11-20T10:30:00.000000Z") == "2026-11-20T10:40:00.000000Z"
    assert deadline_from_start("", "2026-11-20T10:10:00.000000Z", "2026-11-20T10:30:00Z") \
        is None
