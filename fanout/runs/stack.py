"""The runs of a deployed stack (a :class:`fanout.records.views.RunsSource`).

Records are read with the store the Lambdas write (:class:`fanout.records.dynamo.DynamoRecords`),
logs from the job's log group, and a run is stopped by stopping its execution: the Abort
function (on the execution's status change) then stops its tasks and settles its items.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from fanout.cost import RegionPrices, TaskSize, prices_for
from fanout.errors import FanoutInputError
from fanout.names import console_url, logs_console_url, output_id
from fanout.names import new_run_id as made_run_id
from fanout.records.dynamo import DynamoRecords
from fanout.records.model import AttemptRecord, RunRecord
from fanout.records.views import (
    ItemDetail,
    ItemView,
    RunsError,
    RunView,
    all_items,
    item_detail,
    item_view,
    run_cost,
    run_view,
    task_size,
)
from fanout.records.writes import run_ids
from fanout.runtime.packing import PREFIX, item_lines
from fanout.schema import log_stream_name

#: The error and cause a run stopped by ``fanout stop`` ends with.
STOP_ERROR = "Fanout.Stopped"
STOP_CAUSE = "stopped by a user (fanout stop)"


class Stack(Protocol):
    """What a source needs of a deployed stack (the CLI's Deployment is one)."""

    stack: str
    region: str

    def client(self, service: str) -> Any: ...
    def output(self, key: str) -> str: ...
    def records(self) -> DynamoRecords: ...


class NoSuchRun(RunsError, LookupError):
    """No run of that id in the stack."""


def start_execution(stack: Stack, run_id: str, document: dict[str, Any]) -> str:
    """Start the stack's state machine on ``document`` (a run spec, or a rerun's), named
    ``run_id``: the run. Its execution ARN."""
    sfn = stack.client("stepfunctions")
    started = sfn.start_execution(stateMachineArn=stack.output("StateMachineArn"),
                                  name=run_id, input=json.dumps(document))
    return str(started["executionArn"])


def legacy_fields(run: RunRecord) -> dict[str, Any]:
    """What ``fanout status --json`` printed before RunView, kept for scripts that read it."""
    return {**run.totals(), "parent_run": run.parent_run, "summary": run.summary,
            "execution_arn": run.execution_arn, "logical_time": run.logical_time}


class StackRuns:
    """The runs of one deployed stack."""

    kind = "aws"

    def __init__(self, stack: Stack, *, prices: dict[str, Any] | None = None,
                 sizes: dict[str, TaskSize] | None = None) -> None:
        self.stack = stack
        self._store: DynamoRecords | None = None
        #: The config's price overrides (``cost.prices``) and the jobs' task sizes.
        self.price_overrides = prices or {}
        self.sizes = sizes or {}

    @property
    def store(self) -> DynamoRecords:
        if self._store is None:
            self._store = self.stack.records()
        return self._store

    @property
    def prices(self) -> RegionPrices:
        return prices_for(self.stack.region, self.price_overrides)

    def _size(self, run: RunRecord) -> TaskSize:
        return task_size(run.settings, self.sizes.get(run.job))

    def record(self, run_id: str) -> RunRecord | None:
        return self.store.get_run(run_id)

    def view(self, run: RunRecord, *, with_cost: bool = True) -> RunView:
        cost = None
        if with_cost and run.status != "REJECTED":
            cost = run_cost(run, self.store.attempts(run.run_id), self.prices,
                            self.sizes.get(run.job))
        view = run_view(run, spec=self.store.get_spec(run.run_id), cost=cost,
                        console_url=console_url(run.execution_arn))
        return {**view, **legacy_fields(run)}

    def list_runs(self, job: str | None = None, status: str | None = None,
                  limit: int = 200, *, since: str | None = None,
                  with_cost: bool = True) -> list[RunView]:
        """Newest first; ``since``: only runs started at or after it (a record's time)."""
        runs: list[RunView] = []
        for run_id in run_ids(self.store.client, self.store.table, job, time.gmtime().tm_year,
                              since=since):
            run = self.store.get_run(run_id)
            if run is not None and (status is None or run.status == status):
                runs.append(self.view(run, with_cost=with_cost))
            if len(runs) >= limit:
                break
        return runs

    def get_run(self, run_id: str) -> RunView | None:
        run = self.record(run_id)
        return self.view(run) if run else None

    def later_runs(self, run_id: str) -> list[RunView]:
        """The runs of ``run_id``'s job that started with it or after (its reruns are among
        them), without their cost: one query of the job's index, not a scan."""
        run = self.record(run_id)
        if run is None:
            return []
        return self.list_runs(job=run.job, limit=10_000, since=run.started_at,
                              with_cost=False)

    def list_items(self, run_id: str, status: str | None = None) -> list[ItemView]:
        run = self.record(run_id)
        if run is None:
            return []
        by_item: dict[int, list[Any]] = {}
        for attempt in self.store.attempts(run_id):
            by_item.setdefault(attempt.index, []).append(attempt)
        items = all_items(run, self.store.items(run_id))
        return [item_view(i, by_item.get(i.index, [])) for i in items
                if status is None or i.shown_status == status]

    def get_item(self, run_id: str, index: int) -> ItemDetail | None:
        run = self.record(run_id)
        if run is None or not 0 <= index < max(run.total, 0):
            return None
        item = self.store.get_item(run_id, index)
        if item is None:
            item = all_items(run, [])[index]
        return self._detail(run, item, self.store.attempts(run_id, index),
                            self._log_group(run.job), self.prices)

    def all_details(self, run_id: str) -> list[ItemDetail]:
        """Every item of the run with its attempts, in index order, from two paginated
        queries (the run's items, its attempts) rather than three reads an item."""
        run = self.record(run_id)
        if run is None:
            return []
        by_item: dict[int, list[AttemptRecord]] = {}
        for attempt in self.store.attempts(run_id):
            by_item.setdefault(attempt.index, []).append(attempt)
        group, prices = self._log_group(run.job), self.prices
        return [self._detail(run, item, by_item.get(item.index, []), group, prices)
                for item in all_items(run, self.store.items(run_id))]

    def _detail(self, run: RunRecord, item: Any, attempts: list[AttemptRecord], group: str,
                prices: RegionPrices) -> ItemDetail:
        detail = item_detail(item, attempts, size=self._size(run), prices=prices)
        streams = {a.attempt: _stream(run.job, a) for a in attempts}
        for shown in detail["attempts"]:  # each attempt's stream in the CloudWatch console
            shown["logs_url"] = logs_console_url(shown["task_arn"], group,
                                                 streams.get(shown["attempt"]))
        return detail

    def _log_group(self, job: str) -> str:
        """The job's log group ("" when the stack names none: a job since removed)."""
        try:
            return self.stack.output(f"Logs{output_id(job)}")
        except (KeyError, FanoutInputError):
            return ""

    def log_records(self, run_id: str, index: int,
                    attempt: int | None = None) -> list[dict[str, Any]]:
        """The item's lines (``attempt``, ``timestamp``, ``message``), attempt by attempt."""
        run = self.record(run_id)
        if run is None:
            return []
        attempts = [a for a in self.store.attempts(run_id, index)
                    if attempt is None or a.attempt == attempt]
        group = self.stack.output(f"Logs{output_id(run.job)}")
        logs = self.stack.client("logs")
        lines: list[dict[str, Any]] = []
        for each in attempts:
            stream = _stream(run.job, each)
            if not stream:
                continue
            events = list(_log_events(logs, group, stream))
            if any(PREFIX.match(str(e["message"])) for e in events):
                # A packed task's stream (docs/decisions/0020): the item's own lines of this
                # attempt, without the runner's prefix.
                events = [{**e, "message": line} for e in events
                          for line in item_lines([str(e["message"])], index, each.attempt)]
            lines += [{"attempt": each.attempt, "timestamp": e["timestamp"],
                       "message": e["message"]} for e in events]
        return lines

    def log_lines(self, run_id: str, index: int, attempt: int | None = None) -> list[str]:
        return [str(line["message"]) for line in self.log_records(run_id, index, attempt)]

    def stop(self, run_id: str) -> None:
        """Stop the run's execution; Abort stops its tasks and settles its items ABORTED."""
        run = self.record(run_id)
        if run is None:
            raise NoSuchRun(f"no run {run_id} in the stack")
        if run.status != "RUNNING" or not run.execution_arn:
            return
        from botocore.exceptions import ClientError

        sfn = self.stack.client("stepfunctions")
        try:
            sfn.stop_execution(executionArn=run.execution_arn, error=STOP_ERROR,
                               cause=STOP_CAUSE)
        except ClientError as exc:
            # Already ended (or never started): Finalize or Abort settle the run.
            if exc.response.get("Error", {}).get("Code") not in (
                    "ExecutionDoesNotExist", "ExecutionAlreadyStopped",
                    "InvalidArn", "ValidationException"):
                raise

    def settled(self, run_id: str) -> bool:
        """The run has ended and none of its items is running any more."""
        run = self.record(run_id)
        return run is None or (run.status != "RUNNING" and run.count("RUNNING") == 0
                               and not self.store.open_attempts(run_id))

    def rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None) -> str:
        """Start the rerun's execution (Expand resolves the rerun spec); its run id."""
        return self.start_rerun(run_id, failed_only, indexes)[0]

    def start_rerun(self, run_id: str, failed_only: bool, indexes: list[int] | None,
                    new_run_id: str | None = None, trigger: str = "console",
                    current_config: bool = False) -> tuple[str, str]:
        """The rerun's run id and execution ARN."""
        from fanout.runtime.rerun import choose

        run = self.record(run_id)
        if run is None:
            raise NoSuchRun(f"no run {run_id} in the stack")
        select: Any = sorted(set(indexes)) if indexes else ("failed" if failed_only else "all")
        statuses = {i.index: i.status for i in self.store.items(run_id)} \
            if select == "failed" else {}
        choose(select, run_id, run.total, statuses)  # nothing to rerun, a bad index: exit 2
        new_run_id = new_run_id or made_run_id(run.job)
        document = {"rerun_of": run_id, "select": select, "trigger": trigger}
        if current_config:  # the job as deployed now, though it changed since the run
            document["current_config"] = True
        return new_run_id, start_execution(self.stack, new_run_id, document)


def _stream(job: str, attempt: AttemptRecord) -> str:
    """The attempt's log stream ("" before its task is known)."""
    if not attempt.task_arn:
        return ""
    return attempt.log_stream or log_stream_name(job, attempt.task_arn.rsplit("/", 1)[-1])


def _log_events(logs: Any, group: str, stream: str) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream,
                              "startFromHead": True}
    events: list[dict[str, Any]] = []
    try:
        while True:
            page = logs.get_log_events(**kwargs)
            events += page["events"]
            if not page["events"] or page.get("nextForwardToken") == kwargs.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextForwardToken"]
    except logs.exceptions.ResourceNotFoundException:
        return events

