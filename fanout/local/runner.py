"""``fanout local``: one run of the synthesized control plane on emulated AWS.

The spec is checked first (a bad one launches nothing). Then the stack's resources are
made on moto, the synthesized state machine is started with the spec as its input, the
handlers run in process, each task is a local process, task state changes reach Record
through the synthesized rule, and Reconcile runs on a short period. Ctrl-C stops the
execution; Abort (through the execution-status rule) stops the tasks and marks the
items ABORTED. When everything has settled the records are read back and written out.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.local.checks import (
    LocalInputError,
    check_docker,
    check_local_command,
    check_records_dir,
    check_threads,
)
from fanout.local.faults import Dice, Faults
from fanout.local.live import LiveRecords
from fanout.local.logs import attempt_lines, task_items
from fanout.local.made_with import record_made_with
from fanout.local.records import put_items, write_started
from fanout.local.secrets import local_secrets, with_secrets
from fanout.local.summary import Progress, RunSummary, item_summaries, status_of_execution
from fanout.names import new_run_id

if TYPE_CHECKING:
    from fanout.config import FanoutConfig
    from fanout.local.events import EventBus
    from fanout.local.fargate import EmulatedFargate
    from fanout.local.functions import Functions
    from fanout.local.stack import LocalStack
    from fanout.local.tasks import LaunchRate

TERMINAL_EXECUTION = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
INTERRUPTED = {"error": "Fanout.Interrupted",
               "cause": "fanout local was interrupted (Ctrl-C, SIGTERM or SIGHUP)"}
#: What the local process sets for the handlers on top of the template's environment.
LOCAL_FUNCTION_ENV = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
                      "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_DEV": "false",
                      # the deployed stack's: a local run posts where --notify says
                      "FANOUT_WEBHOOKS": "[]"}


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP came before the execution started: nothing was launched."""


@dataclass
class LocalOptions:
    config_path: Path = Path("cdk.json")
    concurrency: int | None = None
    faults: Faults = field(default_factory=Faults)
    docker: bool = False
    run_id: str | None = None
    #: How often Reconcile runs (the deployed schedule's period, shortened).
    reconcile_seconds: float = 1.0
    launch_rate: LaunchRate | None = None
    #: Where each run's records, logs and summary are written (``<dir>/<run_id>/``).
    records_dir: Path = Path(".fanout/runs")
    #: Seconds a stopping task gets between SIGTERM and SIGKILL.
    stop_grace_seconds: float = 2.0
    #: How long to wait for tasks and events to settle after the execution ended.
    settle_seconds: float = 60.0
    #: A local copy of an ``items_from`` spec's object, put where the spec names it.
    items_file: Path | None = None
    #: The run's logical time for relative dates (``--logical-time``), ISO 8601.
    logical_time: str | None = None
    #: Where tasks run (local_command paths are from it); default: the config's folder.
    task_dir: Path | None = None


def prepare_spec(raw: Any, config: FanoutConfig, options: LocalOptions,
                 warnings: list[str] | None = None,
                 notes: list[str] | None = None) -> dict[str, Any]:
    """The execution input: the spec with the CLI's overrides, checked (raises SpecError).

    What is legal but likely not meant (an axis no template uses) goes to ``warnings``.
    """
    from fanout.local.records import check_items_file
    from fanout.spec.plan import plan_run
    from fanout.spec.validate import parse_spec

    if isinstance(raw, dict):
        raw = dict(raw)
        if options.concurrency is not None:
            raw["max_concurrency"] = options.concurrency
        if options.logical_time is not None:
            raw["logical_time"] = options.logical_time
        raw.setdefault("trigger", "cli")
    spec = parse_spec(raw, config)
    check_items_file(spec.items_from is not None, options.items_file)
    if spec.items_from is None:  # items_from is read (and checked) by Expand
        plan = plan_run(spec, config, run_id=options.run_id or "local-run")
        if warnings is not None:
            warnings.extend(plan.warnings())
        if notes is not None and (plan.packing.packed or plan.packing.chosen_by == "auto"):
            notes.append(plan.packing.summary())  # the packing chosen, and why
        if plan.packing.packed and options.docker:
            from fanout.errors import Problem

            raise LocalInputError([Problem("--docker", "packed tasks (items_per_task "
                                           f"{plan.packing.items_per_task}) run as local "
                                           "processes in this version; drop --docker or "
                                           "set items_per_task 1")])
        check_threads(min(plan.count, plan.settings.max_concurrency))
    document: dict[str, Any] = raw
    return document


class LocalRun:
    """One run of a spec on the local control plane."""

    def __init__(self, options: LocalOptions,
                 on_progress: Callable[[Progress], None] | None = None) -> None:
        self.options = options
        self.on_progress = on_progress
        self.dice = Dice(options.faults)
        self.fargate: EmulatedFargate | None = None
        self.bus: EventBus | None = None
        self.functions: Functions | None = None
        self.notes: list[str] = []
        #: What the spec says that is legal but likely not meant; in the summary.
        self.warnings: list[str] = []
        self.secrets: dict[str, str] = {}  # the job's, for its tasks only (local/secrets.py)
        self.notification: dict[str, Any] | None = None  # the run's ending (--notify)
        self._sfn: Any = None
        self._definition: tuple[str, Any] = ("", None)
        self._interrupted = threading.Event()
        #: Tasks still running when the run ended that the control plane had not stopped.
        self.orphans = 0
        #: The user's environment without fanout's internals: what every task inherits.
        #: Taken now, before the emulation puts its fake credentials in ``os.environ``.
        from fanout.local.fargate import user_environment

        self.task_environment = user_environment(os.environ)

    def interrupt(self) -> None:
        """Abort the run (what Ctrl-C, SIGTERM and SIGHUP do); safe from a signal handler."""
        self._interrupted.set()

    def _check_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise Interrupted

    def run(self, raw_spec: Any) -> RunSummary:
        """Check everything, synthesize, run; raises :class:`Interrupted` before a launch."""
        from fanout.config import load_config_file
        from fanout.local.synth import SynthInterrupted, synthesize
        from fanout.names import run_id_problem
        from fanout.pipelines.validate import check_pipelines
        from fanout.spec.validate import check_schedule_specs

        if self.options.run_id is not None:
            problem = run_id_problem(self.options.run_id)
            if problem:
                raise LocalInputError([problem])
        check_records_dir(self.options.records_dir, self.options.run_id)
        config = load_config_file(self.options.config_path)
        check_schedule_specs(config)
        check_pipelines(config)
        document = prepare_spec(raw_spec, config, self.options, self.warnings, self.notes)
        if self.options.docker:
            check_docker()
        else:
            check_local_command(str(document["job"]), config, self._task_cwd(),
                                self.task_environment)
        self.secrets = local_secrets(document["job"], config, self.task_environment,
                                     self._task_cwd())
        self._check_interrupted()
        try:
            template = synthesize(self.options.config_path, config.stack_name,
                                  interrupted=self._interrupted)
        except SynthInterrupted:
            raise Interrupted from None
        self._check_interrupted()
        job = str(document["job"])
        run_id = self.options.run_id or new_run_id(job)
        self._definition = (job, config.jobs[job])  # kept as the run starts: what a rerun runs
        return self._run(template, config, document, run_id)

    def _task_cwd(self) -> Path:
        return self.options.task_dir or self.options.config_path.resolve().parent

    def _run(self, template: Mapping[str, Any], config: FanoutConfig,
             document: dict[str, Any], run_id: str) -> RunSummary:
        from fanout.local.aws import (
            ACCOUNT,
            REGION,
            emulated_aws,
            handler_clients,
            quiet_emulation,
            take_over,
            write_logs,
        )
        from fanout.local.events import EventBus
        from fanout.local.fargate import EmulatedFargate
        from fanout.local.functions import Functions, environment, shared_environment
        from fanout.local.moto.limits import MAXIMA
        from fanout.local.reconciler import Reconciler
        from fanout.local.stack import stand_up
        from fanout.local.synth import project_root
        from fanout.local.tasks import gate_env, outputs_env

        started = time.monotonic()
        quiet_emulation()
        MAXIMA.reset()  # the largest payload and history of this run (limits.json)
        with emulated_aws():
            stack = stand_up(template, config, region=REGION, account=ACCOUNT)
            if self.options.items_file is not None:
                put_items(document, self.options.items_file, REGION)
            shared, conflicts = shared_environment(stack.functions)
            if conflicts:
                self.notes.append("variables differing between functions, left unset: "
                                  + ", ".join(sorted(conflicts)))
            functions = Functions(stack.functions, self.dice)
            bus = EventBus(stack.rules, functions.invoke, self.dice)
            fargate = EmulatedFargate(
                region=REGION, account=ACCOUNT, cluster_arn=stack.cluster_arn,
                task_definitions={td.arn: with_secrets(td, self.secrets, job == document["job"])
                                  for job, td in stack.task_definitions.items()},
                publish=bus.put, write_logs=write_logs, dice=self.dice,
                launch_rate=self.options.launch_rate,
                cwd=self._task_cwd(), stop_grace_seconds=self.options.stop_grace_seconds,
                docker=self.options.docker, base_environment=self.task_environment)
            self.functions, self.bus, self.fargate = functions, bus, fargate
            rate = gate_env(self.options.launch_rate, configured="launch_gate" in
                            config.model_fields_set) | outputs_env(self.options.records_dir)
            with environment({**shared, **LOCAL_FUNCTION_ENV, **rate}), take_over(
                fargate, functions.moto_invoke, self.dice
            ) as left_out, handler_clients(functions.moto_invoke, direct=not left_out) as made:
                self.notes += left_out
                self._sfn = made["stepfunctions"]
                functions.load(str(project_root()))
                ticker = Reconciler(functions, stack, self.options.reconcile_seconds)
                ticker.start()
                try:  # the records file follows the run as it goes (fanout.local.live)
                    with LiveRecords(self.options.records_dir / run_id, stack, run_id, config):
                        execution = self._execute(stack, document, run_id, started)
                finally:
                    ticker.stop()
                    # A failing Reconcile is the run's news, not a swallowed error.
                    self.notes += [f"Reconcile failed: {e}" for e in dict.fromkeys(ticker.errors)]
                    fargate.stop_all("fanout local is exiting")
                    fargate.wait_stopped(self.options.stop_grace_seconds + 5)
                    bus.drain(10)
                    bus.close()
                summary = self._summary(stack, run_id, document, execution, started, config)
                self._write_records(stack, run_id, summary, document, config)
        return summary

    def _execute(self, stack: LocalStack, document: dict[str, Any], run_id: str,
                 started: float) -> dict[str, Any]:
        """Start the execution, follow it to its end, let its tasks and events settle."""
        sfn = self._sfn
        self._check_interrupted()  # stood up but not started: nothing to stop, nothing launched
        write_started(self.options.records_dir, run_id, document)  # what `fanout stop` finds
        record_made_with(self.options.records_dir / run_id, self.options.config_path,
                         self._task_cwd(), *self._definition)
        arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=run_id,
                                  input=json.dumps(document))["executionArn"]
        assert self.fargate is not None and self.bus is not None
        stopped: float | None = None
        execution: dict[str, Any] = {}
        from fanout.local.aws import execution_status

        while True:
            try:  # the status looked at; the answer asked for once it counts
                if stopped is not None or execution_status(arn) in TERMINAL_EXECUTION:
                    execution = dict(sfn.describe_execution(executionArn=arn))
                if execution.get("status") in TERMINAL_EXECUTION:
                    break
                if stopped is not None and time.monotonic() - stopped > 1.0:
                    # StopExecution ends an execution at once on AWS (moto's lingers)
                    execution = {**execution, "status": "ABORTED",
                                 "stopDate": datetime.now(UTC), **INTERRUPTED}
                    break
                if self._interrupted.is_set() and stopped is None and self._stop(arn):
                    stopped = time.monotonic()
                self._report(stack, run_id, started)
                self._interrupted.wait(0.1)  # the next look at the execution
            except KeyboardInterrupt:
                self._interrupted.set()
        if stopped is not None and execution["status"] == "FAILED":
            # Stopped as it started, moto's may end FAILED; StopExecution on AWS: ABORTED.
            execution.update(status="ABORTED", **INTERRUPTED)
        from fanout.local.events import execution_status_event

        self.bus.put(execution_status_event(execution, stack))
        deadline = time.monotonic() + self.options.settle_seconds
        unstopped_since: float | None = None
        while time.monotonic() < deadline:
            try:
                self._report(stack, run_id, started)
                if not (self.bus.drain(0.1) and self._settled(stack, run_id)):
                    continue
                if not self.fargate.running():
                    break
                if not self.fargate.unstopped(run_id):
                    continue  # every task left was asked to stop: let them end
                # A task nothing stopped (launched as the run stopped): Reconcile's, or an orphan.
                unstopped_since = unstopped_since or time.monotonic()
                if time.monotonic() - unstopped_since > self._orphan_grace():
                    break
            except KeyboardInterrupt:
                break  # a second Ctrl-C: stop waiting; every task is still stopped on the way out
        # Counted before the local mode stops whatever is left on its way out.
        self.orphans = len(self.fargate.unstopped(run_id))
        return execution

    def _orphan_grace(self) -> float:
        """How long a task nothing stopped may outlive its settled run: two Reconcile
        periods and a launch answering late (the control plane promises one period)."""
        return 2 * self.options.reconcile_seconds + self.options.faults.launch_latency + 1.0

    def _stop(self, arn: str) -> bool:
        """StopExecution; False when the execution cannot take it yet (asked again later).

        moto's execution gets its interpreter on its own thread just after StartExecution:
        a stop in that instant fails inside moto, as no stop can on AWS.
        """
        try:
            self._sfn.stop_execution(executionArn=arn, error=INTERRUPTED["error"],
                                     cause=INTERRUPTED["cause"])
        except AttributeError:
            return False
        return True

    def _settled(self, stack: LocalStack, run_id: str) -> bool:
        """The run's ending is recorded and no item is still RUNNING (PENDING ones were never
        launched: nothing to wait for).

        An item's status and the run's counters change in one transaction, so the RUNNING
        counter is zero exactly when no item record is RUNNING: one read, not one per item.
        """
        from fanout.records.dynamo import DynamoRecords

        run = DynamoRecords(stack.table).get_run(run_id)
        return run is None or (run.count("RUNNING") == 0 and run.status != "RUNNING")

    def _report(self, stack: LocalStack, run_id: str, started: float) -> None:
        if self.on_progress is None:
            return
        from fanout.records.dynamo import DynamoRecords

        run = DynamoRecords(stack.table).get_run(run_id)
        running = len(self.fargate.running()) if self.fargate else 0
        if run is None:
            self.on_progress(Progress(0, 0, 0, running, time.monotonic() - started))
            return
        self.on_progress(Progress(
            total=run.total, succeeded=run.count("SUCCEEDED"),
            failed=run.count("FAILED") + run.count("TIMED_OUT") + run.count("ABORTED"),
            running=running, elapsed_seconds=time.monotonic() - started, waiting=run.waiting,
        ))

    def _summary(self, stack: LocalStack, run_id: str, document: dict[str, Any],
                 execution: Mapping[str, Any], started: float,
                 config: FanoutConfig) -> RunSummary:
        from fanout.local.records import child_executions, notification_of, prices_of, size_of
        from fanout.records.dynamo import DynamoRecords
        from fanout.records.views import run_cost

        store = DynamoRecords(stack.table)
        run = store.get_run(run_id)
        launched: dict[int, list[str]] = {}
        assert self.fargate is not None
        for task in sorted(self.fargate.tasks.values(), key=lambda t: t.created_at):
            tags = {t.get("key"): t.get("value") for t in task.tags}
            index = tags.get("fanout:item")
            if tags.get("fanout:run") == run_id and index is not None:
                launched.setdefault(int(index), []).append(task.arn)
        every = store.attempts(run_id)  # one query for the run (the cost's too), not per item
        items, waits = item_summaries(store.items(run_id), every, launched)
        status = run.status if run else status_of_execution(execution)
        if execution.get("error") == "Fanout.InvalidRunSpec":
            status = "REJECTED"
        # The run record's counters (what Finalize and a user read), not a recount.
        counts = {s: run.count(s) if run else sum(1 for i in items if i.status == s)
                  for s in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")}
        problems = list(run.problems) if run else []
        if execution["status"] != "SUCCEEDED" and not problems and execution.get("cause"):
            cause = str(execution.get("cause"))
            problems.append(cause if len(cause) <= 400 else cause[:400] + " ...")
        cost = run_cost(run, every, prices_of(stack.region, config),
                        size_of(config, run.job)) if run else None
        self.notification = notification_of(store, run, cost) if run else None
        return RunSummary(
            run_id=run_id, job=str(document.get("job")), status=status,
            total=run.total if run else len(items), succeeded=counts["SUCCEEDED"],
            failed=counts["FAILED"], timed_out=counts["TIMED_OUT"], aborted=counts["ABORTED"],
            items=items, records=str(self.options.records_dir / run_id),
            elapsed_seconds=round(time.monotonic() - started, 3), problems=problems,
            faults={k: v for k, v in self.dice.counts.items() if v},
            launch={"run_task_calls": self.fargate.run_task_calls,
                    "throttled": self.fargate.throttled,
                    "capacity_refused": self.fargate.capacity_refused,
                    "quota_refused": self.fargate.quota_refused, "waits": waits},
            waiting=run.waiting if run else 0,
            cost=cost,
            orphans=self.orphans,
            warnings=list(self.warnings), child_executions=child_executions(self._sfn, execution),
        )

    def _write_records(self, stack: LocalStack, run_id: str, summary: RunSummary,
                       document: dict[str, Any], config: FanoutConfig) -> None:
        """The run's records (docs/local-records.md), logs and summary, after the emulation."""
        import boto3

        from fanout.local.moto.limits import MAXIMA
        from fanout.local.records import copy_results, write_run_records
        from fanout.records.dynamo import DynamoRecords

        out = Path(summary.records)
        (out / "logs").mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary.to_json(), indent=2) + "\n")
        # How close the run came to Step Functions' limits (payload, history length).
        (out / "limits.json").write_text(json.dumps(MAXIMA.snapshot(), indent=2) + "\n")
        copy_results(boto3.client("s3", region_name=stack.region), stack.bucket, run_id, out)
        store = DynamoRecords(stack.table, boto3.client("dynamodb", region_name=stack.region))
        write_run_records(out, store, run_id, summary, document, config, stack.region)
        logs = boto3.client("logs", region_name=stack.region)
        assert self.fargate is not None
        for task in list(self.fargate.tasks.values()):
            tags = {t.get("key"): t.get("value") for t in task.tags}
            stream, group = task.log_stream, task.definition.log_group
            if not stream or not group or tags.get("fanout:run") != run_id:
                continue
            try:
                events = logs.get_log_events(logGroupName=group, logStreamName=stream,
                                             startFromHead=True)["events"]
            except logs.exceptions.ResourceNotFoundException:
                events = []
            messages = [e["message"] for e in events]
            for index, attempt in task_items(task, tags):
                lines = attempt_lines(messages, index, attempt, packed="fanout:batch" in tags)
                (out / "logs" / f"item-{index}-attempt-{attempt}-{task.id}.log").write_text(
                    "".join(line + "\n" for line in lines))
