"""The run page's timeline: every attempt of every item, one lane per item slot.

A lane is what one slot of the run's concurrency did: an item holds its slot from its
first attempt's launch request to its last attempt's stop (its retries, and the delays
between them, included, as the workflow's map holds a slot until the item ends), so the
lanes an item is packed into (the first free one, in the order items started) number the
items that were in flight at once: the concurrency the run actually used. A slot that one
item leaves at the instant another takes it is free, not an overlap.

Each attempt is a bar from its task's start to its stop, coloured by its outcome, after a
grey bar for the time it waited for its launch (asked -> started). A bar is never drawn
narrower than :data:`MIN_WIDTH`, so an attempt that failed in a tenth of a second still
shows; failures are drawn after everything else, so they are on top where bars touch.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from fanout.ui.render import duration, params_text
from fanout.ui.source import parse_time

#: The narrowest bar, in the SVG's width units (1,000 across): 0.3% of the run's span.
MIN_WIDTH = 3.0
#: Outcomes drawn last (on top): the attempts a user looks for.
FAILURES = ("retry", "fail", "timeout", "abort")

_OUTCOME_CLASS = {"SUCCEEDED": "ok", "FAILED": "fail", "TIMED_OUT": "timeout",
                  "ABORTED": "abort", "RETRY": "retry", "RUNNING": "run"}

#: The timeline's colours inside the SVG itself: it is also shown as an image.
_SVG_STYLE = ("<style>.wait{fill:#b8c2cc}.ok{fill:#2e9d57}.fail{fill:#d64545}"
              ".timeout{fill:#e0a020}.abort{fill:#9b59b6}.retry{fill:#f08a5d}.run{fill:#2f80ed}"
              "text{font:11px sans-serif;fill:#616e7c}</style>")


@dataclass(frozen=True)
class Bar:
    """One attempt: asked for at ``asked``, ran from ``begin`` to ``end`` (epoch seconds)."""

    asked: float
    begin: float
    end: float
    kind: str
    label: str


def outcome(attempt: Mapping[str, Any], last: bool, item_status: str) -> str:
    if attempt.get("stopped_at") is None:
        return "run"
    status = attempt.get("status")
    if isinstance(status, str) and status in _OUTCOME_CLASS:
        return _OUTCOME_CLASS[status]
    if attempt.get("exit_code") == 0 and not attempt.get("reason"):
        return "ok"
    if not last:
        return "retry"
    return _OUTCOME_CLASS.get(item_status, "fail")


def pack(spans: Sequence[tuple[float, float]]) -> tuple[list[int], int]:
    """The lane of each ``(start, end)`` span (first free lane, by start) and how many.

    A lane is free for a span that starts when (or after) the lane's last span ended, so
    the count is the most spans open at one instant.
    """
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    busy: list[tuple[float, int]] = []  # (end, lane) of the lanes in use
    free: list[int] = []
    lanes = [0] * len(spans)
    count = 0
    for i in order:
        start, end = spans[i]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, count = count, count + 1
        heapq.heappush(busy, (max(end, start), lane))
        lanes[i] = lane
    return lanes, count


def bars(item: Mapping[str, Any], now: datetime) -> list[Bar]:
    """The item's attempts as bars (an attempt never asked for is left out)."""
    attempts = item.get("attempts") or []
    out = []
    for n, attempt in enumerate(attempts):
        started = parse_time(attempt.get("started_at"))
        asked = parse_time(attempt.get("created_at")) or started
        stopped = parse_time(attempt.get("stopped_at"))
        if asked is None:
            asked = stopped
        if asked is None:
            continue
        stopped = stopped or now
        ran_from = started or stopped
        kind = outcome(attempt, n == len(attempts) - 1, str(item["status"]))
        label = (f"#{item['index']} {params_text(item.get('params'))} · attempt "
                 f"{attempt.get('attempt')} · {kind}"
                 + (f" · {attempt['reason']}" if attempt.get("reason") else ""))
        out.append(Bar(min(asked, ran_from).timestamp(), ran_from.timestamp(),
                       max(stopped.timestamp(), ran_from.timestamp()), kind, label))
    return out


def timeline(items: Sequence[Mapping[str, Any]], width: int = 1000,
             now: datetime | None = None) -> str:
    """An SVG of every attempt from launch to stop, one lane per item slot (see the module)."""
    now = now or datetime.now(UTC)
    per_item = [b for b in (bars(item, now) for item in items) if b]
    if not per_item:
        return ('<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 1000 20"'
                ' width="100%" height="20"><text x="4" y="14" class="empty">no attempt '
                'launched yet</text></svg>')
    lanes, count = pack([(b[0].asked, b[-1].end) for b in per_item])
    t0 = min(b[0].asked for b in per_item)
    t1 = max(b[-1].end for b in per_item)
    scale = width / max(t1 - t0, 1e-3)
    row = max(2.0, min(14.0, 400.0 / count))
    height = row * count + 18
    gap = 1.0 if row > 4 else 0.0
    layers: dict[str, list[str]] = {"wait": [], "done": [], "failed": []}

    def rect(kind: str, start: float, stop: float, y: float, title: str) -> str:
        x = min((start - t0) * scale, width - MIN_WIDTH)
        return (f'<rect class="{kind}" x="{x:.2f}" y="{y:.1f}" '
                f'width="{max((stop - start) * scale, MIN_WIDTH):.2f}" '
                f'height="{row - gap:.1f}">{title}</rect>')

    attempts = 0
    for lane, item_bars in zip(lanes, per_item, strict=True):
        y = lane * row
        for bar in item_bars:
            attempts += 1
            title = f"<title>{escape(bar.label)}</title>"
            if bar.begin > bar.asked:
                layers["wait"].append(rect("wait", bar.asked, bar.begin, y, title))
            layer = "failed" if bar.kind in FAILURES else "done"
            layers[layer].append(rect(bar.kind, bar.begin, bar.end, y, title))
    return "".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" '
        f'viewBox="0 0 {width} {height:.1f}" preserveAspectRatio="none" width="100%" '
        f'height="{height:.0f}" data-lanes="{count}" data-attempts="{attempts}">',
        _SVG_STYLE, *layers["wait"], *layers["done"], *layers["failed"],
        f'<text class="axis" x="2" y="{height - 4:.1f}">0 s</text>'
        f'<text class="axis" x="{width - 2}" y="{height - 4:.1f}" text-anchor="end">'
        f"{escape(duration(t1 - t0))} · {count} lanes (items at once, at most)</text></svg>"])
