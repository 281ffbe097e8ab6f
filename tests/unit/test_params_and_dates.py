"""--param read strictly (with a literal form), dates with offsets, the run id and the
logical time checked on every command that takes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fanout.cli.args import param_axis
from fanout.cli.main import main
from fanout.errors import UsageError


@pytest.mark.parametrize(("text", "axis"), [
    ("02134", ["02134"]),            # a leading zero: a code, not a number
    ("1e3", ["1e3"]),                # no exponent: text
    ("+5", ["+5"]),
    ("-3", [-3]),
    ("2.5", [2.5]),
    ("007,8", ["007", 8]),
    ("=10:30", ["10:30"]),           # NAME==VALUE: one value, as written
    ("=a,b", ["a,b"]),
    ("==x", ["=x"]),
    ("10:30", {"range": {"start": 10, "stop": 30}}),
    ("a:b", ["a:b"]),                # not a range, not dates: one text value
    ("today-7d:today", {"dates": {"start": "today-7d", "stop": "today"}}),
])
def test_param_values_keep_their_text_unless_plainly_numbers(text: str, axis: Any) -> None:
    assert param_axis(text) == axis


@pytest.mark.parametrize(("text", "says"), [
    ("2024-01-01:2024-02-01:1x", "the step '1x' is not like 1d"),
    ("today-7:today", "'today-7' needs a unit: today-7d"),
    ("2024-01-01:tomorrow", "looks like a date range"),
    ("1:x", "looks like a range"),
    ("1:2:3:4", "looks like a range"),
    ("1999:2020:0", "step must not be 0"),
    ("1,", "empty value"),
    (",a", "empty value"),
    ("0:" + "9" * 30, "too large for a range"),
])
def test_param_values_that_look_like_ranges_but_are_not_are_errors(text: str,
                                                                   says: str) -> None:
    with pytest.raises(ValueError, match="") as raised:
        param_axis(text)
    assert says in str(raised.value)
    assert "NAME==VALUE" in str(raised.value) or "e.g." in str(raised.value) \
        or "remove" in str(raised.value) or "like" in str(raised.value)


def expand(capsys: pytest.CaptureFixture[str], cdk_json: Path, *args: str) -> tuple[int, str,
                                                                                    str]:
    code = main(["expand", "--config", str(cdk_json), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_literal_param_reaches_the_command_as_written(capsys, cdk_json):
    code, out, _ = expand(capsys, cdk_json, "--job", "analyzer", "--param", "year==10:30")
    assert code == 0
    (item,) = [json.loads(line) for line in out.splitlines()]
    assert item["params"] == {"year": "10:30"} and item["command"] == ["-y", "10:30"]


@pytest.mark.parametrize("args", [
    ["--param", "year=2024-01-01T10:00:00+05:00:2024-01-01T12:00:00+05:00:1h"],
    ["--param", "year=2024-01-01T05:00:00Z:2024-01-01T07:00:00Z:1h"],
])
def test_dates_with_an_offset_are_the_same_instants_in_utc(capsys, cdk_json, args):
    # Given the same two hours written with a +05:00 offset and in UTC
    code, out, _ = expand(capsys, cdk_json, "--job", "analyzer", *args)

    # Then both give the instants in UTC (not the wall time with a Z pasted on)
    assert code == 0
    assert [json.loads(line)["params"]["year"] for line in out.splitlines()] == [
        "2024-01-01T05:00:00Z", "2024-01-01T06:00:00Z"]


def test_relative_dates_follow_the_logical_time(capsys, cdk_json):
    code, out, _ = expand(capsys, cdk_json, "--job", "analyzer", "--param",
                          "year=today-2d:today", "--logical-time", "2024-03-10T12:00:00+02:00")
    assert code == 0
    assert [json.loads(line)["params"]["year"] for line in out.splitlines()] == [
        "2024-03-08", "2024-03-09"]


def test_an_axis_no_template_uses_is_a_warning_not_an_error(capsys, cdk_json):
    code, out, err = expand(capsys, cdk_json, "--job", "analyzer", "--param", "year=1:3",
                            "--param", "region=us,eu", "--count")
    assert (code, out) == (0, "4\n")
    assert err == ("fanout: warning: params.region: no template uses this axis, so its items "
                   "differ in nothing the task sees; put {region} in the command or the "
                   "environment, or drop it\n"
                   "fanout: params.year: 1..2 (stop 3 excluded), 2 values\n")


@pytest.mark.parametrize("command", [
    ["start", "--job", "analyzer", "--param", "year=1"],
    ["rerun", "some-run"],
    ["expand", "--job", "analyzer", "--param", "year=1"],
])
@pytest.mark.parametrize("run_id", ["a b", "../x", "x" * 81, "a:b"])
def test_every_command_holds_run_ids_to_execution_names(capsys, cdk_json, command, run_id):
    # Given no stack anywhere: the check must come first, before any AWS call
    code = main([*command, "--run-id", run_id, "--config", str(cdk_json)]
                if command[0] != "rerun" else [*command, "--run-id", run_id])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("fanout: invalid argument: --run-id: "), err
    assert len(err.strip().splitlines()) == 1


def test_usage_error_lists_every_bad_param() -> None:
    from fanout.cli.args import parse_params

    with pytest.raises(UsageError) as raised:
        parse_params(["a=1,", "b=1:x", "c=ok"])
    assert raised.value.fields == ["--param a", "--param b"]


def test_today_is_midnight_in_the_specs_time_zone() -> None:
    from datetime import UTC, datetime

    from fanout.spec.axes import DateRange, zone_of

    # Given 2024-03-04 11:30 UTC, which is already 5 March 00:30 in Auckland
    when = datetime(2024, 3, 4, 11, 30, tzinfo=UTC)
    yesterday = DateRange(start="today-1d", stop="today")
    # Then "yesterday" is the zone's yesterday, and UTC's without a zone
    assert yesterday.values(when, zone_of("Pacific/Auckland")) == ["2024-03-04"]
    assert yesterday.values(when) == ["2024-03-03"]
    # And "today" is the zone's midnight, printed in UTC as a datetime
    hours = DateRange(start="today", stop="today+12h", step="6h")
    assert hours.values(when, zone_of("Pacific/Auckland")) == [
        "2024-03-04T11:00:00Z", "2024-03-04T17:00:00Z"]


def test_days_are_calendar_days_across_a_daylight_saving_change() -> None:
    from datetime import UTC, datetime

    from fanout.spec.axes import DateRange, zone_of

    # Given Auckland's clocks going back an hour on 2024-04-07 (a 25-hour day)
    zone = zone_of("Pacific/Auckland")
    days = DateRange(start="2024-04-06", stop="2024-04-09")
    when = datetime(2024, 4, 1, tzinfo=UTC)
    # Then each day is one value, none lost or doubled
    assert days.values(when, zone) == ["2024-04-06", "2024-04-07", "2024-04-08"]
    # And six-hour steps are elapsed time: 25 hours from midnight to midnight
    hours = DateRange(start="2024-04-07", stop="2024-04-08", step="6h")
    assert hours.size(when, zone) == 5


def test_a_spec_with_an_unknown_time_zone_names_it() -> None:
    from pydantic import ValidationError

    from fanout.spec.model import RunSpec

    with pytest.raises(ValidationError, match="'Mars/Olympus' is not an IANA time zone"):
        RunSpec.model_validate({"job": "analyzer", "items": [{"a": 1}],
                                "timezone": "Mars/Olympus"})
