"""Errors the state machine sees by name.

Python's Lambda runtime reports ``type(exc).__name__`` as the error name, so each class is
named ``Fanout.X`` (made with ``type``) and Step Functions can retry or catch it by that name.
"""

from __future__ import annotations


class FanoutError(Exception):
    """Base of the errors that end a Lambda invocation with a named error."""


def _named(name: str) -> type[FanoutError]:
    return type(f"Fanout.{name}", (FanoutError,), {"__module__": __name__})


InvalidRunSpec = _named("InvalidRunSpec")
LaunchThrottled = _named("LaunchThrottled")
CapacityUnavailable = _named("CapacityUnavailable")
LaunchFailed = _named("LaunchFailed")
#: A pipeline document (or rerun) that Decide refuses: the pipeline execution fails.
InvalidPipelineSpec = _named("InvalidPipelineSpec")

#: Error names given with ``SendTaskFailure`` (never raised: Record answers the token).
RETRY = "Fanout.Retry"
ITEM_FAILED = "Fanout.ItemFailed"
ITEM_TIMED_OUT = "Fanout.ItemTimedOut"
ITEM_ABORTED = "Fanout.ItemAborted"
RUN_FAILED = "Fanout.RunFailed"
