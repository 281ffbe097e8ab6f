"""EventBridge Scheduler's expressions and time zones, checked once for the CLI, the local
mode and the synth (all read the config through fanout.config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanout.config import load_config
from fanout.errors import ConfigError
from fanout.schedule_expressions import expression_problem

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("expression", [
    "cron(0 2 * * ? *)", "cron(0/15 * ? * MON-FRI *)", "cron(0 10 ? * 2#1 *)",
    "cron(0 2 L * ? *)", "cron(30 8 1,15 JAN-JUN ? 2030)", "cron(*/5 * * * ? *)",
    "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)",
    "rate(7 days)", "at(2030-01-31T02:00:00)",
])
def test_expressions_scheduler_takes_are_taken(expression: str) -> None:
    assert expression_problem(expression) is None


@pytest.mark.parametrize(("expression", "says"), [
    ("cron(0 2 * * *)", "has 5 fields"),
    ("cron(0 2 * * 2 *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 25 * * ? *)", "the hours field '25' holds '25'; it takes 0 to 23"),
    ("cron(0 2 * 13 ? *)", "month field"),
    ("cron(0 2 * * ? 1900)", "it takes 1970 to 2199"),
    ("rate(5 fortnights)", "use minutes, hours or days"),
    ("rate(1 hours)", "write rate(1 hour)"),
    ("rate(2 day)", "write rate(2 days)"),
    ("rate(0 days)", "positive whole number"),
    ("rate(1.5 hours)", "positive whole number"),
    ("at(2024-13-01T00:00:00)", "at(yyyy-mm-ddThh:mm:ss)"),
    ("at(2030-01-31 02:00)", "at(yyyy-mm-ddThh:mm:ss)"),
    ("daily", "is not a schedule expression"),
])
def test_expressions_scheduler_refuses_are_refused_with_the_fix(expression: str,
                                                                 says: str) -> None:
    problem = expression_problem(expression)
    assert problem is not None and says in problem, problem


def schedule_config(cdk_json: Path, **schedule: Any) -> dict[str, Any]:
    context: dict[str, Any] = json.loads(cdk_json.read_text())["context"]["fanout"]
    context["schedules"] = [{"name": "nightly", "expression": "cron(0 2 * * ? *)",
                             "spec": {"job": "analyzer", "params": {"year": [2020]}},
                             **schedule}]
    return context


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Paris", "America/New_York"])
def test_iana_time_zones_are_taken(cdk_json: Path, timezone: str) -> None:
    assert load_config(schedule_config(cdk_json, timezone=timezone)).schedules[0].timezone \
        == timezone


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "CEST", "../etc/passwd", ""])
def test_a_time_zone_iana_does_not_know_is_refused(cdk_json: Path, timezone: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(schedule_config(cdk_json, timezone=timezone))
    assert raised.value.fields == ["fanout.schedules[0].timezone"]
    assert "is not an IANA time zone" in raised.value.message


def test_the_synth_refuses_what_the_cli_refuses(cdk_json: Path) -> None:
    # Given a config the CLI refuses (a schedule Scheduler would refuse at deploy time)
    context = schedule_config(cdk_json, expression="cron(0 2 * * *)")
    with pytest.raises(ConfigError) as raised:
        load_config(context)

    # When the CDK app is run on it (what `cdk synth` and `fanout local` run)
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"fanout": context}),
           "CDK_OUTDIR": "/nonexistent/never-written"}
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)

    # Then it fails before building anything, with the very same message
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {raised.value.message}"
