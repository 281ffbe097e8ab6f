"""The error names Step Functions reports for a Lambda task, as AWS spells them.

One list for the state machine's retriers (``infra/workflow.py``) and for the local mode,
which raises these very names when a handler crashes, times out or runs out of memory, so
a retrier that would miss an error on AWS misses it locally too.

Sources: Step Functions, "Handle Lambda service exceptions" (bp-lambda-serviceexception);
Lambda, "Lambda function errors" / the Python 3.12+ runtime's error types.
"""

from __future__ import annotations

#: Lambda's own transient failures (the invoke API answered 5xx or throttled): AWS
#: recommends retrying every one of these on a Lambda task.
SERVICE_EXCEPTION = "Lambda.ServiceException"
AWS_LAMBDA_EXCEPTION = "Lambda.AWSLambdaException"
SDK_CLIENT_EXCEPTION = "Lambda.SdkClientException"
TOO_MANY_REQUESTS = "Lambda.TooManyRequestsException"
CLIENT_EXECUTION_TIMEOUT = "Lambda.ClientExecutionTimeoutException"

TRANSIENT: tuple[str, ...] = (
    SERVICE_EXCEPTION,
    AWS_LAMBDA_EXCEPTION,
    SDK_CLIENT_EXCEPTION,
    TOO_MANY_REQUESTS,
    CLIENT_EXECUTION_TIMEOUT,
)

#: A records write still refused for contention (a DynamoDB conflict, throttle or server
#: error) after its own retries (:class:`fanout.records.writes.ContentionError`): the
#: runtime names the error by the exception's class. Retried like Lambda's own.
CONTENTION = "ContentionError"

#: The function ran past its timeout (Python 3.12+ runtimes; older ones said Lambda.Unknown).
TIMED_OUT = "Sandbox.Timedout"
#: The function ran out of memory (Python 3.12+ runtimes).
OUT_OF_MEMORY = "Runtime.OutOfMemory"
#: The runtime process exited (killed, ``sys.exit``, a crash of native code).
EXIT_ERROR = "Runtime.ExitError"
#: The runtime failed in a way it cannot name.
RUNTIME_UNKNOWN = "Runtime.Unknown"
#: What Step Functions reports for an unhandled failure it cannot name (older runtimes'
#: timeouts and out-of-memory among them).
LAMBDA_UNKNOWN = "Lambda.Unknown"

#: A function that died without answering: crashed, timed out, or out of memory. A
#: handler's own exception is reported by its class name instead, and is not in here.
CRASHES: tuple[str, ...] = (
    TIMED_OUT,
    OUT_OF_MEMORY,
    EXIT_ERROR,
    RUNTIME_UNKNOWN,
    LAMBDA_UNKNOWN,
)
