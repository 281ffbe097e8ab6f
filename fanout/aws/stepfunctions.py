"""Answering a waiting ``.waitForTaskToken`` state: success or failure with a name."""

from __future__ import annotations

import json
from typing import Any, Protocol


class TaskCallbacks(Protocol):
    """Returns False when the token is no longer waited on (answered before, timed out)."""

    def succeed(self, token: str, output: dict[str, Any]) -> bool: ...
    def fail(self, token: str, error: str, cause: str) -> bool: ...


_GONE = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}


class _StepFunctions:
    """Holds a Step Functions client, made on first use unless one is given (tests)."""

    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from fanout.aws.clients import client

            self._client = client("stepfunctions")
        return self._client


class StepFunctionsCallbacks(_StepFunctions):
    def __init__(self, client: Any = None) -> None:
        self._client = client

    def _send(self, call: str, **kwargs: Any) -> bool:
        from botocore.exceptions import ClientError

        try:
            getattr(self.client, call)(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _GONE:
                return False
            raise
        return True

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        return self._send("send_task_success", taskToken=token, output=json.dumps(output))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send("send_task_failure", taskToken=token, error=error[:256],
                          cause=cause[:32768])


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of execution ``name`` of a state machine (what StartExecution returns)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


class Executions(_StepFunctions):
    """Starting, reading and stopping the executions of one state machine (the run's, for
    the steps of a pipeline)."""

    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client

    def start(self, name: str, document: dict[str, Any]) -> str:
        """Start execution ``name`` on ``document``; an execution of that name that exists
        already (a retried call) is the one asked for: never a second start."""
        from botocore.exceptions import ClientError

        try:
            started = self.client.start_execution(stateMachineArn=self.state_machine_arn,
                                                  name=name, input=json.dumps(document))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            return execution_arn(self.state_machine_arn, name)
        return str(started["executionArn"])

    def status(self, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None when there is none."""
        from botocore.exceptions import ClientError

        try:
            found = self.client.describe_execution(
                executionArn=execution_arn(self.state_machine_arn, name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return str(found["status"])

    def stop(self, name: str, error: str, cause: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.stop_execution(executionArn=execution_arn(self.state_machine_arn, name),
                                       error=error, cause=cause[:32768])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                raise
