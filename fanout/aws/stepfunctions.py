"""Answering a waiting ``.waitForTaskToken`` state: success or failure with a name."""

from __future__ import annotations

import json
from typing import Any, Protocol


class TaskCallbacks(Protocol):
    """Returns False when the token is no longer waited on (answered before, timed out)."""

    def succeed(self, token: str, output: dict[str, Any]) -> bool: ...
    def fail(self, token: str, error: str, cause: str) -> bool: ...


_GONE = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}


class StepFunctionsCallbacks:
    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from fanout.aws.clients import client

            self._client = client("stepfunctions")
        return self._client

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
