"""What each function talks to, built once per process from its env model (lazily)."""

from __future__ import annotations

from typing import Any, TypeVar

from fanout.settings import FunctionEnv

E = TypeVar("E", bound=FunctionEnv)
_cache: dict[Any, Any] = {}


def env(model: type[E]) -> E:
    if model not in _cache:
        _cache[model] = model.from_env()
    value: E = _cache[model]
    return value


def records(table: str) -> Any:
    key = ("records", table)
    if key not in _cache:
        from fanout.records import DynamoRecords

        _cache[key] = DynamoRecords(table)
    return _cache[key]


def launcher(cluster: str) -> Any:
    key = ("launcher", cluster)
    if key not in _cache:
        from fanout.ecs import EcsLauncher

        _cache[key] = EcsLauncher(cluster)
    return _cache[key]


def callbacks() -> Any:
    if "callbacks" not in _cache:
        from fanout.runtime.callbacks import StepFunctionsCallbacks

        _cache["callbacks"] = StepFunctionsCallbacks()
    return _cache["callbacks"]


def log_tail() -> Any:
    if "log_tail" not in _cache:
        from fanout.runtime.logtail import CloudWatchTail

        _cache["log_tail"] = CloudWatchTail()
    return _cache["log_tail"]


def reset() -> None:
    _cache.clear()


def use(*, callbacks: Any = None, launcher: Any = None, cluster: str | None = None) -> None:
    """Replace what handlers talk to (tests: an in-memory callbacks or a faulty launcher)."""
    if callbacks is not None:
        _cache["callbacks"] = callbacks
    if launcher is not None and cluster is not None:
        _cache[("launcher", cluster)] = launcher
