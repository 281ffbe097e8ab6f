"""Expansion of run specs: counts, order, rendering, limits — against a brute-force model."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fanout.config import FanoutConfig
from fanout.errors import SpecError
from fanout.policy import ECS_OVERRIDES_LIMIT
from fanout.schema import container_overrides
from fanout.spec import items_from
from fanout.spec.items_from import ItemsSource
from fanout.spec.plan import plan_run
from fanout.spec.templates import overrides_size
from fanout.spec.validate import parse_spec

LOGICAL = datetime(2024, 3, 10, 15, 30, tzinfo=UTC)


def plan(raw: dict[str, Any], config: FanoutConfig, **kwargs: Any) -> Any:
    return plan_run(parse_spec(raw, config), config, **kwargs)


def fields_of(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return exc.value.fields


# --- a brute-force model of the expansion ---------------------------------------------------

scalars = st.one_of(
    st.integers(-50, 3000),
    st.text("abcxyz-_ é\"{}\\%\n", min_size=1, max_size=6),
    st.booleans(),
)


@st.composite
def axes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(the spec's params, each axis's values in order)."""
    names = draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=3, unique=True))
    params: dict[str, Any] = {}
    values: dict[str, list[Any]] = {}
    for name in names:
        kind = draw(st.sampled_from(["list", "range", "dates"]))
        if kind == "list":
            listed = draw(st.lists(scalars, min_size=1, max_size=5,
                                   unique_by=lambda v: (type(v) is bool, v)))
            params[name], values[name] = listed, listed
        elif kind == "range":
            start = draw(st.integers(-20, 20))
            step = draw(st.sampled_from([1, 2, 3, -1, -2]))
            size = draw(st.integers(1, 6))
            stop = start + step * size
            if draw(st.booleans()):  # the same values, written with the last one included
                params[name] = {"range": {"start": start, "through": stop - step,
                                          "step": step}}
            else:
                params[name] = {"range": {"start": start, "stop": stop, "step": step}}
            values[name] = list(range(start, stop, step))
        else:
            days = draw(st.integers(1, 5))
            end = "stop" if draw(st.booleans()) else "through"
            last = 5 - days + (1 if end == "through" else 0)  # the day after, or the last day
            params[name] = {"dates": {"start": "today-5d",
                                      end: f"today-{last}d" if last else "today"}}
            values[name] = [f"2024-03-{d:02d}" for d in range(5, 5 + days)]
    return params, values


@st.composite
def matrix_specs(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A matrix spec with excludes and includes, and the params the model expects."""
    params, values = draw(axes())
    names = list(values)
    exclude = []
    for _ in range(draw(st.integers(0, 4))):
        keys = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        exclude.append({k: draw(st.sampled_from(values[k])) for k in keys})

    def excluded(item: dict[str, Any]) -> bool:
        return any(all(_same(item[k], v) for k, v in p.items()) for p in exclude)

    product = [dict(zip(names, combo, strict=True))
               for combo in itertools.product(*values.values())]
    kept = [item for item in product if not excluded(item)]
    include = []
    for n in range(draw(st.integers(0, 3))):
        include.append({name: f"extra-{n}" for name in names})  # never a matrix value
    if not kept and not include:
        include.append({name: "extra-last" for name in names})
    command = ["--index", "{index}", *[f"{{{n}}}" for n in names], "run={run_id}%s{{}}"]
    environment = {f"P_{n.upper()}": f"<{{{n}}}>" for n in names}
    spec = {"job": "analyzer", "params": params, "exclude": exclude, "include": include,
            "command": command, "environment": environment}
    return spec, kept + include


def _same(a: Any, b: Any) -> bool:
    return (type(a) is bool, a) == (type(b) is bool, b)


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@pytest.fixture(scope="module")
def roomy(make_config: Callable[..., FanoutConfig]) -> FanoutConfig:
    return make_config(max_items=10_000_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=matrix_specs())
def test_count_order_and_rendering_match_the_brute_force_model(
    case: tuple[dict[str, Any], list[dict[str, Any]]], roomy: FanoutConfig
) -> None:
    # Given a matrix with excludes and includes, and what a brute-force expansion gives
    spec, expected = case
    # When it is planned and streamed twice
    planned = plan(spec, roomy, run_id="run-7", logical_time=LOGICAL)
    lines = list(planned.json_lines())
    again = list(plan(spec, roomy, run_id="run-7", logical_time=LOGICAL).json_lines())
    items = list(planned.items())
    # Then the count (product - excluded + included) is exact and known before expanding
    assert planned.count == len(expected) == len(lines) == len(items)
    # And the order is the model's, deterministically, with indexes in sequence
    assert [item["params"] for item in items] == expected
    assert [item["index"] for item in items] == list(range(len(expected)))
    assert again == lines
    # And the JSON lines are exactly the items, compact
    assert lines == [json.dumps(item, separators=(",", ":")) for item in items]
    # And every item renders its values into command and environment
    for item in items:
        params = item["params"]
        assert item["command"] == ["--index", str(item["index"]),
                                   *[_text(v) for v in params.values()], "run=run-7%s{}"]
        assert item["environment"] == {f"P_{k.upper()}": f"<{_text(v)}>"
                                       for k, v in params.items()}


def test_a_huge_matrix_is_counted_without_expanding(roomy: FanoutConfig) -> None:
    # Given a 3,000 x 3,000 matrix (9 million items) with overlapping excludes
    spec = {"job": "analyzer",
            "params": {"year": {"range": {"start": 0, "stop": 3000}},
                       "region": {"range": {"start": 0, "stop": 3000}}},
            "exclude": [{"year": 5}, {"region": 7}, {"year": 5, "region": 7}]}
    # When it is planned
    started = time.perf_counter()
    planned = plan(spec, roomy)
    elapsed = time.perf_counter() - started
    # Then its count is exact (inclusion-exclusion), with no time spent per item
    assert planned.count == 9_000_000 - 3000 - 3000 + 1
    assert elapsed < 2.0, f"planning took {elapsed:.2f}s: it must not iterate the items"


def test_a_matrix_of_a_trillion_items_is_refused_at_once(roomy: FanoutConfig) -> None:
    # Given axes of a million values each (10^12 items) and the largest cap allowed
    spec = {"job": "analyzer",
            "params": {"year": {"range": {"start": 0, "stop": 1_000_000}},
                       "region": {"range": {"start": 0, "stop": 1_000_000}}},
            "exclude": [{"year": 3}]}
    # When it is planned
    started = time.perf_counter()
    with pytest.raises(SpecError) as exc:
        plan(spec, roomy)
    # Then it is refused as over the cap, before any item is built
    assert time.perf_counter() - started < 2.0
    assert fields_of(exc) == ["params"]
    assert "999,999,000,000 items is over the deployment's cap of 10,000,000" in str(exc.value)


def test_the_cap_is_inclusive(make_config: Callable[..., FanoutConfig]) -> None:
    # Given a cap of 21 items
    config = make_config(max_items=21)
    years = {"job": "analyzer", "params": {"year": {"range": {"start": 1999, "stop": 2020}}}}
    # When the 21 years are planned, and again with one included item more
    assert plan(years, config).count == 21
    with pytest.raises(SpecError) as exc:
        plan({**years, "include": [{"year": 1990}]}, config)
    # Then 21 fit and 22 are refused
    assert "22 items is over the deployment's cap of 21" in str(exc.value)


def test_relative_dates_resolve_against_the_logical_time(config: FanoutConfig) -> None:
    # Given the last seven days, and hours of yesterday
    spec = {"job": "analyzer", "params": {
        "day": {"dates": {"start": "today-7d", "stop": "today"}}}, "command": ["{day}"]}
    hours = {"job": "analyzer", "params": {
        "at": {"dates": {"start": "today-1d", "stop": "today", "step": "6h"}}},
        "command": ["{at}"]}
    # When planned at a logical time of 2024-03-10 15:30 UTC
    days = [i["params"]["day"] for i in plan(spec, config, logical_time=LOGICAL).items()]
    at = [i["params"]["at"] for i in plan(hours, config, logical_time=LOGICAL).items()]
    # Then the days are 03-03 .. 03-09 and the hours are whole datetimes in UTC
    assert days == [f"2024-03-{d:02d}" for d in range(3, 10)]
    assert at == ["2024-03-09T00:00:00Z", "2024-03-09T06:00:00Z",
                  "2024-03-09T12:00:00Z", "2024-03-09T18:00:00Z"]


def test_relative_dates_that_end_before_they_start_are_refused(config: FanoutConfig) -> None:
    # Given a start relative to the logical time and a fixed stop before it
    spec = {"job": "analyzer", "params": {
        "day": {"dates": {"start": "today-7d", "stop": "2024-01-01"}}}, "command": ["{day}"]}
    # When it is planned
    with pytest.raises(SpecError) as exc:
        plan(spec, config, logical_time=LOGICAL)
    # Then the dates axis is named
    assert fields_of(exc) == ["params.day.dates"]


def test_logical_time_defaults_to_the_spec_then_now(config: FanoutConfig) -> None:
    # Given a spec with its own logical time, and one without
    with_time = {"job": "analyzer", "params": {"year": [1]},
                 "logical_time": "2024-05-01T08:00:00+02:00"}
    # When planned
    planned = plan(with_time, config)
    before = datetime.now(UTC)
    without = plan({"job": "analyzer", "params": {"year": [1]}}, config)
    # Then the logical time is aware UTC: the spec's, else the time of planning
    assert planned.logical_time == datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    assert planned.logical_time.tzinfo == UTC
    assert before <= without.logical_time <= datetime.now(UTC)


def test_exclude_and_include_are_checked_against_the_axes(config: FanoutConfig) -> None:
    # Given an exclude off the axis and an include that is already a matrix item
    spec = {"job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 2005}}},
            "exclude": [{"year": 1990}, {"year": True}], "include": [{"year": 2001}]}
    # When planned
    with pytest.raises(SpecError) as exc:
        plan(spec, config)
    # Then every bad exclude value is named
    assert fields_of(exc) == ["exclude[0].year", "exclude[1].year"]
    # And an include that duplicates a kept matrix item is named, but one excluded is fine
    with pytest.raises(SpecError) as exc:
        plan({**spec, "exclude": []}, config)
    assert fields_of(exc) == ["include[0]"]
    readded = plan({**spec, "exclude": [{"year": 2001}]}, config)
    assert [i["params"]["year"] for i in readded.items()] == [2000, 2002, 2003, 2004, 2001]


def test_excluding_everything_is_refused(config: FanoutConfig) -> None:
    # Given excludes that cover the whole matrix
    spec = {"job": "analyzer", "params": {"year": [1, 2]},
            "exclude": [{"year": 1}, {"year": 2}]}
    # When planned
    with pytest.raises(SpecError) as exc:
        plan(spec, config)
    # Then the spec is refused: a run of nothing is a mistake
    assert fields_of(exc) == ["exclude"]


def test_templates_need_every_item_to_have_their_placeholders(config: FanoutConfig) -> None:
    # Given explicit items and an include where one lacks {year}
    spec = {"job": "analyzer", "items": [{"year": 1}, {"region": "eu"}],
            "include": [{"region": "us"}]}
    # When planned
    with pytest.raises(SpecError) as exc:
        plan(spec, config)
    # Then each item without a value for the job's command template is named
    assert fields_of(exc) == ["items[1]", "include[0]"]
    assert "{year}" in str(exc.value)


def test_explicit_items_keep_their_order_and_excludes_apply(config: FanoutConfig) -> None:
    # Given explicit items with an exclude
    spec = {"job": "analyzer", "items": [{"year": 3}, {"year": 1}, {"year": 2}],
            "exclude": [{"year": 1}], "include": [{"year": 9}]}
    # When expanded
    items = list(plan(spec, config).items())
    # Then they come in their order, the excluded one dropped, the include last
    assert [(i["index"], i["params"]["year"]) for i in items] == [(0, 3), (1, 2), (2, 9)]
    assert items[0]["command"] == ["-y", "3"]


def _overrides_base(job: str, digits: int) -> int:
    return overrides_size(job, [""], {}, index_digits=digits)


def test_the_overrides_limit_is_exact_at_8_kib(config: FanoutConfig) -> None:
    # Given commands whose overrides are exactly at the limit and one character over
    room = ECS_OVERRIDES_LIMIT - _overrides_base("analyzer", digits=1)
    at_limit = {"job": "analyzer", "params": {"year": [1]}, "command": ["x" * room]}
    over = {**at_limit, "command": ["x" * (room + 1)]}
    # When planned
    assert plan(at_limit, config).count == 1
    with pytest.raises(SpecError) as exc:
        plan(over, config)
    # Then only the one over is refused, naming the command
    assert fields_of(exc) == ["command"]
    assert f"{ECS_OVERRIDES_LIMIT + 1:,} characters" in str(exc.value)


def test_the_overrides_check_counts_fanouts_variables_at_their_widest() -> None:
    # Given the overrides of one attempt, widest run id and attempt, its output location
    # in a bucket of the widest name S3 allows
    widest = "s3://" + "b" * 63 + "/runs/" + "r" * 80 + "/outputs/99/"
    overrides = container_overrides("analyzer", ["-y", "1999"], {"A": "b"},
                                    run_id="r" * 80, index="99", attempt="999", output=widest)
    # When measured
    size = overrides_size("analyzer", ["-y", "1999"], {"A": "b"}, index_digits=2)
    # Then it is the compact JSON of exactly those overrides
    assert size == len(json.dumps(overrides, separators=(",", ":")))
    names = [e["name"] for e in overrides["containerOverrides"][0]["environment"]]
    assert names == ["A", "FANOUT_RUN_ID", "FANOUT_ITEM_INDEX", "FANOUT_ATTEMPT",
                     "FANOUT_OUTPUT"]


def test_the_check_measures_the_overrides_runtask_is_given() -> None:
    # Given an item variable named like one of fanout's own
    from fanout.aws.ecs import LaunchRequest

    environment = {"FANOUT_RUN_ID": "mine", "A": "b"}
    output = "s3://" + "b" * 63 + "/runs/" + "r" * 80 + "/outputs/99/"
    request = LaunchRequest(run_id="r" * 80, index=99, attempt=999, task_definition="td",
                            container="analyzer", command=["-y", "1999"],
                            environment=environment, capacity="FARGATE", client_token="t",
                            output=output)
    # When RunTask's overrides and the checked size are made
    given = request.overrides()
    size = overrides_size("analyzer", ["-y", "1999"], environment, index_digits=2)
    # Then they are one and the same: fanout's variable wins, once, and is what is counted
    assert given == container_overrides("analyzer", ["-y", "1999"], environment,
                                        run_id="r" * 80, index=99, attempt=999, output=output)
    names = [e["name"] for e in given["containerOverrides"][0]["environment"]]
    assert names == ["FANOUT_RUN_ID", "A", "FANOUT_ITEM_INDEX", "FANOUT_ATTEMPT",
                     "FANOUT_OUTPUT"]
    assert given["containerOverrides"][0]["environment"][0]["value"] == "r" * 80
    assert size == len(json.dumps(given, separators=(",", ":")))


def test_the_widest_matrix_item_decides_unless_it_is_excluded(config: FanoutConfig) -> None:
    # Given an axis with one value too wide for the overrides
    room = ECS_OVERRIDES_LIMIT - _overrides_base("analyzer", digits=1)
    wide = "w" * (room + 10)
    spec = {"job": "analyzer", "params": {"p": ["a", wide, "b"]}, "command": ["{p}"]}
    # When planned as is, and with the wide value excluded
    with pytest.raises(SpecError) as exc:
        plan(spec, config)
    kept = plan({**spec, "exclude": [{"p": wide}]}, config)
    # Then the wide item is refused, and without it the run is fine
    assert fields_of(exc) == ["command"]
    assert [i["params"]["p"] for i in kept.items()] == ["a", "b"]


def test_items_from_needs_its_items_and_checks_them(config: FanoutConfig) -> None:
    # Given a spec reading its items from S3
    spec = {"job": "analyzer", "items_from": "s3://my-bucket/years.csv"}
    parsed = parse_spec(spec, config)
    # When planned before and after the items are read
    with pytest.raises(SpecError) as exc:
        plan_run(parsed, config)
    planned = plan_run(parsed, config,
                       items=ItemsSource(body_of(b"year\n1999\n2000\n"), "csv"))
    # Then the missing items are named, and read items expand (CSV values are text)
    assert fields_of(exc) == ["items_from"]
    assert [i["command"] for i in planned.items()] == [["-y", "1999"], ["-y", "2000"]]
    assert parsed.source_format() == "csv"


@pytest.mark.parametrize(("data", "fmt", "expected"), [
    (b'[{"year": 1999}, {"year": 2000}]', "json", [{"year": 1999}, {"year": 2000}]),
    (b'{"year": 1999}\n\n{"year": 2000, "r": "eu"}\n', "jsonl",
     [{"year": 1999}, {"year": 2000, "r": "eu"}]),
    (b"\xef\xbb\xbfyear,r\r\n1999,eu\r\n2000,\"u,s\"\r\n", "csv",
     [{"year": "1999", "r": "eu"}, {"year": "2000", "r": "u,s"}]),
])
def test_items_from_is_parsed_in_each_format(data: bytes, fmt: Any, expected: Any) -> None:
    # Given an object's content / When read / Then its rows are the items
    assert list(ItemsSource(body_of(data), fmt)) == expected


@pytest.mark.parametrize(("data", "fmt", "says"), [
    (b'{"year": 1999}', "json", "not a JSON array"),
    (b"[1, 2]", "json", "item 0 is not an object"),
    (b"[]", "json", "holds no items"),
    (b'{"year": 1}\n{"year": \n', "jsonl", "line 2 is not JSON"),
    (b"year\n1999,2000\n", "csv", "CSV line 2 does not match the header"),
    (b'[{"year": [1]}]', "json", "must be a string, number or boolean"),
    (b'[{"index": 1}]', "json", "not a usable parameter name"),
    (b"[NaN]", "json", "not a JSON array"),
    (b"\xff\xfe", "json", "not UTF-8"),
])
def test_items_from_that_is_not_items_is_refused_naming_it(
        data: bytes, fmt: Any, says: str, config: FanoutConfig) -> None:
    # Given content that is not items / When a spec reading it is planned
    spec = parse_spec({"job": "analyzer", "items_from": f"s3://my-bucket/y.{fmt}"}, config)
    with pytest.raises(SpecError) as exc:
        plan_run(spec, config, items=ItemsSource(body_of(data), fmt))
    # Then the error names items_from and says what is wrong
    assert set(exc.value.fields) == {"items_from"}
    assert says in str(exc.value)


STREAMED_CASES = [
    b'[{"year": 1999}, {"year": 2000}]',
    b' [ {"year": 1999.5} ,\n{"year": 2000, "r": "\\u00e9"} ] \n',
    b'{"year": 1999}\n\n{"year": 2000, "r": "eu"}\n',
    b'{"year": 1999}\r\n{"year": 2000}',
    b"\xef\xbb\xbfyear,r\r\n1999,eu\r\n2000,\"u,s\"\r\n",
    b'year,r\n1999,"two\nlines"\n2000,\xc3\xa9\n',
]
STREAMED_FORMATS = ["json", "json", "jsonl", "jsonl", "csv", "csv"]


def body_of(data: bytes) -> Any:
    return lambda: io.BytesIO(data)


def read_whole(data: bytes, fmt: str) -> list[Any]:
    """The rows of a whole object as the standard library reads them (the oracle)."""
    text = data.decode("utf-8-sig")
    if fmt == "json":
        rows: list[Any] = json.loads(text)
        return rows
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(("data", "fmt"), list(zip(STREAMED_CASES, STREAMED_FORMATS, strict=True)))
@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_streamed_items_are_the_items_read_whole(data: bytes, fmt: Any, chunk: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an object read in chunks of any size (a chunk may end inside a character,
    # a number, a quoted CSV field or a line ending)
    monkeypatch.setattr(items_from, "CHUNK_BYTES", chunk)
    # When streamed, Then its items are those of the standard library's reading of it
    # whole, and again on each walk
    source = ItemsSource(body_of(data), fmt)
    assert list(source) == read_whole(data, fmt) == list(source)


@pytest.mark.parametrize(("data", "fmt", "says"), [
    (b'{"year": 1999}', "json", "not a JSON array of objects"),
    (b'[{"year": 1}, {"year": 2}', "json", "not a JSON array"),
    (b'[{"year": 1} {"year": 2}]', "json", "expected ',' or ']'"),
    (b'[{"year": 1}] [', "json", "text after the array"),
    (b"[NaN]", "json", "not a JSON array"),
    (b'{"year": 1}\n{"year": \n', "jsonl", "line 2 is not JSON"),
    (b"year\n1999,2000\n", "csv", "CSV line 2 does not match the header"),
    (b"\xff\xfe", "json", "not UTF-8"),
])
def test_streamed_items_name_items_from_for_bad_content(data: bytes, fmt: Any, says: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(items_from, "CHUNK_BYTES", 4)
    with pytest.raises(SpecError) as exc:
        list(ItemsSource(body_of(data), fmt))
    assert set(exc.value.fields) == {"items_from"}
    assert says in str(exc.value)


def test_a_streamed_items_from_plans_as_the_same_items_given_in_the_spec(
        config: FanoutConfig) -> None:
    # Given a spec reading its items from S3, excluding one, including another
    spec = parse_spec({"job": "analyzer", "items_from": "s3://my-bucket/years.jsonl",
                       "exclude": [{"year": 2000}], "include": [{"year": 1990}]}, config)
    years = range(1995, 2005)
    data = b"".join(b'{"year": %d}\n' % y for y in years)
    # When planned from the stream, and as a spec giving the same items itself
    streamed = plan_run(spec, config, items=ItemsSource(body_of(data), "jsonl"))
    whole = plan(({"job": "analyzer", "items": [{"year": y} for y in years],
                   "exclude": [{"year": 2000}], "include": [{"year": 1990}]}), config)
    # Then both give the same count and the same manifest lines
    assert streamed.count == whole.count == 10
    assert list(streamed.json_lines()) == list(whole.json_lines())


def test_a_streamed_items_from_is_checked_as_one_read_whole(config: FanoutConfig) -> None:
    # Given items with 25 bad rows (more than are listed) and one missing a placeholder
    spec = parse_spec({"job": "analyzer", "items_from": "s3://my-bucket/y.jsonl"}, config)
    rows = [{"year": n} for n in range(5)] + [{"year": [n]} for n in range(25)] + [{"r": 1}]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    # When planned from the stream
    with pytest.raises(SpecError) as streamed:
        plan_run(spec, config, items=ItemsSource(body_of(data), "jsonl"))
    # Then the bad rows are listed up to 20 and the rest counted, and the row without the
    # template's {year} is named too
    problems = [str(p) for p in streamed.value.problems]
    assert problems[:20] == [f"items_from: item {n}: year must be a string, number or "
                             "boolean" for n in range(5, 25)]
    assert problems[20] == "items_from: ... and 5 more"
    assert problems[21:] == ["items_from: item 30: has no value for {year} (used by templates)"]


def test_an_empty_streamed_items_from_holds_no_items(config: FanoutConfig) -> None:
    spec = parse_spec({"job": "analyzer", "items_from": "s3://my-bucket/y.csv"}, config)
    with pytest.raises(SpecError, match="holds no items"):
        plan_run(spec, config, items=ItemsSource(body_of(b"year\n"), "csv"))


def test_streaming_does_not_hold_the_items(roomy: FanoutConfig) -> None:
    # Given a 1,000 x 1,000 matrix
    spec = {"job": "analyzer", "params": {"year": {"range": {"start": 0, "stop": 1000}},
                                          "r": [f"r{i}" for i in range(1000)]}}
    planned = plan(spec, roomy)
    # When the first lines are taken from the stream
    lines = planned.json_lines()
    first = [next(lines) for _ in range(3)]
    # Then they come without the million being built first, in product order
    assert [json.loads(line)["params"] for line in first] == [
        {"year": 0, "r": "r0"}, {"year": 0, "r": "r1"}, {"year": 0, "r": "r2"}]
    assert planned.count == 1_000_000


def test_a_spec_of_only_include_items_expands(config: FanoutConfig) -> None:
    # Given no matrix, only include items for the job's {year} template
    spec = {"job": "analyzer", "include": [{"year": 1999}, {"year": 2005}]}
    # When expanded
    items = list(plan(spec, config).items())
    # Then the included items are the run
    assert [i["command"] for i in items] == [["-y", "1999"], ["-y", "2005"]]
