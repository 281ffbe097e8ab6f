"""Synthesis as a user runs it: the pinned CDK CLI, bad configs, schedules, env size."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fanout.local.template import resources, run_state_machine, state_machine_definition
from infra.functions import ENV_LIMIT_BYTES, EnvTooLarge
from tests.infra.conftest import REPO, repo_context, synthesize

CDK = REPO / "node_modules" / ".bin" / "cdk"


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", **extra}


def test_pinned_cli_synthesizes_the_app(tmp_path: Path) -> None:
    # Given the CDK CLI installed by `make setup` from package-lock.json
    assert CDK.exists(), "run `make setup` (npm ci) first"
    version = subprocess.run([str(CDK), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("2.1148.1")

    # When a user synthesizes with cdk.json's app command (cdk-nag attached)
    done = subprocess.run(
        [str(CDK), "synth", "--quiet", "-o", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, env=cli_env(), timeout=240,
    )

    # Then it succeeds with no unacknowledged finding, and the template holds the machine
    assert done.returncode == 0, done.stderr[-3000:]
    template = json.loads((tmp_path / "Fanout.template.json").read_text())
    assert state_machine_definition(template)["StartAt"] == "Expand"
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report.get("success", True) is True or "ERROR" not in done.stderr


def test_bad_config_fails_synth_naming_the_field(tmp_path: Path) -> None:
    # Given a config whose job has a memory Fargate refuses for its cpu
    context = copy.deepcopy(repo_context())
    context["jobs"]["analyzer"]["memory"] = 300

    # When the app is run the way the CLI runs it (context in CDK_CONTEXT_JSON)
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "app.py"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env=cli_env(CDK_CONTEXT_JSON=json.dumps({"fanout": context}), CDK_OUTDIR=str(tmp_path)),
    )

    # Then it exits 1 with one message naming the field
    assert done.returncode == 1
    assert "fanout.jobs.analyzer" in done.stderr
    assert "fanout.jobs.analyzer.memory: 300 MiB does not fit cpu 256: Fargate allows 512, " \
        "1024, 2048 MiB" in done.stderr
    assert "Traceback" not in done.stderr


def test_environment_over_4kb_fails_synth(tmp_path: Path) -> None:
    # Given jobs whose JSON would not fit in Expand's environment
    context = copy.deepcopy(repo_context())
    big = {f"VAR_{i}": "{year}" + "x" * 60 for i in range(80)}
    context["jobs"]["analyzer"]["environment"] = big

    # When the stack is built
    with pytest.raises(EnvTooLarge, match=f"over Lambda's {ENV_LIMIT_BYTES}.*FANOUT_JOBS"):
        synthesize(context, tmp_path)


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    context = copy.deepcopy(repo_context())
    context["schedules"] = [{
        "name": "nightly",
        "expression": "cron(0 2 * * ? *)",
        "timezone": "Europe/Paris",
        "flexible_window_minutes": 15,
        "spec": {"job": "analyzer", "params": {"year": {"range": {"start": 1999, "stop": 2020}}}},
    }, {
        # The seed's "every morning at 9:00 am, but not before a specific date"
        "name": "morning",
        "expression": "cron(0 9 * * ? *)",
        "timezone": "Europe/Paris",
        "start_date": "2027-01-04",
        "spec": {"job": "analyzer", "params": {"year": [2026]}},
    }, {
        "name": "spring",
        "expression": "cron(0 9 ? * MON-FRI *)",
        "timezone": "America/New_York",
        "start_date": "2027-03-01T08:30",
        "end_date": "2027-05-31",
        "spec": {"job": "analyzer", "params": {"year": [2026]}},
    }]
    # And a reserved concurrency for the dispatcher (opt-in: a new account has none)
    context["launch_gate"] = {"reserved_concurrency": 1}
    return synthesize(context, tmp_path_factory.mktemp("scheduled"))[1]


def schedule_named(template: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s["Properties"] for s in resources(template, "AWS::Scheduler::Schedule").values()
                if json.loads(s["Properties"]["Target"]["Input"])["schedule"] == name]
    return found


def test_schedule_starts_the_state_machine_with_its_spec(scheduled: dict[str, Any]) -> None:
    props = schedule_named(scheduled, "nightly")
    assert props["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert props["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    target = props["Target"]
    assert "Ref" in target["Arn"]
    assert json.loads(target["Input"]) == {
        "timezone": "Europe/Paris",
        "job": "analyzer",
        "params": {"year": {"range": {"start": 1999, "stop": 2020}}},
        "trigger": "schedule",
        "logical_time": "<aws.scheduler.scheduled-time>",
        "schedule": "nightly",
    }


def test_a_schedules_window_is_given_in_utc_from_its_time_zone(
        scheduled: dict[str, Any]) -> None:
    # Every morning at 9:00 Paris time, not before 4 January 2027 (Paris is UTC+1 then)
    morning = schedule_named(scheduled, "morning")
    assert morning["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert morning["StartDate"] == "2027-01-03T23:00:00Z" and "EndDate" not in morning
    # Weekdays from 1 March 08:30 through 31 May, New York time (EST, then EDT)
    spring = schedule_named(scheduled, "spring")
    assert (spring["StartDate"], spring["EndDate"]) == ("2027-03-01T13:30:00Z",
                                                        "2027-06-01T04:00:00Z")
    # A schedule without a window has none
    nightly = schedule_named(scheduled, "nightly")
    assert "StartDate" not in nightly and "EndDate" not in nightly


def test_the_dispatcher_reserves_concurrency_only_when_configured(
        scheduled: dict[str, Any], template: dict[str, Any]) -> None:
    def dispatcher(of: dict[str, Any]) -> dict[str, Any]:
        (found,) = [r["Properties"] for r in resources(of, "AWS::Lambda::Function").values()
                    if r["Properties"].get("Description") == "fanout dispatch"]
        return found

    # The repository's config reserves none: it deploys on a new account
    assert "ReservedConcurrentExecutions" not in dispatcher(template)
    # A config that asks for it gets it
    assert dispatcher(scheduled)["ReservedConcurrentExecutions"] == 1
    # And it stays out of the dispatcher's environment (nothing at run time reads it)
    gate = dispatcher(scheduled)["Environment"]["Variables"]["FANOUT_LAUNCH_GATE"]
    assert "reserved_concurrency" not in json.dumps(gate)


def test_schedule_role_may_only_start_this_state_machine(scheduled: dict[str, Any]) -> None:
    machine = run_state_machine(scheduled)
    (role,) = [r for r in resources(scheduled, "AWS::IAM::Role").values()
               if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
               .get("Service") == "scheduler.amazonaws.com"]
    policies = [p for p in resources(scheduled, "AWS::IAM::Policy").values()
                if "Schedules" in p["Metadata"]["aws:cdk:path"]]
    (statement,) = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert role
    assert statement["Action"] == "states:StartExecution"
    assert statement["Resource"] == {"Ref": machine}
