"""The run page's timeline: lanes are the concurrency used, every attempt shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fanout.records.model import AttemptRecord, ItemRecord
from fanout.records.views import item_detail
from fanout.ui.timeline import MIN_WIDTH, pack, timeline

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    """A record's time, as Record writes it (microseconds)."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def attempt(index: int, n: int, start: float, stop: float, status: str) -> AttemptRecord:
    return AttemptRecord("r", index, n, "c", "t", status=status, task_arn=f"arn:task/{index}-{n}",
                         created_at=at(start - 0.05), started_at=at(start), stopped_at=at(stop),
                         duration_seconds=stop - start, exit_code=0 if status == "SUCCEEDED"
                         else 1, reason=None if status == "SUCCEEDED" else "exit code 1")


def detail(index: int, status: str, attempts: list[AttemptRecord]) -> dict[str, Any]:
    item = ItemRecord("r", index, status, params={"year": 1999 + index},  # type: ignore[arg-type]
                      attempts=len(attempts))
    return item_detail(item, attempts)


def lanes_of(svg: str) -> int:
    found = re.search(r'data-lanes="(\d+)"', svg)
    assert found, svg[:300]
    return int(found.group(1))


def rects(svg: str, kind: str) -> list[float]:
    """The widths of the bars of one kind, in the order they are drawn."""
    return [float(w) for w in re.findall(rf'<rect class="{kind}" x="[^"]+" y="[^"]+" '
                                         rf'width="([^"]+)"', svg)]


def test_a_span_that_starts_as_another_ends_takes_its_lane() -> None:
    lanes, count = pack([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)])
    assert (lanes, count) == ([0, 0, 0], 1)


def test_lanes_are_the_most_spans_open_at_once() -> None:
    # Ten slots, each doing three items back to back (the next starts as the last ends),
    # and two spans that overlap by a hair
    spans = [(slot / 16 + k, slot / 16 + k + 1) for slot in range(10) for k in range(3)]
    assert pack(spans)[1] == 10
    assert pack([(0.0, 1.0), (0.999, 2.0)]) == ([0, 1], 2)
    assert pack([]) == ([], 0)


def test_the_seeds_run_uses_ten_lanes_and_shows_three_quick_failures() -> None:
    # Given 21 years at concurrency 10: year 2002 fails three times in 0.2 s each, with
    # retry delays of 10 s and 20 s between, while the other 20 share the other 9 slots,
    # 0.8 s each, the next asked for 0.05 s after the last stopped
    tries = [attempt(3, 1, 0.1, 0.3, "RETRY"), attempt(3, 2, 10.3, 10.5, "RETRY"),
             attempt(3, 3, 30.5, 30.7, "FAILED")]
    items = [detail(3, "FAILED", tries)]
    for k, index in enumerate(i for i in range(21) if i != 3):
        start = (k // 9) * 0.9 + (k % 9) * 0.01
        items.append(detail(index, "SUCCEEDED", [attempt(index, 1, start, start + 0.8,
                                                         "SUCCEEDED")]))
    # When the timeline is drawn from the views a user reads
    svg = timeline(items)
    # Then its lanes are the concurrency used: the failing year held its slot throughout
    assert lanes_of(svg) == 10
    assert "10 lanes" in svg
    # And each of its three attempts is a bar at least MIN_WIDTH wide, drawn on top
    failures = rects(svg, "retry") + rects(svg, "fail")
    assert len(failures) == 3 and min(failures) >= MIN_WIDTH
    assert svg.rindex('class="ok"') < svg.index('class="retry"')
    assert svg.count("<rect") == svg.count("<title>")


def test_attempts_overlapping_within_one_second_get_two_lanes() -> None:
    # Given two attempts sharing a wall-clock second: the first stops 0.2 s after the
    # second starts (second-precision times would put them in one lane)
    first = detail(0, "SUCCEEDED", [attempt(0, 1, 0.1, 5.9, "SUCCEEDED")])
    second = detail(1, "SUCCEEDED", [attempt(1, 1, 5.7, 9.0, "SUCCEEDED")])
    # Then the views keep milliseconds and the timeline sees the overlap
    assert first["attempts"][0]["stopped_at"].endswith(".900Z")
    assert lanes_of(timeline([first, second])) == 2


def test_a_running_attempt_runs_to_now_and_nothing_launched_says_so() -> None:
    running = item_detail(ItemRecord("r", 0, "RUNNING", attempts=1),
                          [AttemptRecord("r", 0, 1, "c", "t", status="RUNNING",
                                         created_at=at(0), started_at=at(1))])
    svg = timeline([running], now=T0 + timedelta(seconds=11))
    assert abs(rects(svg, "run")[0] - 1000 * 10 / 11) < 0.01
    assert "no attempt launched yet" in timeline([])
