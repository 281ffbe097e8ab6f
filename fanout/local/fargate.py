"""An emulated Fargate: each task a local process, its output in the emulated CloudWatch Logs.

It answers the ECS calls the control plane makes (RunTask, DescribeTasks, StopTask,
ListTasks) in ECS's own shapes, keeps ECS's promises that moto does not (``clientToken``
idempotency for 24 hours, stop codes, container exit codes) and publishes "ECS Task State
Change" events the way ECS does: one per state change, ``detail.version`` growing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fanout.local.faults import Dice, Faults
from fanout.local.moto.limits import LimitExceeded, check_overrides
from fanout.local.packed import is_packed, kill_items, runner_argv, runner_environment
from fanout.local.tasks import (
    EcsError,
    EventSink,
    LaunchRate,
    LogSink,
    Task,
    TaskDefinition,
    make_output_folder,
    task_state_change_event,
)
from fanout.runtime.clock import utcnow
from fanout.schema import TASK_ENV_OUTPUT

#: How long ECS keeps a clientToken (AWS: 24 hours).
CLIENT_TOKEN_TTL_SECONDS = 24 * 3600
CAPACITY_REASON = (
    "Capacity is unavailable at this time. Please try again later or in a different "
    "availability zone"
)
#: What RunTask answers over the account's Fargate vCPU quota (docs/operating.md).
VCPU_QUOTA_REASON = "You've reached the limit on the number of vCPUs you can run concurrently"
SPOT_REASON = "Your Spot Task was interrupted."
#: Variables of fanout's own making (the control plane's, the emulator's), never a task's
#: unless its task definition or its item sets them.
INTERNAL_PREFIXES = ("FANOUT_", "POWERTOOLS_", "MOTO_", "AWS_LAMBDA_", "_X_AMZN_", "_HANDLER")
#: What a Docker task gets of the user's environment: credentials and region, as a
#: Fargate task gets them from its role and its platform.
DOCKER_PASSED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_REGION", "AWS_DEFAULT_REGION")


def user_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What of ``environ`` a local task inherits: all of it but fanout's internals.

    Take it before the emulation starts: inside it ``os.environ`` holds moto's fake
    credentials, which must never reach a user's program.
    """
    return {k: v for k, v in environ.items() if not k.startswith(INTERNAL_PREFIXES)}


class EmulatedFargate:
    """RunTask / DescribeTasks / StopTask / ListTasks on local processes."""

    def __init__(
        self,
        *,
        region: str,
        account: str,
        cluster_arn: str,
        task_definitions: Mapping[str, TaskDefinition],
        publish: EventSink,
        write_logs: LogSink,
        faults: Faults | None = None,
        dice: Dice | None = None,
        launch_rate: LaunchRate | None = None,
        cwd: str | Path | None = None,
        stop_grace_seconds: float = 2.0,
        docker: bool = False,
        base_environment: Mapping[str, str] | None = None,
    ) -> None:
        self.region = region
        self.account = account
        self.cluster_arn = cluster_arn
        self.cluster_name = cluster_arn.rsplit("/", 1)[-1]
        self.task_definitions = dict(task_definitions)
        self.publish = publish
        self.write_logs = write_logs
        self.dice = dice or Dice(faults or Faults())
        self.launch_rate = launch_rate
        self.cwd = str(cwd) if cwd else None
        self.stop_grace_seconds = stop_grace_seconds
        self.docker = docker
        #: What every task inherits before its task definition's and its item's variables.
        self.base_environment = dict(
            user_environment(os.environ) if base_environment is None else base_environment
        )
        self.tasks: dict[str, Task] = {}
        self._tokens: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.RLock()
        self._watchers: list[threading.Thread] = []
        #: Every task ever started, for counting launches per item in the tests.
        self.launches = 0
        #: RunTask calls answered (idempotent repeats included), throttled, refused for
        #: capacity (what ``fanout local --json`` reports as ``launch``).
        self.run_task_calls = 0
        self.throttled = 0
        self.capacity_refused = 0
        #: RunTask calls refused for the ``vcpu_quota`` fault.
        self.quota_refused = 0
        #: ``capacity_outage`` is counted from here (the run's start).
        self.started = time.monotonic()

    # --- the ECS API -------------------------------------------------------------------

    def run_task(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """RunTask: ``params`` as the API takes them; returns ``{"tasks", "failures"}``."""
        token = params.get("clientToken")
        if token is not None and not 1 <= len(str(token)) <= 64:
            raise EcsError("InvalidParameterException", "clientToken must be 1 to 64 characters")
        try:
            check_overrides(params.get("overrides") or {})
        except LimitExceeded as exc:
            raise EcsError(exc.code, exc.message) from None
        with self._lock:
            self.run_task_calls += 1
            if token:
                known = self._tokens.get(str(token))
                if known and time.monotonic() - known[0] < CLIENT_TOKEN_TTL_SECONDS:
                    return {"tasks": [self.tasks[a].describe() for a in known[1]], "failures": []}
            if (self.launch_rate and not self.launch_rate.take()) or self.dice.roll("throttle"):
                self.throttled += 1
                raise EcsError("ThrottlingException", "Rate exceeded")
            definition = self._definition(str(params.get("taskDefinition", "")))
            cluster = str(params.get("cluster") or "default")
            if cluster not in (self.cluster_arn, self.cluster_name):
                raise EcsError("ClusterNotFoundException", f"Cluster not found: {cluster}")
            provider = _capacity_provider(params)
            outage = time.monotonic() - self.started < self.dice.faults.capacity_outage
            if outage or self.dice.roll("capacity"):
                self.capacity_refused += 1
                return {"tasks": [], "failures": [{"reason": CAPACITY_REASON}]}
            count = int(params.get("count") or 1)
            if self._over_quota(definition, count):
                self.quota_refused += 1
                return {"tasks": [], "failures": [{"reason": VCPU_QUOTA_REASON}]}
            arns = [self._start(definition, params, provider) for _ in range(count)]
            if token:
                self._tokens[str(token)] = (time.monotonic(), arns)
        if self.dice.faults.launch_latency > 0:
            # The answer comes late: the tasks run while the caller still waits for it.
            self._await_started(arns, timeout=10.0)
            time.sleep(self.dice.faults.launch_latency)
        with self._lock:
            return {"tasks": [self.tasks[a].describe() for a in arns], "failures": []}

    def _over_quota(self, definition: TaskDefinition, count: int) -> bool:
        """Would ``count`` more tasks run more vCPUs than the ``vcpu_quota`` fault allows?"""
        quota = self.dice.faults.vcpu_quota
        if quota <= 0:
            return False
        running = sum(int(t.definition.cpu) for t in self.tasks.values()
                      if t.last_status != "STOPPED") / 1024
        return running + count * int(definition.cpu) / 1024 > quota

    def describe_tasks(self, cluster: str, task_ids: Sequence[str]) -> dict[str, Any]:
        tasks, failures = [], []
        with self._lock:
            for ref in task_ids:
                task = self._find(ref)
                if task is None:
                    failures.append({"arn": ref, "reason": "MISSING"})
                else:
                    tasks.append(task.describe())
        return {"tasks": tasks, "failures": failures}

    def stop_task(self, cluster: str, task_ref: str, reason: str | None) -> dict[str, Any]:
        with self._lock:
            task = self._find(task_ref)
            if task is None:
                raise EcsError("InvalidParameterException", "The referenced task was not found.")
            self._end(task, "UserInitiated", reason or "Task stopped by user")
            return {"task": task.describe()}

    def list_tasks(self, params: Mapping[str, Any]) -> dict[str, Any]:
        wanted = params.get("desiredStatus", "RUNNING")
        started_by = params.get("startedBy")
        with self._lock:
            arns = [
                t.arn for t in self.tasks.values()
                if t.desired_status == wanted and (not started_by or t.started_by == started_by)
            ]
        return {"taskArns": arns}

    # --- what the local mode asks of it -------------------------------------------------

    def running(self) -> list[Task]:
        with self._lock:
            return [t for t in self.tasks.values() if t.last_status != "STOPPED"]

    def live_processes(self) -> list[int]:
        """Process ids of task processes that have not exited."""
        with self._lock:
            procs = [t.process for t in self.tasks.values() if t.process is not None]
        return [p.pid for p in procs if p.poll() is None]

    def stop_all(self, reason: str) -> None:
        """Stop every task still running (the last line of defence on the way out)."""
        for task in self.running():
            with self._lock:
                self._end(task, "UserInitiated", reason)

    def unstopped(self, run_id: str | None = None) -> list[Task]:
        """Tasks running that nobody asked to stop (of ``run_id`` only, when given)."""
        with self._lock:
            return [t for t in self.tasks.values()
                    if t.last_status != "STOPPED" and t.ending is None
                    and (run_id is None or _tag(t, "fanout:run") == run_id)]

    def wait_stopped(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running() and not self.live_processes():
                return True
            time.sleep(0.05)
        return not self.running() and not self.live_processes()

    # --- internals ----------------------------------------------------------------------

    def _await_started(self, arns: Sequence[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(self.tasks[a].last_status != "PROVISIONING" for a in arns):
                    return
            time.sleep(0.01)

    def _definition(self, ref: str) -> TaskDefinition:
        for definition in self.task_definitions.values():
            if ref in (definition.arn, definition.family) or ref.startswith(
                definition.family + ":"
            ):
                return definition
        raise EcsError("ClientException", f"Unable to describe task definition {ref!r}.")

    def _find(self, ref: str) -> Task | None:
        if ref in self.tasks:
            return self.tasks[ref]
        task_id = ref.rsplit("/", 1)[-1]
        return next((t for t in self.tasks.values() if t.id == task_id), None)

    def _start(self, definition: TaskDefinition, params: Mapping[str, Any], provider: str) -> str:
        task_id = uuid.uuid4().hex
        arn = f"arn:aws:ecs:{self.region}:{self.account}:task/{self.cluster_name}/{task_id}"
        overrides = dict(params.get("overrides") or {})
        container_override: dict[str, Any] = next(
            (c for c in overrides.get("containerOverrides", [])
             if c.get("name") == definition.container),
            {},
        )
        command = list(container_override.get("command") or [])
        environment = dict(definition.environment)
        environment.update(
            {e["name"]: e["value"] for e in container_override.get("environment", [])}
        )
        make_output_folder(environment)
        task = Task(
            arn=arn,
            id=task_id,
            definition=definition,
            cluster_arn=self.cluster_arn,
            started_by=str(params.get("startedBy") or ""),
            group=str(params.get("group") or f"family:{definition.family}"),
            capacity_provider=provider,
            overrides=overrides,
            tags=list(params.get("tags") or []),
            command=command,
            environment=environment,
            created_at=utcnow(),
        )
        self.tasks[arn] = task
        self.launches += 1
        self._publish(task)
        watcher = threading.Thread(target=self._run, args=(task,), daemon=True,
                                   name=f"task-{task_id[:8]}")
        self._watchers.append(watcher)
        watcher.start()
        return arn

    def _argv(self, task: Task) -> list[str]:
        if is_packed(task.command):
            return runner_argv(task.command, task.definition.local_command,
                               self.stop_grace_seconds)
        if not self.docker:
            return [*task.definition.local_command, *task.command]
        passed = {k: v for k, v in self.base_environment.items() if k in DOCKER_PASSED}
        env_args = [arg for k, v in {**passed, **task.environment}.items()
                    for arg in ("-e", f"{k}={v}")]
        output = task.environment.get(TASK_ENV_OUTPUT, "")
        mount = ["-v", f"{output}:{output}"] if output and not output.startswith("s3://") \
            else []
        return ["docker", "run", "--rm", "--name", f"fanout-{task.id}", *env_args, *mount,
                task.definition.image, *task.command]

    def _run(self, task: Task) -> None:
        """Start the task's process, copy its output to the log stream, settle the task."""
        env = {**self.base_environment, **task.environment}
        if is_packed(task.command):
            env = runner_environment(env)
        argv = self._argv(task)
        try:
            process = subprocess.Popen(
                argv, cwd=self.cwd, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except (OSError, ValueError, IndexError) as exc:
            reason = f"CannotStartContainerError: {cannot_start(argv, exc, self.cwd)}"
            if task.log_stream and task.definition.log_group:
                # What `fanout logs` shows of the attempt: the one line that says why.
                self.write_logs(task.definition.log_group, task.log_stream,
                                [(int(time.time() * 1000), f"fanout local: {reason}")])
            with self._lock:
                task.exit_code = None
                task.container_reason = reason
                self._settle(task, "TaskFailedToStart", reason)
            return
        with self._lock:
            task.process = process
            if task.ending is None:
                task.last_status = "RUNNING"
                task.started_at = utcnow()
                task.version += 1
                self._publish(task)
            else:  # stopped before it started
                self._signal(process, signal.SIGKILL)
        if task.capacity_provider == "FARGATE_SPOT" and self.dice.roll("spot"):
            after = self.dice.faults.spot_after or self.dice.uniform(0.0, 0.05)
            spot = threading.Timer(after, self._interrupt, args=(task,))
            spot.daemon = True
            spot.start()
        self._copy_output(task, process)
        returncode = process.wait()
        with self._lock:
            if task.ending is None:
                task.exit_code = returncode if returncode >= 0 else 128 - returncode
                self._settle(task, "EssentialContainerExited", "Essential container in task exited")
            else:
                code, reason = task.ending
                if code != "SpotInterruption":
                    task.exit_code = returncode if returncode >= 0 else 128 - returncode
                self._settle(task, code, reason)

    def _copy_output(self, task: Task, process: subprocess.Popen[bytes]) -> None:
        stream = task.log_stream
        assert process.stdout is not None
        batch: list[tuple[int, str]] = []
        for raw in process.stdout:
            batch.append((int(time.time() * 1000), raw.decode("utf-8", "replace").rstrip("\n")))
            if len(batch) >= 50 and stream and task.definition.log_group:
                self.write_logs(task.definition.log_group, stream, batch)
                batch = []
        if batch and stream and task.definition.log_group:
            self.write_logs(task.definition.log_group, stream, batch)

    def _interrupt(self, task: Task) -> None:
        with self._lock:
            self._end(task, "SpotInterruption", SPOT_REASON)

    def _end(self, task: Task, code: str, reason: str) -> None:
        """Ask a task to stop (lock held): SIGTERM now, SIGKILL after the grace period."""
        if task.last_status == "STOPPED" or task.ending is not None:
            return
        task.ending = (code, reason)
        task.desired_status = "STOPPED"
        task.stopping_at = utcnow()
        task.version += 1
        process = task.process
        if process is None:
            return  # _run kills it as soon as it exists
        self._signal(process, signal.SIGTERM)
        kill = threading.Timer(self.stop_grace_seconds, self._kill, args=(task, process))
        kill.daemon = True
        kill.start()

    def _kill(self, task: Task, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the task: its process and, in a packed task, its items' process groups
        (each in a session of its own, as the runner starts them), as a container's end
        kills everything in it."""
        if is_packed(task.command):
            kill_items(task.command)
        self._signal(process, signal.SIGKILL)

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def _settle(self, task: Task, stop_code: str, reason: str) -> None:
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stop_code = stop_code
        task.stopped_reason = reason
        task.stopping_at = task.stopping_at or utcnow()
        task.stopped_at = utcnow()
        task.version += 1
        self._publish(task)

    def _publish(self, task: Task) -> None:
        self.publish(task_state_change_event(task, self.region, self.account))


def cannot_start(argv: Sequence[str], exc: Exception, cwd: str | None) -> str:
    """Why a task's program did not start, in words (not an errno)."""
    program = argv[0] if argv else ""
    where = f" (in {cwd})" if cwd and "/" in program else " on PATH" if program else ""
    if isinstance(exc, FileNotFoundError):
        return f"the program {program!r} was not found{where}"
    if isinstance(exc, PermissionError):
        return f"the program {program!r} is not executable{where}"
    if not program:
        return "there is no program to run: the job has no local_command"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"the program {program!r} did not start: {detail}"


def _tag(task: Task, key: str) -> str | None:
    return next((t.get("value") for t in task.tags if t.get("key") == key), None)


def _capacity_provider(params: Mapping[str, Any]) -> str:
    strategy = params.get("capacityProviderStrategy") or []
    if strategy:
        best = max(strategy, key=lambda s: (int(s.get("base", 0)), int(s.get("weight", 0))))
        return str(best.get("capacityProvider", "FARGATE"))
    return "FARGATE"
