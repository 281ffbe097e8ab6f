"""Step Functions callbacks in memory (tests): every answer recorded."""

from __future__ import annotations

from typing import Any


class MemoryCallbacks:
    """Records every answer; a token answers once, like Step Functions."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        self.calls.append(("success", token, output))
        if token in self.answers:
            return False
        self.answers[token] = ("success", output)
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.calls.append((error, token, cause))
        if token in self.answers:
            return False
        self.answers[token] = (error, cause)
        return True
