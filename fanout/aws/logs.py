"""The last words of an attempt: the tail of its container's CloudWatch log stream.

Record reads it for an attempt that did not succeed (a success's log is not what anyone
asks about, and GetLogEvents has a per-account request quota). Reading it never fails a
settlement: a missing stream, a throttle or a denied call gives no tail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

#: At most this many lines and this many bytes (UTF-8) of a log's end are kept.
TAIL_LINES = 20
TAIL_BYTES = 4096

#: (log group, log stream) -> the stream's last lines.
LogTail = Callable[[str, str], list[str]]


def tail_lines(messages: Iterable[str], lines: int = TAIL_LINES,
               limit: int = TAIL_BYTES) -> list[str]:
    """The last ``lines`` lines of ``messages`` that fit in ``limit`` bytes (a line longer
    than what is left keeps its end, as a terminal's scrollback would)."""
    split = [line.rstrip("\r") for message in messages for line in message.split("\n")]
    while split and not split[-1].strip():
        split.pop()
    kept: list[str] = []
    left = limit
    for line in reversed(split[-lines:]):
        size = len(line.encode())
        if size > left:
            if left > 3 and not kept:
                kept.append("..." + line.encode()[-(left - 3):].decode("utf-8", "ignore"))
            break
        kept.append(line)
        left -= size + 1
    return kept[::-1]


class CloudWatchTail:
    """Reads a stream's last events with one ``GetLogEvents`` call (client made lazily)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def __call__(self, group: str, stream: str) -> list[str]:
        if self._client is None:
            from fanout.aws.clients import client

            self._client = client("logs")
        try:
            page = self._client.get_log_events(logGroupName=group, logStreamName=stream,
                                               startFromHead=False, limit=TAIL_LINES)
        except Exception as exc:
            log.warning("no log tail for %s %s: %s", group, stream, exc)
            return []
        return tail_lines(str(e.get("message", "")) for e in page.get("events", []))
