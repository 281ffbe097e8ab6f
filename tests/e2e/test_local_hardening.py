"""``fanout local`` against what a user does wrong or to it: a job it cannot start, a run id
or folder it cannot use, signals at any moment; and what a task's environment holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from fanout.local.fargate import EmulatedFargate, user_environment
from fanout.local.tasks import TaskDefinition
from tests.e2e.conftest import (
    E2E_CONFIG,
    ROOT,
    SPECS,
    alive,
    fanout_command,
    parse,
    pids,
    records_dir,
    signalled_run,
    wait_for,
)

REGION, ACCOUNT = "us-east-1", "123456789012"
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/local"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}


def definition(local_command: list[str], **env: str) -> TaskDefinition:
    return TaskDefinition(
        arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/prog:1", family="prog",
        container="main", local_command=local_command, log_group="/fanout/prog",
        stream_prefix="prog", environment=env,
    )


@pytest.fixture
def fargate_with() -> Iterator[Any]:
    """Make an emulated Fargate on moto for one task definition and a base environment."""
    import boto3

    from fanout.local.aws import emulated_aws, take_over, write_logs

    with emulated_aws(), ExitStack() as stack:
        def make(task_definition: TaskDefinition, base: dict[str, str]) -> tuple[Any, Any]:
            fargate = EmulatedFargate(
                region=REGION, account=ACCOUNT, cluster_arn=CLUSTER,
                task_definitions={task_definition.arn: task_definition},
                publish=lambda _: None, write_logs=write_logs, stop_grace_seconds=0.5,
                base_environment=base,
            )
            stack.enter_context(take_over(fargate, lambda *_: b"{}"))
            stack.callback(fargate.stop_all, "test over")
            return boto3.client("ecs", region_name=REGION), fargate

        yield make


def start(client: Any, command: list[str], env: dict[str, str] | None = None) -> str:
    override: dict[str, Any] = {"name": "main", "command": command}
    if env:
        override["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    arn: str = client.run_task(
        cluster=CLUSTER, taskDefinition="prog", startedBy="fanout",
        overrides={"containerOverrides": [override]}, networkConfiguration=NETWORK,
    )["tasks"][0]["taskArn"]
    return arn


# --- a task's environment -----------------------------------------------------------------


def test_user_environment_drops_fanouts_internals_only():
    # Given a shell with the user's credentials, profile and region, and fanout's own vars
    environ = {"AWS_PROFILE": "dev", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAUSER",
               "HOME": "/home/u", "FANOUT_CONFIG": "cdk.json", "FANOUT_TABLE": "t",
               "POWERTOOLS_SERVICE_NAME": "fanout", "MOTO_ALLOW_NONEXISTENT_REGION": "1",
               "AWS_LAMBDA_FUNCTION_NAME": "launch", "_X_AMZN_TRACE_ID": "x"}

    # When a task's inheritance is taken from it
    kept = user_environment(environ)

    # Then the user's own variables stay and fanout's are gone
    assert kept == {"AWS_PROFILE": "dev", "AWS_REGION": "eu-west-1",
                    "AWS_ACCESS_KEY_ID": "AKIAUSER", "HOME": "/home/u"}


def test_task_sees_user_environment_then_definition_then_item_never_moto(fargate_with,
                                                                         tmp_path):
    # Given the user's environment, a task definition variable and an item variable
    out = tmp_path / "env.json"
    client, fargate = fargate_with(
        definition([sys.executable, "-c"], FROM_DEFINITION="d", SHARED="definition"),
        {"PATH": os.environ["PATH"], "AWS_PROFILE": "dev", "SHARED": "user", "MINE": "1"},
    )

    # When a task runs (inside the emulation, whose os.environ holds moto's credentials)
    start(client,
          [f"import json, os; open({str(out)!r}, 'w').write(json.dumps(dict(os.environ)))"],
          {"FROM_ITEM": "i", "SHARED": "item"})
    assert fargate.wait_stopped(15)

    # Then it sees the user's variables, the definition's and the item's (item wins),
    # and none of moto's fake credentials
    env = json.loads(out.read_text())
    assert env["AWS_PROFILE"] == "dev" and env["MINE"] == "1"
    assert (env["FROM_DEFINITION"], env["FROM_ITEM"], env["SHARED"]) == ("d", "i", "item")
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SESSION_TOKEN" not in env


def test_task_that_cannot_start_says_why_in_its_stop_and_its_log(fargate_with):
    import boto3

    # Given a task definition whose program does not exist
    client, fargate = fargate_with(definition(["./no-such-program"]), {"PATH": "/usr/bin"})

    # When a task of it is run
    arn = start(client, ["--year", "1999"])
    assert fargate.wait_stopped(15)

    # Then it stopped as failed to start, naming the program, and its log says so too
    (task,) = client.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    assert task["stopCode"] == "TaskFailedToStart"
    assert "'./no-such-program' was not found" in task["stoppedReason"]
    assert "exitCode" not in task["containers"][0]
    logs = boto3.client("logs", region_name=REGION)
    lines = [e["message"] for e in logs.get_log_events(
        logGroupName="/fanout/prog", logStreamName=f"prog/main/{arn.rsplit('/', 1)[1]}",
        startFromHead=True)["events"]]
    assert len(lines) == 1 and "no-such-program' was not found" in lines[0]


# --- refused before anything starts ---------------------------------------------------------


def config_with(tmp_path: Path, **job_changes: Any) -> Path:
    """The e2e config in tmp_path, its ``prog`` job changed (local_command paths kept)."""
    document = json.loads(E2E_CONFIG.read_text())
    prog = document["context"]["fanout"]["jobs"]["prog"]
    prog["local_command"] = [sys.executable, str(E2E_CONFIG.parent / "prog.py")]
    for key, value in job_changes.items():
        if value is None:
            prog.pop(key, None)
        else:
            prog[key] = value
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps(document))
    return path


def fanout(tmp_path: Path, *args: str | Path, timeout: float = 60) -> Any:
    result = subprocess.run(
        fanout_command(*args, "--json"), cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    return parse(result.returncode, result.stdout, result.stderr)


SPEC_ARGS = ("--job", "prog", "--param", "code=0", "--param", "sleep=0", "--param", "fail=0")


@pytest.mark.parametrize(("changes", "says"), [
    ({"local_command": None}, ["jobs.prog.local_command", "add local_command", "--docker"]),
    ({"local_command": []}, ["jobs.prog.local_command", "add local_command", "--docker"]),
    ({"local_command": ["no-such-program-anywhere", "x"]},
     ["jobs.prog.local_command", "'no-such-program-anywhere' is not a program on PATH"]),
    ({"local_command": ["./missing.py"]},
     ["jobs.prog.local_command", "missing.py is not an executable file"]),
])
def test_job_without_a_usable_local_command_is_refused_before_anything(tmp_path, changes,
                                                                       says):
    # Given a job whose tasks cannot start as local processes
    config = config_with(tmp_path, **changes)
    runs = tmp_path / "runs"

    # When it is run locally
    outcome = fanout(tmp_path, *SPEC_ARGS, "--config", config, "--records-dir", runs)

    # Then one line names the job and the fix, exit 2, nothing written
    assert outcome.code == 2, outcome.stderr[-2000:]
    assert outcome.stdout == ""
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
    for words in says:
        assert words in outcome.stderr
    assert not runs.exists()


@pytest.mark.parametrize(("run_id", "says"), [
    ("../../x", "'/'"),
    ("/abs/path", "'/'"),
    ("has space", "a space"),
    ("x" * 81, "at most 80"),
    ("..", "not a usable run id"),
    ("a:b", "':'"),
])
def test_run_id_that_is_no_execution_name_is_refused(tmp_path, run_id, says):
    runs = tmp_path / "runs"

    outcome = fanout(tmp_path, *SPEC_ARGS, "--config", E2E_CONFIG, "--records-dir", runs,
                     "--run-id", run_id)

    assert outcome.code == 2, outcome.stderr[-2000:]
    assert outcome.stderr.startswith("fanout: invalid input for fanout local: --run-id")
    assert says in outcome.stderr
    assert not runs.exists() and not (tmp_path.parent / "x").exists()


def test_existing_local_run_id_is_refused(tmp_path):
    # Given a run id already used in the records folder
    runs = tmp_path / "runs"
    (runs / "taken").mkdir(parents=True)

    outcome = fanout(tmp_path, *SPEC_ARGS, "--config", E2E_CONFIG, "--records-dir", runs,
                     "--run-id", "taken")

    assert outcome.code == 2
    assert "--run-id: a local run 'taken' already exists" in outcome.stderr
    assert list((runs / "taken").iterdir()) == []


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_records_dir_that_is_a_file_is_refused_before_the_run(tmp_path, where):
    # Given --records-dir naming a file (or a folder under a file)
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    target = afile if where == "file" else afile / "runs"

    outcome = fanout(tmp_path, *SPEC_ARGS, "--config", E2E_CONFIG, "--records-dir", target)

    # Then it is refused at once, and the file is untouched
    assert outcome.code == 2
    assert "--records-dir" in outcome.stderr and "is a file" in outcome.stderr
    assert afile.read_text() == "mine\n"


# --- signals -----------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_synthesis_ends_with_nothing_launched(tmp_path):
    # Given a config never synthesized before (its own stack name), so synthesis takes a while
    document = json.loads(config_with(tmp_path).read_text())
    document["context"]["fanout"]["stack_name"] = f"FanoutSig{os.getpid()}x{id(tmp_path)}"
    config = tmp_path / "cdk.json"
    config.write_text(json.dumps(document))
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        fanout_command(*SPEC_ARGS, "--config", config, "--records-dir", runs),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # When it is terminated while the app synthesizes (its child is running)
        wait_for(lambda: _children(process.pid) != [], 30, "the synthesis to start")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    # Then it says nothing was launched, with no traceback, and wrote nothing
    assert process.returncode == 1, stderr
    assert stderr.strip().splitlines() == [
        "fanout local: interrupted before the run started; nothing launched"]
    assert stdout == ""
    assert not runs.exists()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_sighup_during_the_run_aborts_it_and_leaves_no_process(e2e_stack, pid_dir, tmp_path):
    # Given a run of three long items, all running
    env = {**os.environ, "PROG_PID_DIR": str(pid_dir)}
    # When its terminal goes away (SIGHUP)
    code, stdout, stderr = signalled_run(
        [SPECS / "abort.json", "--config", e2e_stack, "--json", "--records-dir",
         records_dir(tmp_path)],
        signal.SIGHUP, lambda: len(pids(pid_dir)) == 3, "three running items", env=env,
    )
    outcome = parse(code, stdout, stderr)

    # Then it ends as Ctrl-C does: items ABORTED, summary and records written, no process
    assert outcome.code == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    assert [i["status"] for i in outcome.items()] == ["ABORTED"] * 3
    assert (records_dir(tmp_path) / outcome.summary["run_id"] / "summary.json").is_file()
    assert [p for p in pids(pid_dir) if alive(p)] == []


@pytest.mark.slow
def test_task_environment_end_to_end_is_the_users_not_fanouts(e2e_stack, tmp_path):
    # Given a user with a profile and a region, and fanout's own variables in the shell
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    env = {**os.environ, "PROG_ENV_DIR": str(env_dir), "AWS_PROFILE": "user-profile",
           "AWS_REGION": "eu-west-1", "FANOUT_CONFIG": str(e2e_stack)}
    env.pop("AWS_ACCESS_KEY_ID", None)
    result = subprocess.run(
        fanout_command(*SPEC_ARGS, "--json", "--records-dir", records_dir(tmp_path)),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    # Then the program saw the user's profile and region, its item's variables, and none of
    # the control plane's variables or moto's credentials
    (dump,) = env_dir.glob("*.json")
    seen = json.loads(dump.read_text())
    assert (seen["AWS_PROFILE"], seen["AWS_REGION"]) == ("user-profile", "eu-west-1")
    assert seen["FANOUT_ITEM_INDEX"] == "0" and seen["FANOUT_ATTEMPT"] == "1"
    assert "AWS_ACCESS_KEY_ID" not in seen
    leaked = [k for k in seen if k.startswith(("POWERTOOLS_", "MOTO_"))
              or k in ("FANOUT_TABLE", "FANOUT_CONFIG", "FANOUT_JOBS")]
    assert leaked == []


# --- in process: an interrupt at each moment -------------------------------------------------


@pytest.mark.slow
def test_interrupt_during_stand_up_launches_nothing(e2e_stack, monkeypatch, tmp_path):
    from fanout.local import stack as stack_module
    from fanout.local.runner import Interrupted, LocalOptions, LocalRun

    # Given a local run that is interrupted while the stack is being stood up
    runs = tmp_path / "runs"
    local = LocalRun(LocalOptions(config_path=e2e_stack, records_dir=runs))
    real = stack_module.stand_up

    def interrupted_stand_up(*args: Any, **kwargs: Any) -> Any:
        local.interrupt()
        return real(*args, **kwargs)

    monkeypatch.setattr(stack_module, "stand_up", interrupted_stand_up)

    # When it runs, Then it ends as "nothing launched": no task, nothing written
    with pytest.raises(Interrupted):
        local.run({"job": "prog", "items": [{"code": 0, "sleep": 0, "fail": 0}]})
    assert local.fargate is not None and local.fargate.launches == 0
    assert not runs.exists()


@pytest.mark.slow
def test_interrupt_just_after_the_execution_started_aborts_cleanly(e2e_stack, tmp_path):
    from fanout.local.runner import LocalOptions, LocalRun

    # Given a run interrupted the instant StartExecution returned (moto's execution has no
    # interpreter yet: a stop then used to fail inside moto)
    runs = tmp_path / "runs"
    local = LocalRun(LocalOptions(config_path=e2e_stack, records_dir=runs,
                                  stop_grace_seconds=0.5))
    original = LocalRun._execute

    def execute(self: LocalRun, *args: Any) -> Any:
        sfn = self._sfn
        start_execution = sfn.start_execution

        def start_then_interrupt(**kwargs: Any) -> Any:
            answer = start_execution(**kwargs)
            self.interrupt()
            return answer

        sfn.start_execution = start_then_interrupt
        return original(self, *args)

    LocalRun._execute = execute  # type: ignore[method-assign]
    try:
        summary = local.run({"job": "prog", "items": [{"code": 0, "sleep": 30, "fail": 0}]})
    finally:
        LocalRun._execute = original  # type: ignore[method-assign]

    # Then the run ends ABORTED with its summary and records, and no task is left running
    assert summary.status == "ABORTED", summary.problems
    assert (runs / summary.run_id / "summary.json").is_file()
    assert local.fargate is not None and local.fargate.live_processes() == []


# --- what a user reads afterwards -----------------------------------------------------------


def write_run(records: Path, run_id: str, items: list[dict[str, Any]]) -> None:
    (records / run_id / "logs").mkdir(parents=True)
    (records / run_id / "summary.json").write_text(json.dumps({"run_id": run_id,
                                                                "items": items}))


@pytest.mark.parametrize(("index", "attempt", "says"), [
    (5, None, "INDEX: run r1 has no item 5 (its items are 0 to 1)"),
    (0, 3, "--attempt: item 0 of run r1 made 1 attempt(s); there is no attempt 3"),
    (1, None, "INDEX: item 1 of run r1 has no logs (it was never launched)"),
])
def test_logs_of_a_local_run_refuse_a_missing_item_or_attempt(tmp_path, index, attempt, says):
    from fanout.errors import UsageError
    from fanout.local.logs import local_log_lines

    # Given a local run with item 0 (one attempt) and item 1 (never launched)
    write_run(tmp_path, "r1", [{"index": 0, "attempts": 1}, {"index": 1, "attempts": 0}])
    (tmp_path / "r1" / "logs" / "item-0-attempt-1-abc.log").write_text("hello\n")
    assert local_log_lines("r1", 0, records_dir=tmp_path) == [
        {"attempt": 1, "timestamp": None, "message": "hello"}]

    # When a missing item or attempt is asked for, Then it is a usage error saying so
    with pytest.raises(UsageError) as raised:
        local_log_lines("r1", index, attempt, records_dir=tmp_path)
    assert str(raised.value.problems[0]) == says


def test_metrics_of_a_long_local_run_never_print_over_the_progress_bar(capsys, monkeypatch):
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from fanout.local.faults import Dice, Faults
    from fanout.local.functions import Function, Functions

    # Given a handler that adds a metric, with metrics disabled as the local mode runs them
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = Metrics(namespace="test", service="test")

    @metrics.log_metrics
    def handler(event: Any, context: Any) -> dict[str, Any]:
        metrics.add_metric(name="ItemsLaunched", unit=MetricUnit.Count, value=1)
        return {}

    fn = Function("Launch", "launch", "arn:aws:lambda:us-east-1:1:function:launch",
                  "lambdas.launch.handler")
    functions = Functions([fn], Dice(Faults()))
    functions._handlers[fn.handler] = handler

    # When it runs 150 times (Powertools prints what it kept once 100 values pile up)
    for _ in range(150):
        functions.invoke("launch", {})

    # Then nothing was printed
    assert capsys.readouterr().out == ""


def test_summary_table_shows_short_durations_and_why_a_task_failed():
    from rich.console import Console

    from fanout.cli.render_local import summary_table
    from fanout.local.summary import ItemSummary, RunSummary

    items = [ItemSummary(0, {"y": 1}, "SUCCEEDED", 1, 0, duration_seconds=0.2),
             ItemSummary(1, {"y": 2}, "FAILED", 3, None, duration_seconds=0.004,
                         reason="CannotStartContainerError: the program 'x' was not found")]
    summary = RunSummary("r", "prog", "FAILED", 2, 1, 1, 0, 0, items)
    console = Console(width=200, record=True)

    console.print(summary_table(summary))

    text = console.export_text()
    assert "0.20s" in text and "<0.01s" in text
    assert "CannotStartContainerError: the program 'x' was not found" in text
    assert summary.to_json()["items"][0]["duration_seconds"] == 0.2


@pytest.mark.slow
def test_local_honours_logical_time_and_warns_of_an_unused_axis(e2e_stack, tmp_path):
    # Given relative dates on an axis the prog job's templates do not use
    result = subprocess.run(
        fanout_command("--job", "prog", "--param", "code=0", "--param", "sleep=0",
                       "--param", "fail=0", "--param", "day=today-2d:today",
                       "--logical-time", "2024-03-10T12:00:00Z", "--config", e2e_stack,
                       "--json", "--records-dir", records_dir(tmp_path)),
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )

    # When it runs locally, Then the dates are those of the logical time, not of today
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert [i["params"]["day"] for i in sorted(summary["items"], key=lambda i: i["index"])] \
        == ["2024-03-08", "2024-03-09"]
    # And the summary warns that no template uses the day axis
    assert summary["warnings"] == [
        "params.day: no template uses this axis, so its items differ in nothing the task "
        "sees; put {day} in the command or the environment, or drop it"]
    assert all(i["duration_seconds"] is not None for i in summary["items"])
