"""Launch: start the attempt's task for a waiting item and keep its token.

Idempotent per attempt: the attempt record is written (conditionally) before RunTask and
the right to call RunTask is a short lease on it, so a retried or doubled invocation
never starts a second task. A Launch that died after RunTask but before writing the ARN
leaves an expired lease; the next claimant first looks the task up by its identity
(``startedBy`` + tags) and only then calls RunTask again with the same ``clientToken``
(on AWS that returns the same task within 24 h; emulators ignore the token).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict

from fanout.aws.ecs import LaunchError, LaunchRequest, TaskLauncher, client_token
from fanout.aws.stepfunctions import TaskCallbacks
from fanout.policy import Capacity
from fanout.records.model import TERMINAL, AttemptRecord, ItemRecord, RunRecord
from fanout.records.store import RecordsStore
from fanout.runtime import errors
from fanout.runtime.classify import StopClass
from fanout.runtime.clock import Clock, iso, later, utcnow
from fanout.runtime.leftovers import stop_if_run_ended
from fanout.runtime.settle import answer
from fanout.settings import LaunchEnv

#: How long one Launch owns the right to call RunTask for an attempt.
LAUNCH_LEASE_SECONDS = 120

_FINAL_ERRORS = {"FAILED": errors.ITEM_FAILED, "TIMED_OUT": errors.ITEM_TIMED_OUT,
                 "ABORTED": errors.ITEM_ABORTED}


class ManifestItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int
    params: dict[str, Any] = {}
    command: list[str] = []
    environment: dict[str, str] = {}


class LaunchInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str
    run_id: str
    item: ManifestItem


def launch(request: LaunchInput, *, env: LaunchEnv, store: RecordsStore,
           launcher: TaskLauncher, callbacks: TaskCallbacks,
           clock: Clock = utcnow) -> dict[str, Any]:
    run = store.get_run(request.run_id)
    if run is None:
        raise errors.LaunchFailed(f"no run record for {request.run_id}")
    index = request.item.index
    for _ in range(5):  # a lost race re-reads; a handful of rounds is always enough
        item = store.get_item(run.run_id, index)
        if item is not None and item.status in TERMINAL:
            return _answer_terminal(request.token, item, callbacks)
        if run.status != "RUNNING":
            store.settle_item(run.run_id, index, "ABORTED", f"run is {run.status}",
                              first=_item_of(request, run))
            callbacks.fail(request.token, errors.ITEM_ABORTED, f"run is {run.status}")
            return {"launched": False, "reason": f"run is {run.status}"}
        current = _current_attempt(store, run, item, request, clock)
        if current is not None:
            attempt, begun = current
            return _start(attempt, run, item, request, begun=begun, env=env, store=store,
                          callbacks=callbacks, launcher=launcher, clock=clock)
        run = store.get_run(run.run_id) or run
    raise errors.LaunchThrottled("records kept changing under this launch; try again")


def _answer_terminal(token: str, item: ItemRecord, callbacks: TaskCallbacks) -> dict[str, Any]:
    if item.status == "SUCCEEDED":
        callbacks.succeed(token, {"index": item.index, "status": item.status,
                                  "exit_code": item.exit_code})
    else:
        callbacks.fail(token, _FINAL_ERRORS[item.status], f"item already {item.status}")
    return {"launched": False, "reason": f"item already {item.status}"}


def _item_of(request: LaunchInput, run: RunRecord) -> ItemRecord:
    """The item record as first written, from the manifest line."""
    return ItemRecord(run.run_id, request.item.index, "PENDING", params=request.item.params,
                      command=request.item.command, environment=request.item.environment,
                      expires_at=run.expires_at)


def _current_attempt(store: RecordsStore, run: RunRecord, item: ItemRecord | None,
                     request: LaunchInput, clock: Clock) -> tuple[AttemptRecord, bool] | None:
    """The open attempt of the item, or a new one (True: begun by this call, which then
    holds its launch lease); None when a race was lost."""
    index = request.item.index
    if item is not None and item.open_attempt is not None:
        found = store.get_attempt(run.run_id, index, item.open_attempt)
        return (found, False) if found is not None else None
    number = (item.attempts if item else 0) + 1
    now = clock()
    timeout = int(run.settings.get("timeout_seconds", 3600))
    attempt = AttemptRecord(
        run_id=run.run_id, index=index, attempt=number,
        client_token=client_token(run.run_id, index, number),
        task_token=request.token, capacity=_capacity(run, item),
        created_at=iso(now), started_at=iso(now), deadline=later(now, timeout),
        # The lease is taken with the attempt's first write: no separate claim.
        launch_lease_until=later(now, LAUNCH_LEASE_SECONDS), expires_at=run.expires_at,
    )
    if store.begin_attempt(item or _item_of(request, run), attempt):
        return attempt, True
    return None


def _capacity(run: RunRecord, item: ItemRecord | None) -> str:
    asked = Capacity(run.settings.get("capacity", Capacity.FARGATE.value))
    if asked is Capacity.FARGATE_SPOT_THEN_FARGATE:
        return "FARGATE" if item is not None and item.on_demand else "FARGATE_SPOT"
    return asked.value


def _start(attempt: AttemptRecord, run: RunRecord, item: ItemRecord | None,
           request: LaunchInput, *, begun: bool, env: LaunchEnv, store: RecordsStore,
           callbacks: TaskCallbacks, launcher: TaskLauncher, clock: Clock) -> dict[str, Any]:
    now = clock()
    ident = {"run_id": run.run_id, "index": attempt.index, "attempt": attempt.attempt}
    # An attempt begun by someone else whose lease ran out may have a task already.
    lease_expired = not begun and attempt.launch_lease_until is not None
    if not begun and not store.claim_launch(run.run_id, attempt.index, attempt.attempt,
                                            request.token, iso(now),
                                            later(now, LAUNCH_LEASE_SECONDS)):
        # Started (or being started) by another invocation; the newest token is stored,
        # unless the attempt settled first: its answer then went to an earlier token.
        current = store.get_attempt(run.run_id, attempt.index, attempt.attempt)
        if current is not None and not current.is_open and current.task_token != request.token:
            answer(store, callbacks, replace(current, task_token=request.token))
        return {**ident, "launched": False, "task_arn": attempt.task_arn}
    arn = launcher.find_task(run.run_id, attempt.index, attempt.attempt) if lease_expired \
        else None
    job = env.fanout_task_definitions.get(run.job)
    if job is None:
        _fail_for_good(store, attempt, f"job {run.job} has no task definition", clock)
        raise errors.LaunchFailed(f"job {run.job} has no task definition in this deployment")
    src = item or ItemRecord(run.run_id, attempt.index, "RUNNING", params=request.item.params,
                             command=request.item.command,
                             environment=request.item.environment)
    capacity = attempt.capacity
    launch_request = LaunchRequest(
        run_id=run.run_id, index=attempt.index, attempt=attempt.attempt,
        task_definition=job.task_definition, container=job.container,
        command=src.command, environment=src.environment, capacity=capacity,
        client_token=attempt.client_token, subnets=env.subnets,
        security_groups=env.security_groups, assign_public_ip=env.fanout_assign_public_ip,
    )
    if arn is None:
        arn = _run_task(launch_request, run, store, attempt, launcher, clock)
    store.attach_task(run.run_id, attempt.index, attempt.attempt, arn, iso(clock()),
                      expires_at=run.expires_at)
    if stop_if_run_ended(store, launcher, run.run_id, arn):
        # The run was stopped while RunTask was in flight: Abort may have swept this
        # attempt before the task existed. The task's STOPPED event settles what is left.
        return {**ident, "launched": False, "task_arn": arn, "reason": "run stopped"}
    return {**ident, "launched": True, "task_arn": arn, "capacity": capacity}


def _run_task(request: LaunchRequest, run: RunRecord, store: RecordsStore,
              attempt: AttemptRecord, launcher: TaskLauncher, clock: Clock) -> str:
    try:
        return launcher.run_task(request)
    except LaunchError as exc:
        fallback = (request.capacity == "FARGATE_SPOT"
                    and run.settings.get("capacity") == Capacity.FARGATE_SPOT_THEN_FARGATE)
        if exc.kind == "capacity" and fallback:
            on_demand = replace(request, capacity="FARGATE", client_token=client_token(
                run.run_id, attempt.index, attempt.attempt, "FARGATE"))
            return _run_task(on_demand, run, store, attempt, launcher, clock)
        if exc.kind in ("throttled", "capacity"):
            # Give the lease back so the state machine's retry can call RunTask at once.
            store.release_launch(run.run_id, attempt.index, attempt.attempt)
            kind = errors.LaunchThrottled if exc.kind == "throttled" \
                else errors.CapacityUnavailable
            raise kind(str(exc)) from exc
        _fail_for_good(store, attempt, str(exc), clock)
        raise errors.LaunchFailed(str(exc)) from exc


def _fail_for_good(store: RecordsStore, attempt: AttemptRecord, reason: str,
                   clock: Clock) -> None:
    from fanout.records.model import Settlement

    settlement = Settlement(status="FAILED", item_status="FAILED",
                            stop_class=StopClass.START_FAILURE.value + ":launch_refused",
                            stopped_at=iso(clock()), answer={"outcome": "raised"},
                            stopped_reason=reason[:1000])
    if store.settle_attempt(attempt, settlement):
        fresh = store.get_attempt(attempt.run_id, attempt.index, attempt.attempt)
        if fresh is not None:
            # The raised error is this attempt's answer: none is owed to the token.
            store.mark_answered(fresh.run_id, fresh.index, fresh.attempt)
