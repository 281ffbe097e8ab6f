"""What each function talks to, built once per process from its env model (lazily).

The one place that wires the boto3 adapters of :mod:`fanout.aws` to the runtime, and the
one reset (:func:`reset`) of everything cached: adapters, env models and boto3 clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fanout.aws import clients
from fanout.settings import FunctionEnv

if TYPE_CHECKING:
    from fanout.aws.ecs import TaskLauncher
    from fanout.aws.stepfunctions import Executions, TaskCallbacks
    from fanout.records.pipelines import PipelineRecords
    from fanout.records.store import RecordsStore
    from fanout.runtime.gate import Gate

E = TypeVar("E", bound=FunctionEnv)
#: Every adapter below is made the same way on purpose (look in the cache, else import its
#: module and make it): the import stays inside each function so that a handler's cold
#: start loads only the adapters it uses (docs/style.md: cold starts lean).
_cache: dict[Any, Any] = {}


def env(model: type[E]) -> E:
    if model not in _cache:
        _cache[model] = model.from_env()
    value: E = _cache[model]
    return value


def records(table: str) -> RecordsStore:
    key = ("records", table)
    if key not in _cache:
        from fanout.records.dynamo import DynamoRecords

        _cache[key] = DynamoRecords(table)
    store: RecordsStore = _cache[key]
    return store


def launcher(cluster: str) -> TaskLauncher:
    key = ("launcher", cluster)
    if key not in _cache:
        from fanout.aws.ecs import EcsLauncher

        _cache[key] = EcsLauncher(cluster)
    made: TaskLauncher = _cache[key]
    return made


def callbacks() -> TaskCallbacks:
    if "callbacks" not in _cache:
        from fanout.aws.stepfunctions import StepFunctionsCallbacks

        _cache["callbacks"] = StepFunctionsCallbacks()
    made: TaskCallbacks = _cache["callbacks"]
    return made


def gate(table: str, dispatcher: str) -> Gate:
    """The launch gate's records (on the records table) and the dispatcher's wake-up."""
    key = ("gate", table, dispatcher)
    if key not in _cache:
        from fanout.records.dynamo import DynamoRecords
        from fanout.runtime.gate import Gate

        store = records(table)
        _cache[key] = Gate(store if isinstance(store, DynamoRecords) else DynamoRecords(table),
                           dispatcher)
    made: Gate = _cache[key]
    return made


def log_tail() -> Any:
    if "log_tail" not in _cache:
        from fanout.aws.logs import CloudWatchTail

        _cache["log_tail"] = CloudWatchTail()
    return _cache["log_tail"]


def pipelines(table: str) -> PipelineRecords:
    key = ("pipelines", table)
    if key not in _cache:
        from fanout.records.pipelines import PipelineRecords

        _cache[key] = PipelineRecords(table)
    made: PipelineRecords = _cache[key]
    return made


def executions(state_machine_arn: str) -> Executions:
    key = ("executions", state_machine_arn)
    if key not in _cache:
        from fanout.aws.stepfunctions import Executions

        _cache[key] = Executions(state_machine_arn)
    made: Executions = _cache[key]
    return made


def reset() -> None:
    """Forget every cached adapter, env model and boto3 client (tests, the local mode)."""
    _cache.clear()
    clients.reset_clients()


def use(*, callbacks: Any = None, launcher: Any = None, cluster: str | None = None) -> None:
    """Replace what handlers talk to (tests: an in-memory callbacks or a faulty launcher)."""
    if callbacks is not None:
        _cache["callbacks"] = callbacks
    if launcher is not None and cluster is not None:
        _cache[("launcher", cluster)] = launcher
