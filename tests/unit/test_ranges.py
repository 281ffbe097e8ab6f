"""Ranges as a person writes them: ``--param year=1999..2019`` and ``"through"`` include
their last value; a range whose excluded stop could be read as its last value is explained."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanout.cli.main import main
from fanout.cli.params import param_axis
from fanout.config import FanoutConfig
from fanout.errors import SpecError
from fanout.spec.axes import DateRange, IntRange
from fanout.spec.plan import plan_run
from fanout.spec.validate import parse_spec

WHEN = datetime(2024, 3, 10, tzinfo=UTC)


def expand(capsys: pytest.CaptureFixture[str], cdk_json: Path, *args: str
           ) -> tuple[int, str, str]:
    code = main(["expand", "--config", str(cdk_json), "--job", "analyzer", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_range_written_with_two_dots_includes_both_ends(capsys, cdk_json):
    # When the user writes the years as a person would
    code, out, err = expand(capsys, cdk_json, "--param", "year=1999..2019")

    # Then there are 21 items, 1999 to 2019, and the summary says how it was read
    years = [json.loads(line)["params"]["year"] for line in out.splitlines()]
    assert code == 0
    assert years == list(range(1999, 2020))
    assert "params.year: 1999..2019 (through 2019 included), 21 values" in err


def test_a_stop_excluded_range_says_its_last_value(capsys, cdk_json):
    # Given the seed's form, whose stop is easily read as the last year
    code, out, err = expand(capsys, cdk_json, "--param", "year=1999:2019", "--count")

    # Then the count is 20 and the summary says 2019 is not among them
    assert (code, out) == (0, "20\n")
    assert "params.year: 1999..2018 (stop 2019 excluded), 20 values" in err


@pytest.mark.parametrize(("text", "axis"), [
    ("1999..2019", {"range": {"start": 1999, "through": 2019}}),
    ("1999..2019:2", {"range": {"start": 1999, "through": 2019, "step": 2}}),
    ("10..0:-5", {"range": {"start": 10, "through": 0, "step": -5}}),
    ("2024-01-01..2024-01-31", {"dates": {"start": "2024-01-01", "through": "2024-01-31"}}),
    ("today-7d..today:1d", {"dates": {"start": "today-7d", "through": "today", "step": "1d"}}),
    ("a..b", ["a..b"]),  # not numbers nor dates: one text value
    ("2024-01", ["2024-01"]),  # a month, not a range written with a dash
    ("2019-1999", ["2019-1999"]),
])
def test_two_dots_read_as_an_inclusive_range(text: str, axis: Any) -> None:
    assert param_axis(text) == axis


@pytest.mark.parametrize(("text", "says"), [
    ("1..", "looks like a range"),
    ("1...3", "looks like a range"),
    ("1..3:0", "step must not be 0"),
    ("1999..2001,2005", "a list cannot hold the range '1999..2001'"),
    ("2024-01-01..x", "START..THROUGH[:STEP]"),
    ("1999-2019", "for the range write 1999..2019 (both included), or"),
])
def test_ranges_with_two_dots_that_do_not_read_are_errors(text: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        param_axis(text)
    assert says in str(caught.value)


@pytest.mark.parametrize(("axis", "says"), [
    ({"range": {"start": 1999, "stop": 2020, "through": 2019}}, "not both"),
    ({"range": {"start": 1999}}, "give its end: stop (excluded) or through (included)"),
    ({"range": {"start": 2000, "through": 1999}}, "through 1999 is not at or after start 2000"),
    ({"dates": {"start": "2024-01-02", "through": "2024-01-01"}},
     "through 2024-01-01 is before start 2024-01-02"),
    ({"dates": {"start": "2024-01-01", "stop": "2024-01-03", "through": "2024-01-02"}},
     "not both"),
])
def test_a_range_needs_exactly_one_end(config: FanoutConfig, axis: Any, says: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"job": "analyzer", "params": {"year": axis}}, config)
    assert says in caught.value.message


def test_dates_through_include_the_last_day_and_hour(config: FanoutConfig) -> None:
    days = DateRange(start="2024-01-30", through="2024-02-02")
    hours = DateRange(start="2024-01-01T00:00:00Z", through="2024-01-01T03:00:00Z", step="1h")
    assert days.values(WHEN) == ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
    assert hours.values(WHEN)[-1] == "2024-01-01T03:00:00Z" and hours.size(WHEN) == 4
    spec = parse_spec({"job": "analyzer", "params": {"year": {"dates": {
        "start": "today-2d", "through": "today"}}}}, config)
    plan = plan_run(spec, config, run_id="r", logical_time=WHEN)
    assert [i["params"]["year"] for i in plan.items()] == [
        "2024-03-08", "2024-03-09", "2024-03-10"]


@given(start=st.integers(-10_000, 10_000), length=st.integers(0, 300),
       step=st.integers(1, 50), down=st.booleans())
def test_through_is_the_stop_one_past_it(start: int, length: int, step: int,
                                         down: bool) -> None:
    # Given any inclusive range, and the stop-excluded range that means the same
    step = -step if down else step
    through = start + length * step
    inclusive = IntRange(start=start, through=through, step=step)
    excluded = IntRange(start=start, stop=through + (1 if step > 0 else -1), step=step)

    # Then both give the same values, the last of them `through`, and say so
    assert list(inclusive.values()) == list(excluded.values())
    assert inclusive.values()[-1] == through
    assert inclusive.size() == length + 1
    assert inclusive.explained().endswith(
        f"(through {through} included), {length + 1:,} value{'s' if length else ''}")
