"""Loading the deployment config: a bad one names every bad field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fanout.config import load_config, load_config_file
from fanout.errors import ConfigError
from fanout.spec.validate import check_schedule_specs

REPO = Path(__file__).resolve().parents[2]


def context() -> dict[str, Any]:
    return copy.deepcopy(json.loads((REPO / "cdk.json").read_text())["context"]["fanout"])


def test_the_repository_config_loads() -> None:
    # Given cdk.json / When loaded / Then the analyzer job and its defaults are there
    config = load_config_file(REPO / "cdk.json")
    job = config.job("analyzer")
    assert job.command == ["-y", "{year}"]
    assert job.local_command[:2] == ["python3", "examples/analyzer/analyzer.py"]
    assert config.limits.max_items_per_run == 100_000
    assert job.defaults.retry.max_attempts == 3
    # And the dispatcher reserves no concurrency: a new account can deploy it
    assert config.launch_gate.reserved_concurrency is None


def _with(change: Any) -> dict[str, Any]:
    ctx = context()
    change(ctx)
    return ctx


@pytest.mark.parametrize(("change", "fields"), [
    (lambda c: c["jobs"]["analyzer"].update(cpu=300), ["fanout.jobs.analyzer.cpu"]),
    (lambda c: c["jobs"]["analyzer"].update(memory=4096), ["fanout.jobs.analyzer.memory"]),
    (lambda c: c["jobs"].update({"Bad_Name": {}}), ["fanout.jobs"]),
    (lambda c: c.update(jobs={}), ["fanout.jobs"]),
    (lambda c: c.update(colour="red"), ["fanout.colour"]),
    (lambda c: c["limits"].update(max_items_per_run=0), ["fanout.limits.max_items_per_run"]),
    (lambda c: c["jobs"]["analyzer"]["defaults"].update(max_concurrency=0),
     ["fanout.jobs.analyzer.defaults.max_concurrency"]),
    (lambda c: c["network"].update(subnet_ids=["subnet-12ab"]), ["fanout.network"]),
    (lambda c: c["notifications"].update(email="nobody"), ["fanout.notifications.email"]),
    (lambda c: c.update(schedules=[{"name": "nightly", "expression": "every day",
                                    "spec": {"job": "analyzer", "params": {"year": [1]}}}]),
     ["fanout.schedules[0].expression"]),
    (lambda c: c.update(schedules=[{"name": "nightly", "expression": "rate(1 day)",
                                    "spec": {"job": "analyser", "params": {"year": [1]}}}]),
     ["fanout.schedules[0].spec.job"]),
    (lambda c: c.update(schedules=[{"name": "morning", "expression": "cron(0 9 * * ? *)",
                                    "start_date": "2027-02-30",
                                    "spec": {"job": "analyzer", "params": {"year": [1]}}}]),
     ["fanout.schedules[0].start_date"]),
    (lambda c: c.update(schedules=[{"name": "morning", "expression": "cron(0 9 * * ? *)",
                                    "end_date": "next week",
                                    "spec": {"job": "analyzer", "params": {"year": [1]}}}]),
     ["fanout.schedules[0].end_date"]),
    (lambda c: c.update(launch_gate={"reserved_concurrency": 0}),
     ["fanout.launch_gate.reserved_concurrency"]),
    (lambda c: (c["limits"].update(max_concurrency=0),
                c["jobs"]["analyzer"].update(architecture="MIPS")),
     ["fanout.jobs.analyzer.architecture", "fanout.limits.max_concurrency"]),
])
def test_a_bad_config_names_its_fields(change: Any, fields: list[str]) -> None:
    # Given cdk.json's config with a mistake
    bad = _with(change)
    # When loaded, and its schedules' specs checked (as the app and the CLI do)
    with pytest.raises(ConfigError) as exc:
        check_schedule_specs(load_config(bad))
    # Then every bad field is named
    assert sorted(exc.value.fields) == sorted(fields)
    assert str(exc.value).startswith("invalid fanout config")


def test_missing_context_is_named() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None)
    assert exc.value.fields == ["context.fanout"]


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    # Given no file, and a file that is not JSON
    broken = tmp_path / "cdk.json"
    broken.write_text("{not json")
    # When loaded / Then the path is named with what is wrong
    with pytest.raises(ConfigError) as missing:
        load_config_file(tmp_path / "absent.json")
    with pytest.raises(ConfigError) as invalid:
        load_config_file(broken)
    assert "no such file" in str(missing.value)
    assert "not valid JSON" in str(invalid.value)
    assert invalid.value.fields == [str(broken)]


def _scheduled(**window: str) -> dict[str, Any]:
    return _with(lambda c: c.update(schedules=[{
        "name": "morning", "expression": "cron(0 9 * * ? *)", "timezone": "Europe/Paris",
        "spec": {"job": "analyzer", "params": {"year": [1]}}, **window}]))


@pytest.mark.parametrize(("window", "says"), [
    ({"start_date": "2027-02-01", "end_date": "2027-01-31"},
     "schedule morning: end_date 2027-01-31 is not after start_date 2027-02-01"),
    ({"start_date": "2027-02-30"}, "schedule morning: '2027-02-30' is not a real date"),
    ({"end_date": "2027-01-04T09:00+01:00"}, "with no offset"),
])
def test_a_bad_schedule_window_is_one_line_naming_the_schedule_and_field(
        window: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_scheduled(**window))
    message = str(exc.value)
    assert says in message and "\n" not in message
    assert "end_date" in message or "start_date" in message


def test_a_window_on_a_one_time_schedule_is_refused() -> None:
    bad = _scheduled(start_date="2027-01-04")
    bad["schedules"][0]["expression"] = "at(2027-01-05T09:00:00)"
    with pytest.raises(ConfigError, match="do nothing for a one-time at"):
        load_config(bad)


def test_a_window_reads_days_and_times_in_the_schedules_zone() -> None:
    # Given every morning at 9:00 Paris time, from 4 January 2027 through 30 June 2027
    schedule = load_config(_scheduled(start_date="2027-01-04", end_date="2027-06-30")
                           ).schedules[0]
    # Then Scheduler is told from midnight Paris time (UTC+1) to the end of 30 June (UTC+2)
    assert schedule.window() == ("2027-01-03T23:00:00Z", "2027-06-30T22:00:00Z")
    # And a time is taken as it is, a bound left out stays open
    timed = load_config(_scheduled(start_date="2027-01-04T09:00")).schedules[0]
    assert timed.window() == ("2027-01-04T08:00:00Z", None)
