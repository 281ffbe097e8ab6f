"""moto in process, with the two places the local mode takes over: Lambda invoke and ECS tasks.

moto's ECS ignores ``clientToken`` and cannot run anything, so the ECS task calls are
answered by :class:`~fanout.local.fargate.EmulatedFargate`; every other ECS call stays
moto's. moto's Lambda (without Docker) only echoes, so ``Invoke`` runs the real handler.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fanout.local.fargate import EmulatedFargate
from fanout.local.functions import environment
from fanout.local.moto.speedups import (
    cached_json_paths,
    cached_method_names,
    cached_traversal_maps,
    cached_update_expressions,
    fast_dynamodb_serializer,
)
from fanout.local.tasks import EcsError

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

#: Set so that no call can reach a real AWS account, whatever the user's shell holds.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_CLEARED = ("AWS_PROFILE", "AWS_ENDPOINT_URL")
#: moto's Logs backend is not safe for concurrent writers.
_LOGS_LOCK = threading.Lock()


def _ecs_handlers(fargate: EmulatedFargate) -> dict[str, Callable[[Any], Any]]:
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult

    def call(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], Any]:
        def handler(response: Any) -> Any:
            params = json.loads(response.body or "{}")
            try:
                return ActionResult(fn(params))
            except EcsError as exc:
                raise JsonRESTError(exc.code, exc.message) from None

        return handler

    return {
        "run_task": call(fargate.run_task),
        "describe_tasks": call(
            lambda p: fargate.describe_tasks(p.get("cluster", ""), p.get("tasks", []))
        ),
        "stop_task": call(
            lambda p: fargate.stop_task(p.get("cluster", ""), p["task"], p.get("reason"))
        ),
        "list_tasks": call(fargate.list_tasks),
    }


@contextmanager
def emulated_aws() -> Iterator[None]:
    """moto for every service, credentials that reach nothing real."""
    from moto import mock_aws

    with environment(FAKE_ENV, unset=_CLEARED), \
            mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]
        yield


@contextmanager
def take_over(fargate: EmulatedFargate, invoke: Callable[..., bytes]) -> Iterator[None]:
    """Route ECS task calls to ``fargate`` and Lambda invokes to ``invoke`` (inside moto)."""
    from moto.awslambda_simple.models import lambda_simple_backends
    from moto.core.responses import EmptyResult
    from moto.dynamodb.responses import DynamoHandler
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    backend = lambda_simple_backends[ACCOUNT][REGION]
    backend.invoke = invoke  # type: ignore[method-assign]
    originals = {name: getattr(EC2ContainerServiceResponse, name)
                 for name in ("run_task", "describe_tasks", "stop_task", "list_tasks")}
    for name, handler in _ecs_handlers(fargate).items():
        setattr(EC2ContainerServiceResponse, name, handler)
    # moto's DynamoDB copies a table during a transaction while other threads write to it:
    # one call at a time, as the real service's isolation makes it look.
    dynamodb_call = DynamoHandler.call_action
    lock = threading.RLock()

    def serialized(self: Any) -> Any:
        with lock:
            return dynamodb_call(self)

    DynamoHandler.call_action = serialized  # type: ignore[method-assign]
    restore_transactions = _cheap_transactions()
    restore_speedups = [fast_dynamodb_serializer(), cached_json_paths(),
                        cached_update_expressions(), cached_method_names(),
                        cached_traversal_maps()]
    # moto's SendTaskFailure drops the cause; Fanout.Retry carries the next attempt in it.
    send_task_failure = StepFunctionResponse.send_task_failure

    def send_task_failure_with_cause(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure_with_cause  # type: ignore[method-assign]
    try:
        yield
    finally:
        StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]
        DynamoHandler.call_action = dynamodb_call  # type: ignore[method-assign]
        restore_transactions()
        for restore in reversed(restore_speedups):
            restore()
        for name, original in originals.items():
            setattr(EC2ContainerServiceResponse, name, original)
        del backend.invoke


def _cheap_transactions() -> Callable[[], None]:
    """TransactWriteItems and Query without moto's walks over the whole table.

    TransactWriteItems without moto's copy of every table it touches (O(table) per call):
    moto deep-copies each table to roll a cancelled transaction back; with the items of a
    run in one table that makes every launch slower than the last. Instead, the items the
    transaction names are saved and put back. Calls are serialized (see :func:`take_over`),
    so nothing else writes in between. Returns the function that undoes the change.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            name = op.get("TableName")
            if not name or name not in self.tables:
                continue
            table = self.tables[name]
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            current = self.get_item(name, key)
            attrs = _detached(current.to_json()["Attributes"]) if current else None
            saved.append((name, key, attrs))
        Table.__deepcopy__ = lambda table, memo: table  # type: ignore[attr-defined]
        try:
            original(self, transact_items)
        except Exception:
            for name, key, attrs in reversed(saved):
                if attrs is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, attrs)
            raise
        finally:
            del Table.__deepcopy__  # type: ignore[attr-defined]

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    # A query on the table's own key reads every item of the table, sorted, to keep those
    # of one partition. Give it the partition (and, for begins_with, the matching items):
    # moto's own key condition, filters and order still apply to what it gets.
    original_query = Table.query

    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any,
              *args: Any, **kwargs: Any) -> Any:
        # moto passes index_name positionally (8th after self), sometimes by keyword.
        index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
        if index_name or not self.range_key_attr or hash_key is None:
            return original_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        items = list(self.items.get(hash_key, {}).values())
        if str(range_comparison).upper() == "BEGINS_WITH" and range_objs:
            prefix = range_objs[0].value
            items = [i for i in items if str(i.range_key.value).startswith(prefix)]
        items.sort(key=lambda item: item.range_key)
        self.all_items = lambda: items
        try:
            return original_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]

    def restore() -> None:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        Table.query = original_query  # type: ignore[method-assign]

    return restore


def _detached(attrs: dict[str, Any]) -> dict[str, Any]:
    """A copy of an item's attributes sharing nothing with the table (JSON is the fast way)."""
    import copy

    try:
        copied: dict[str, Any] = json.loads(json.dumps(attrs))
    except (TypeError, ValueError):  # a value JSON cannot carry (bytes): copy it the slow way
        copied = copy.deepcopy(attrs)
    return copied


def write_logs(group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Append lines to a log stream of the emulated CloudWatch Logs (made on first use)."""
    from moto.logs.models import logs_backends

    backend = logs_backends[ACCOUNT][REGION]
    with _LOGS_LOCK:
        log_group = backend.groups.get(group)
        if log_group is None:
            backend.create_log_group(group, {})
            log_group = backend.groups[group]
        if stream not in log_group.streams:
            backend.create_log_stream(group, stream)
        backend.put_log_events(group, stream,
                               [{"timestamp": t, "message": m} for t, m in events])
