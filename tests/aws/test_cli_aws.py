"""``fanout`` against a deployed stack (moto's HTTP server), run as a subprocess.

How a run gets its records here: moto cannot run the Lambda handlers of the state machine
across processes, so each finished run is *seeded* through the real records store
(:class:`fanout.records.dynamo.DynamoRecords`) with the calls the handlers make (create_run,
begin_attempt, attach_task, settle_attempt, finish_run); the tests check that the CLI
reads them as a user expects. ``start`` and ``rerun`` really start executions of the
stack's state machine; the rerun's execution input is then expanded by the real Expand
logic (:func:`fanout.runtime.expand.expand`) against the same table and bucket.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any

from fanout.config import load_config_file
from fanout.records.dynamo import DynamoRecords
from fanout.records.model import AttemptRecord, ItemRecord, RunRecord, Settlement
from fanout.schema import log_stream_name
from fanout.spec.model import resolve
from fanout.spec.validate import parse_spec
from tests.aws.conftest import BUCKET, LOG_GROUP, REPO, STACK, TABLE, Stack

CONFIG = load_config_file(REPO / "cdk.json")
SPEC = {"job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 2004}}}}
STARTED = "2026-01-02T03:00:00Z"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:fanout-test-runs:{run}"


def records(stack: Stack) -> DynamoRecords:
    return DynamoRecords(TABLE, stack.client("dynamodb"))


def seed_run(stack: Stack, run_id: str, outcomes: dict[int, str],
             started_at: str = STARTED) -> None:
    """A finished run of SPEC: item i ends with ``outcomes[i]`` (exit 0 or 1), as Record writes."""
    begin_run(stack, run_id, len(outcomes), started_at)
    settle_run(stack, run_id, outcomes, started_at)


def begin_run(stack: Stack, run_id: str, total: int, started_at: str = STARTED) -> None:
    """The run record as Expand writes it: RUNNING, every item pending."""
    settings = resolve(parse_spec(SPEC, CONFIG), CONFIG.jobs["analyzer"])
    assert records(stack).create_run(RunRecord(
        run_id=run_id, job="analyzer", status="RUNNING", started_at=started_at,
        total=total, settings=json.loads(settings.model_dump_json()),
        trigger="cli", logical_time=started_at, execution_arn=EXECUTION.format(run=run_id),
    ), spec=SPEC)


def settle_run(stack: Stack, run_id: str, outcomes: dict[int, str],
               started_at: str = STARTED, first_year: int = 2000,
               packed_task: str | None = None) -> None:
    """Each item's one attempt, its logs and the run's end, as Launch, Record and Finalize do
    (item i is the year ``first_year + i``); with ``packed_task``, every item ran in that one
    task, its lines prefixed on the task's one stream as the packed runner writes them."""
    store = records(stack)
    logs = stack.client("logs")
    for index, status in outcomes.items():
        year = first_year + index
        item = ItemRecord(run_id, index, "PENDING", params={"year": year},
                          command=["-y", str(year)])
        attempt = AttemptRecord(run_id, index, 1, client_token=f"ct-{run_id}-{index}",
                                task_token=f"tt-{index}", created_at=started_at)
        assert store.begin_attempt(item, attempt)
        task_id = packed_task or f"{run_id}-{index}"
        stream = log_stream_name("analyzer", task_id)  # where the stack's awslogs writes
        arn = f"arn:aws:ecs:us-east-1:123456789012:task/fanout-test/{task_id}"
        assert store.attach_task(run_id, index, 1, arn, started_at)
        code = 0 if status == "SUCCEEDED" else 1
        assert store.settle_attempt(attempt, Settlement(
            status=status, item_status=status,  # type: ignore[arg-type]
            stop_class="exit", stopped_at=started_at, answer={}, exit_code=code,
            reason=f"exit code {code}", duration_seconds=90.5, log_stream=stream,
            log_tail=None if code == 0 else [f"analyzing {year}", "FATAL: giving up"],
        ))
        if not packed_task or index == min(outcomes):
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        prefix = f"[fanout item={index} attempt=1] " if packed_task else ""
        now = int(time.time() * 1000)  # CloudWatch drops events older than 14 days
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=[
            {"timestamp": now, "message": f"{prefix}analyzing {year}"},
            {"timestamp": now + 1, "message": f"{prefix}exit {code}"},
        ])
    final = "SUCCEEDED" if all(s == "SUCCEEDED" for s in outcomes.values()) else "FAILED"
    assert store.finish_run(run_id, final, started_at, f"run {run_id} {final}")


def as_json(done: Any) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_and_items_read_a_run_as_recorded(stack: Stack) -> None:
    # Given a run whose items 1 and 3 failed
    seed_run(stack, "status-run", {0: "SUCCEEDED", 1: "FAILED", 2: "SUCCEEDED", 3: "FAILED"})

    # When its status and its failed items are read
    status = as_json(stack.fanout("status", "status-run", "--stack", STACK, "--json"))
    failed = as_json(stack.fanout("items", "status-run", "--stack", STACK,
                                  "--status", "FAILED", "--json"))
    text = stack.fanout("status", "status-run", "--stack", STACK)

    # Then the totals, the failed items and the console link are the recorded ones
    assert status["status"] == "FAILED"
    assert (status["total"], status["succeeded"], status["failed"]) == (4, 2, 2)
    assert status["console_url"].endswith(EXECUTION.format(run="status-run"))
    assert [(i["index"], i["params"], i["exit_code"]) for i in failed] == [
        (1, {"year": 2001}, 1), (3, {"year": 2003}, 1)]
    assert text.returncode == 0
    assert "FAILED" in text.stdout and "console: https://" in text.stdout


def test_logs_prints_the_items_container_lines(stack: Stack) -> None:
    # Given a finished run
    seed_run(stack, "logs-run", {0: "SUCCEEDED", 1: "FAILED"})

    # When item 1's logs are read
    done = stack.fanout("logs", "logs-run", "1", "--stack", STACK)

    # Then they are that item's lines, in order, under a header naming the attempt
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.startswith("== attempt 1: exit code 1, FARGATE")
    assert lines == ["[attempt 1] analyzing 2001", "[attempt 1] exit 1"]


def test_logs_of_an_item_of_a_packed_task_are_its_own_lines(stack: Stack) -> None:
    # Given a finished run whose two items ran in one packed task: one log stream, each line
    # prefixed by the runner with its item and attempt
    begin_run(stack, "packed-run", 2)
    settle_run(stack, "packed-run", {0: "SUCCEEDED", 1: "FAILED"}, packed_task="packed-1")

    # When item 1's logs are read
    done = stack.fanout("logs", "packed-run", "1", "--stack", STACK)

    # Then they are item 1's lines only, without the runner's prefix
    assert done.returncode == 0, done.stderr
    _, *lines = done.stdout.splitlines()
    assert lines == ["[attempt 1] analyzing 2001", "[attempt 1] exit 1"]


def test_runs_lists_a_jobs_runs_newest_first(stack: Stack) -> None:
    # Given two runs of the job, a day apart
    seed_run(stack, "older-run", {0: "SUCCEEDED"}, started_at="2026-02-01T00:00:00Z")
    seed_run(stack, "newer-run", {0: "SUCCEEDED"}, started_at="2026-02-02T00:00:00Z")

    # When the job's runs are listed
    runs = as_json(stack.fanout("runs", "--job", "analyzer", "--stack", STACK, "--json"))
    other = as_json(stack.fanout("runs", "--job", "other", "--stack", STACK, "--json"))

    # Then the newer comes first, and another job has none
    ids = [r["run_id"] for r in runs]
    assert ids.index("newer-run") < ids.index("older-run")
    assert other == []


def test_start_starts_an_execution_named_by_the_run_with_the_spec(stack: Stack) -> None:
    # Given a spec given as --job/--param
    # When it is started
    done = as_json(stack.fanout("start", "--job", "analyzer", "--param", "year=2000:2003",
                                "--run-id", "started-run", "--stack", STACK, "--json"))

    # Then an execution of the stack's machine runs with that name and the spec as input
    sfn = stack.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=done["execution_arn"])
    assert execution["name"] == "started-run"
    assert json.loads(execution["input"]) == {
        "job": "analyzer", "params": {"year": {"range": {"start": 2000, "stop": 2003}}},
        "trigger": "cli"}
    assert done["console_url"].endswith(done["execution_arn"])


def test_start_wait_follows_the_run_to_its_end_with_progress_then_the_summary(
        stack: Stack) -> None:
    # Given a run whose record is there, every item pending (as Expand leaves it)
    run_id = "followed-run"
    begin_run(stack, run_id, total=2)
    # When it is started with --wait (a user following it from a terminal)
    follower = subprocess.Popen(
        [sys.executable, "-m", "fanout.cli", "start", "--job", "analyzer", "--param",
         "year=2000:2002", "--run-id", run_id, "--stack", STACK, "--wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=stack.env, cwd=REPO)
    try:
        assert follower.stderr is not None
        # Then it shows progress while the items are pending
        first = follower.stderr.readline()
        assert "0/2" in first and "pending=2" in first, first
        # And when the items end (one fails) and the run is finished, it stops following
        settle_run(stack, run_id, {0: "SUCCEEDED", 1: "FAILED"})
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    # And prints the summary with the console link, exiting 1 for a failed run
    assert follower.returncode == 1, err
    assert f"run {run_id}  job analyzer  FAILED" in out
    counts = dict(re.findall(r"^(succeeded|failed|pending)\s+(\d+)$", out, re.MULTILINE))
    assert counts == {"succeeded": "1", "failed": "1", "pending": "0"}
    assert f"execution:fanout-test-runs:{run_id}" in out


def test_rerun_failed_runs_only_the_failed_items_linked_to_the_parent(stack: Stack) -> None:
    from fanout.runtime.expand import ExpandInput, expand
    from fanout.settings import ExpandEnv

    # Given a run whose items 1 and 2 failed
    seed_run(stack, "parent-run", {0: "SUCCEEDED", 1: "FAILED", 2: "FAILED", 3: "SUCCEEDED"})

    # When its failed items are rerun, and the execution's input is expanded as Expand does
    done = as_json(stack.fanout("rerun", "parent-run", "--failed", "--run-id", "child-run",
                                "--stack", STACK, "--json"))
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=done["execution_arn"])
    env = ExpandEnv(fanout_table=TABLE, fanout_bucket=BUCKET,
                    fanout_jobs=CONFIG.jobs, fanout_limits=CONFIG.limits)
    out = expand(ExpandInput(spec=json.loads(execution["input"]), run_id="child-run",
                             execution_arn=done["execution_arn"]),
                 env=env, store=records(stack), s3=stack.client("s3"))

    # Then the new run holds only those items, and names its parent
    manifest = json.loads(stack.client("s3").get_object(
        Bucket=BUCKET, Key=out.manifest_key)["Body"].read())
    assert [m["params"] for m in manifest] == [{"year": 2001}, {"year": 2002}]
    assert [m["command"] for m in manifest] == [["-y", "2001"], ["-y", "2002"]]
    status = as_json(stack.fanout("status", "child-run", "--stack", STACK, "--json"))
    assert (status["parent_run"], status["total"], status["trigger"]) == ("parent-run", 2, "cli")


def test_status_answers_across_reruns_and_items_keep_their_identity(stack: Stack) -> None:
    from fanout.runtime.expand import ExpandInput, expand
    from fanout.settings import ExpandEnv

    # Given a run whose items 1 and 2 (2001, 2002) failed, and a rerun of them in which
    # 2001 succeeded and 2002 failed again
    seed_run(stack, "chain-parent", {0: "SUCCEEDED", 1: "FAILED", 2: "FAILED", 3: "SUCCEEDED"})
    done = as_json(stack.fanout("rerun", "chain-parent", "--failed", "--run-id", "chain-child",
                                "--stack", STACK, "--json"))
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=done["execution_arn"])
    env = ExpandEnv(fanout_table=TABLE, fanout_bucket=BUCKET,
                    fanout_jobs=CONFIG.jobs, fanout_limits=CONFIG.limits)
    expand(ExpandInput(spec=json.loads(execution["input"]), run_id="chain-child",
                       execution_arn=done["execution_arn"]),
           env=env, store=records(stack), s3=stack.client("s3"))
    settle_run(stack, "chain-child", {0: "SUCCEEDED", 1: "FAILED"}, first_year=2001)

    # When the first run's status is read
    status = as_json(stack.fanout("status", "chain-parent", "--stack", STACK, "--json"))

    # Then it answers for the run and its rerun: 3 of 4 succeeded, one on rerun, and 2002
    # (item 2) last failed in the rerun
    chain = status["across_reruns"]
    assert chain["runs"] == ["chain-parent", "chain-child"]
    assert (chain["total"], chain["succeeded"], chain["succeeded_on_rerun"]) == (4, 3, 1)
    assert [(m["index"], m["params"], m["status"], m["run_id"])
            for m in chain["not_succeeded"]] == [(2, {"year": 2002}, "FAILED", "chain-child")]
    text = stack.fanout("status", "chain-parent", "--stack", STACK)
    assert "across run chain-parent and its 1 rerun: 3 of 4 items succeeded, 1 on rerun" \
        in text.stdout

    # And the rerun's items carry their index in the first run and the same keys
    parent = {i["index"]: i["key"] for i in as_json(
        stack.fanout("items", "chain-parent", "--stack", STACK, "--json"))}
    child = as_json(stack.fanout("items", "chain-child", "--stack", STACK, "--json"))
    assert [(i["index"], i["original_index"], i["key"]) for i in child] == [
        (0, 1, parent[1]), (1, 2, parent[2])]


def test_a_rerun_of_a_job_changed_since_needs_the_current_config(stack: Stack,
                                                                 tmp_path) -> None:
    # Given a run of the analyzer with image "latest", and a config where it is now "v2"
    seed_run(stack, "changed-parent", {0: "SUCCEEDED", 1: "FAILED"})
    document = json.loads((REPO / "cdk.json").read_text())
    document["context"]["fanout"]["jobs"]["analyzer"]["image_tag"] = "v2"
    config = tmp_path / "cdk.json"
    config.write_text(json.dumps(document))

    # When its failed item is rerun
    refused = stack.fanout("rerun", "changed-parent", "--failed", "--stack", STACK,
                           "--config", str(config))

    # Then nothing starts: one line names the change and the flag
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert 'image_tag: "latest" -> "v2"' in line and "--current-config" in line
    # And with --current-config the rerun starts, its execution input asking for it
    done = stack.fanout("rerun", "changed-parent", "--failed", "--current-config",
                        "--stack", STACK, "--config", str(config), "--json")
    started = as_json(done)
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=started["execution_arn"])
    assert json.loads(execution["input"])["current_config"] is True
    assert 'as deployed now, not as the run recorded it: image_tag: "latest" -> "v2"' in \
        done.stderr


def test_bad_input_exits_2_with_one_line(stack: Stack) -> None:
    # Given a stack with one finished, fully successful run
    seed_run(stack, "clean-run", {0: "SUCCEEDED"})
    cases = {
        ("status", "no-such-run", "--stack", STACK): "no run 'no-such-run'",
        ("items", "no-such-run", "--stack", STACK): "no run 'no-such-run'",
        ("logs", "no-such-run", "0", "--stack", STACK): "no run 'no-such-run'",
        ("logs", "clean-run", "7", "--stack", STACK): "no such item",
        ("rerun", "no-such-run", "--stack", STACK): "no run 'no-such-run'",
        ("rerun", "clean-run", "--failed", "--stack", STACK): "has no failed items",
        ("status", "clean-run", "--stack", "NoSuchStack"): "no stack 'NoSuchStack'",
        ("runs", "--stack", "NoSuchStack"): "no stack 'NoSuchStack'",
        ("start", "--job", "analyzer", "--param", "year=2005:2001", "--stack", STACK):
            "params.year",
        ("start", "--job", "nope", "--param", "x=1", "--stack", STACK): "unknown job 'nope'",
    }
    for args, expected in cases.items():
        # When the command is run
        done = stack.fanout(*args)

        # Then it exits 2 with one line that names the problem
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert expected in done.stderr, (args, done.stderr)


def test_a_run_not_in_the_stack_but_local_says_add_local(stack: Stack, tmp_path) -> None:
    from fanout.local.records import write_records
    from fanout.records.views import ITEM_STATES

    # Given a local run by an id the stack does not have
    local = {"run_id": "local-only-run", "job": "analyzer", "status": "SUCCEEDED",
             "trigger": "local", "started_at": STARTED, "finished_at": STARTED,
             "duration_seconds": 1.0, "total": 0, "counts": dict.fromkeys(ITEM_STATES, 0),
             "parent_run_id": None, "reason": None, "cost": None, "console_url": None,
             "spec": SPEC}
    write_records(tmp_path / "local-only-run", local, [], settings=None)

    # When its status is asked of the stack
    done = stack.fanout("status", "local-only-run", "--stack", STACK,
                        "--records-dir", str(tmp_path))

    # Then one line names the stack and its table, and says --local finds it
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"no run 'local-only-run' in stack {STACK} (us-east-1, table {TABLE})" in line
    assert f"a local run local-only-run is in {tmp_path}: add --local" in line
    # And with --local it answers
    assert stack.fanout("status", "local-only-run", "--local",
                        "--records-dir", str(tmp_path)).returncode == 0


def test_items_and_status_say_why_an_item_failed_and_what_the_run_cost(stack: Stack) -> None:
    # Given a run whose item 1 failed with exit code 1 after printing its last words
    seed_run(stack, "why-run", {0: "SUCCEEDED", 1: "FAILED", 2: "SUCCEEDED"})

    # When its items, its failed item and its status are read
    items = as_json(stack.fanout("items", "why-run", "--stack", STACK, "--json"))
    item = as_json(stack.fanout("items", "why-run", "1", "--stack", STACK, "--json"))
    status = as_json(stack.fanout("status", "why-run", "--stack", STACK, "--json"))
    text = stack.fanout("items", "why-run", "1", "--stack", STACK)

    # Then the failed item carries its reason and its log's last lines, the others none
    assert [(i["index"], i["status"], i["reason"], i["log_tail"]) for i in items] == [
        (0, "SUCCEEDED", None, []), (1, "FAILED", "exit code 1",
                                     ["analyzing 2001", "FATAL: giving up"]),
        (2, "SUCCEEDED", None, [])]
    # And the item's detail lists its attempts with every field of the contract
    [attempt] = item["attempts"]
    assert item["attempt_count"] == 1 and "attempts" not in items[1]
    assert set(attempt) >= {"attempt", "task_arn", "capacity", "exit_code", "stop_code",
                            "reason", "started_at", "stopped_at", "duration_seconds",
                            "log_stream", "cost_usd"}
    assert (attempt["attempt"], attempt["exit_code"], attempt["reason"],
            attempt["capacity"], attempt["duration_seconds"]) == (1, 1, "exit code 1",
                                                                  "FARGATE", 90.5)
    assert attempt["log_stream"] == "fanout/analyzer/why-run-1"
    assert text.returncode == 0 and "exit code 1" in text.stdout and "FATAL" in text.stdout
    # And the run's cost is its 3 attempts of 91 billed seconds of the job's task size
    job = CONFIG.jobs["analyzer"]
    per_hour = job.cpu / 1024 * 0.03238 + job.memory / 1024 * 0.00356  # ARM64, us-east-1
    assert job.architecture == "ARM64"
    assert status["cost"]["compute_usd"] == round(3 * 91 * per_hour / 3600, 6)
    assert status["cost"]["total_usd"] > status["cost"]["compute_usd"]
    assert status["cost"]["prices_as_of"]
    assert (status["counts"]["FAILED"], status["failed"], status["total"]) == (1, 1, 3)


def test_stop_stops_a_runs_execution_and_waits_for_its_items(stack: Stack) -> None:
    # Given a running run (its record RUNNING, its execution started)
    run_id = "stop-run"
    stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.outputs["StateMachineArn"], name=run_id, input="{}")
    begin_run(stack, run_id, total=2)

    # When it is stopped, waiting until its items settle (as Abort settles them)
    stopper = subprocess.Popen(
        [sys.executable, "-m", "fanout.cli", "stop", run_id, "--stack", STACK, "--wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=stack.env, cwd=REPO)
    try:
        assert stopper.stdout is not None
        first = stopper.stdout.readline()
        assert first.startswith(f"stopping run {run_id}"), first
        settle_run(stack, run_id, {0: "ABORTED", 1: "ABORTED"})
        out, err = stopper.communicate(timeout=60)
    finally:
        stopper.kill()

    # Then it returns once the run has settled, exit 0
    assert stopper.returncode == 0, err
    assert f"run {run_id} stopped: FAILED" in out
    # And a run that has ended, or is unknown, is exit 0, or 2 with one line
    again = stack.fanout("stop", run_id, "--stack", STACK)
    assert again.returncode == 0 and "already ended" in again.stdout
    unknown = stack.fanout("stop", "no-such-run", "--stack", STACK)
    assert unknown.returncode == 2 and "no run 'no-such-run'" in unknown.stderr


def test_rerun_chosen_items_runs_exactly_those(stack: Stack) -> None:
    # Given a finished run of 4 items
    seed_run(stack, "pick-run", {0: "SUCCEEDED", 1: "FAILED", 2: "SUCCEEDED", 3: "FAILED"})

    # When items 2 and 0 are rerun
    done = as_json(stack.fanout("rerun", "pick-run", "--item", "2", "--item", "0",
                                "--run-id", "picked-run", "--stack", STACK, "--json"))

    # Then the execution's input selects exactly those, linked to the parent
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=done["execution_arn"])
    assert json.loads(execution["input"]) == {"rerun_of": "pick-run", "select": [0, 2],
                                              "trigger": "cli"}
    # And an index the run does not have is exit 2
    bad = stack.fanout("rerun", "pick-run", "--item", "9", "--stack", STACK)
    assert bad.returncode == 2 and "has no item 9" in bad.stderr


def test_status_and_items_during_a_run_show_each_item_as_it_is(stack: Stack) -> None:
    # Given a run of five items in flight: one done, one running, one waiting for its
    # launch turn, two never launched (so not in the table)
    begin_run(stack, "live-run", 5)
    store = records(stack)
    done = AttemptRecord("live-run", 0, 1, "ct-live-0", "tt-0", created_at=STARTED)
    assert store.begin_attempt(ItemRecord("live-run", 0, "PENDING", params={"year": 2000}),
                               done)
    assert store.attach_task("live-run", 0, 1, "arn:task/live-0", STARTED)
    assert store.settle_attempt(done, Settlement(
        status="SUCCEEDED", item_status="SUCCEEDED", stop_class="exit", stopped_at=STARTED,
        answer={}, exit_code=0, duration_seconds=1.0))
    assert store.begin_attempt(ItemRecord("live-run", 1, "PENDING", params={"year": 2001}),
                               AttemptRecord("live-run", 1, 1, "ct-live-1", "tt-1",
                                             created_at=STARTED))
    assert store.attach_task("live-run", 1, 1, "arn:task/live-1", STARTED)
    assert store.begin_attempt(ItemRecord("live-run", 2, "PENDING", params={"year": 2002}),
                               AttemptRecord("live-run", 2, 1, "ct-live-2", "tt-2",
                                             created_at=STARTED, queued=True))

    # When its status and items are read while it runs
    status = as_json(stack.fanout("status", "live-run", "--stack", STACK, "--json"))
    items = as_json(stack.fanout("items", "live-run", "--stack", STACK, "--json"))
    pending = as_json(stack.fanout("items", "live-run", "--stack", STACK, "--status",
                                   "PENDING", "--json"))
    text = stack.fanout("items", "live-run", "--stack", STACK)

    # Then the run's total is there, the items never launched counted PENDING
    assert status["status"] == "RUNNING" and status["total"] == 5
    assert status["counts"] == {"PENDING": 2, "WAITING": 1, "RUNNING": 1, "SUCCEEDED": 1,
                                "FAILED": 0, "TIMED_OUT": 0, "ABORTED": 0}
    assert [(i["index"], i["status"]) for i in items] == [
        (0, "SUCCEEDED"), (1, "RUNNING"), (2, "WAITING"), (3, "PENDING"), (4, "PENDING")]
    assert [i["index"] for i in pending] == [3, 4]
    # And the waiting item says why, in the table too
    assert items[2]["waiting"]["why"] == "waiting for a launch turn"
    assert "waiting for a launch turn" in text.stdout
