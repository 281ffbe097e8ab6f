"""The patches of moto that the local mode needs to be right (never switched off).

- :func:`route_ecs`: the ECS task calls (RunTask, DescribeTasks, StopTask, ListTasks) are
  answered by the emulated Fargate: moto's ECS ignores ``clientToken`` and runs nothing.
- :func:`route_lambda`: ``Invoke`` runs the real handler (moto's Lambda without Docker
  only echoes).
- :func:`serialized_dynamodb`: moto's DynamoDB copies a table during a transaction while
  other threads write to it; one call at a time, as the real service's isolation makes
  it look.
- AWS's limits (payloads, history, names, SendTaskFailure's cause, which moto drops) are
  in :mod:`fanout.local.moto.sfn_limits` and :mod:`fanout.local.moto.limits`.

Each returns the function that puts moto's own back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fanout.local.tasks import EcsError

if TYPE_CHECKING:
    from fanout.local.fargate import EmulatedFargate

Restore = Callable[[], None]
_ECS_CALLS = ("run_task", "describe_tasks", "stop_task", "list_tasks")


def _ecs_handlers(fargate: EmulatedFargate) -> dict[str, Callable[[Any], Any]]:
    from moto.core.exceptions import JsonRESTError

    from fanout.local.moto.answers import handed_result

    def call(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], Any]:
        def handler(response: Any) -> Any:
            params = json.loads(response.body or "{}")
            try:
                return handed_result(fn(params))
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


def route_ecs(fargate: EmulatedFargate) -> Restore:
    from moto.ecs.responses import EC2ContainerServiceResponse

    originals = {name: getattr(EC2ContainerServiceResponse, name) for name in _ECS_CALLS}
    for name, handler in _ecs_handlers(fargate).items():
        setattr(EC2ContainerServiceResponse, name, handler)

    def restore() -> None:
        for name, original in originals.items():
            setattr(EC2ContainerServiceResponse, name, original)

    return restore


def route_lambda(invoke: Callable[..., bytes], account: str, region: str) -> Restore:
    from moto.awslambda_simple.models import lambda_simple_backends

    backend = lambda_simple_backends[account][region]
    backend.invoke = invoke  # type: ignore[method-assign]

    def restore() -> None:
        del backend.invoke

    return restore


def serialized_dynamodb() -> Restore:
    from moto.dynamodb.responses import DynamoHandler

    dynamodb_call = DynamoHandler.call_action
    lock = threading.RLock()

    def serialized(self: Any) -> Any:
        with lock:
            return dynamodb_call(self)

    DynamoHandler.call_action = serialized  # type: ignore[method-assign]

    def restore() -> None:
        DynamoHandler.call_action = dynamodb_call  # type: ignore[method-assign]

    return restore
