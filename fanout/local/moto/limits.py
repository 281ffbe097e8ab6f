"""AWS's limits that a run can reach, enforced in the local mode as AWS enforces them.

moto's interpreter and services let through what AWS refuses (a Distributed Map's gathered
results over 256 KiB, an execution's 25,001st event, a 409,601-byte DynamoDB item) or
refuse what AWS accepts (a state output of exactly 256 KiB). A local run that passes must
pass on AWS, so the local mode applies AWS's rules; each limit crossed fails the run with
AWS's error name and a cause naming the limit, the state and the size. docs/local-mode.md
lists every limit with its AWS source.

- Step Functions (moto patches, :func:`enforce_limits`): every state's input and output
  and the execution's input at most 256 KiB (the execution's output is its last state's),
  a Distributed Map's gathered results too when it has no ResultWriter; the
  ``States.DataLimitExceeded`` and ``States.Runtime`` errors escape ``States.ALL``; at most
  25,000 events in one execution's history (each child of a Distributed Map has its own);
  execution names; SendTaskSuccess output, SendTaskFailure error and cause. A ResultWriter
  writes the children's results to S3 as AWS lays them out (``manifest.json``,
  ``SUCCEEDED_0.json``...), where moto writes an empty manifest.
- DynamoDB (moto patch): 400 KB per item, counted as DynamoDB counts item sizes.
- ECS RunTask overrides (8 KiB), Lambda environments (4 KB) and the Python 3.12 runtime's
  error names are checked by the emulation itself (:func:`check_overrides`,
  :func:`check_lambda_environment`, :func:`runtime_error_name`).

Sizes are measured on the JSON moto has already made for the history event (a state's
input and output), never by serializing a document once more; :data:`MAXIMA` keeps the
largest of each, which ``bench/scale.py`` reports beside AWS's limits.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from fanout.policy import ECS_OVERRIDES_LIMIT

Restore = Callable[[], None]

#: Step Functions: "Maximum input or output size for a task, state, or execution: 256 KiB
#: of data as a UTF-8 encoded string" (the API's payload fields: "Maximum length 262144").
PAYLOAD_BYTES = 256 * 1024
#: Step Functions: "Maximum execution history size: 25,000 events in a single execution".
#: The 25,000th event is the execution's failure when it would be anything else.
HISTORY_EVENTS = 25_000
#: StartExecution ``name``: "Length Constraints: Minimum length of 1. Maximum length of 80."
EXECUTION_NAME_CHARS = 80
#: Characters an execution name must not contain (StartExecution ``name``): white space,
#: brackets, wildcards, special characters and control characters (U+0000-001F, U+007F-009F).
EXECUTION_NAME_FORBIDDEN = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')
#: SendTaskFailure: ``error`` at most 256 characters, ``cause`` at most 32,768.
TASK_ERROR_CHARS = 256
TASK_CAUSE_CHARS = 32_768
#: DynamoDB: "The maximum item size in DynamoDB is 400 KB, which includes both attribute
#: name binary length (UTF-8 length) and attribute value lengths". 400 KB = 409,600 bytes.
DYNAMODB_ITEM_BYTES = 400 * 1024
#: ECS RunTask: "A total of 8192 characters are allowed for overrides. This limit includes
#: the JSON formatting characters of the override structure."
OVERRIDES_CHARS = ECS_OVERRIDES_LIMIT
#: Lambda quotas: 4 KB for all of a function's environment variables together, measured
#: (as Lambda's refusal says) on the variables as JSON.
LAMBDA_ENVIRONMENT_BYTES = 4 * 1024
#: Lambda: a synchronous invocation's response payload is at most 6 MB.
LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024

#: Execution-ending history events: the 25,000th event may be one of these, nothing else.
_TERMINAL_EVENTS = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted",
                              "ExecutionTimedOut"})
#: Errors ``States.ALL`` does not catch (Step Functions' error handling: "States.ALL ...
#: can't catch the States.DataLimitExceeded terminal error type and runtime error types").
_UNCATCHABLE_BY_ALL = frozenset({"States.DataLimitExceeded", "States.Runtime"})


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8; free for ASCII text (CPython knows a string is ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class Maxima:
    """The largest state payload and execution history a local run reached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.payload_bytes = 0
            self.payload_where = ""
            self.history_events = 0

    def payload(self, size: int, where: Callable[[], str]) -> None:
        if size > self.payload_bytes:  # read without the lock: only a new maximum takes it
            with self._lock:
                if size > self.payload_bytes:
                    self.payload_bytes, self.payload_where = size, where()

    def history(self, events: int) -> None:
        if events > self.history_events:
            with self._lock:
                self.history_events = max(self.history_events, events)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"payload_bytes": self.payload_bytes, "payload_where": self.payload_where,
                    "history_events": self.history_events,
                    "payload_limit_bytes": PAYLOAD_BYTES, "history_limit_events": HISTORY_EVENTS}


MAXIMA = Maxima()


# --- checks the emulation itself makes (no moto involved) ---------------------------------


class LimitExceeded(Exception):
    """A limit of AWS crossed outside a state machine; ``code`` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def check_execution_name(name: str) -> None:
    """Raise ``InvalidName`` where StartExecution would refuse ``name``."""
    bad = sorted({c for c in name if c in EXECUTION_NAME_FORBIDDEN or c.isspace()
                  or ord(c) <= 0x1F or 0x7F <= ord(c) <= 0x9F})
    if not 1 <= len(name) <= EXECUTION_NAME_CHARS or bad:
        why = (f"{len(name)} characters, not 1 to {EXECUTION_NAME_CHARS}" if not bad
               else "characters Step Functions does not allow: " + " ".join(map(repr, bad)))
        raise LimitExceeded("InvalidName", f"Invalid Name: '{name}' ({why})")


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Raise ``InvalidParameterException`` for RunTask overrides over ECS's 8,192 characters."""
    chars = len(json.dumps(overrides, separators=(",", ":")))
    if chars > OVERRIDES_CHARS:
        raise LimitExceeded(
            "InvalidParameterException",
            f"Container Overrides length must be at most {OVERRIDES_CHARS} "
            f"(ECS RunTask overrides limit); these are {chars} characters")


def check_lambda_environment(function: str, variables: Mapping[str, str]) -> None:
    """Raise where Lambda refuses a function's environment (over 4 KB as JSON)."""
    measured = json.dumps(dict(variables), separators=(",", ":"))
    size = utf8_size(measured)
    if size > LAMBDA_ENVIRONMENT_BYTES:
        raise LimitExceeded(
            "InvalidParameterValueException",
            f"Lambda was unable to configure the environment variables of {function}: "
            f"{size} bytes exceed the 4 KB limit ({LAMBDA_ENVIRONMENT_BYTES} bytes)")


def runtime_error_name(exc: BaseException) -> str:
    """The ``errorType`` the Python 3.12 runtime reports for ``exc`` raised by a handler."""
    if isinstance(exc, MemoryError):
        return "Runtime.OutOfMemory"
    if isinstance(exc, SystemExit):
        return "Runtime.ExitError"
    return type(exc).__name__


def timed_out(function: str, timeout_seconds: float) -> tuple[str, str]:
    """What Lambda reports for a handler that ran past its timeout (Python 3.12 runtime)."""
    return "Sandbox.Timedout", (f"RequestId: local Error: Task timed out after "
                                f"{timeout_seconds:.2f} seconds ({function})")


# --- DynamoDB item sizes, as DynamoDB counts them -----------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


def attribute_size(value: Any) -> int:
    """Bytes DynamoDB counts for one attribute value (moto's ``DynamoType``)."""
    kind, raw = value.type, value.value
    if kind == "S":
        return utf8_size(raw)
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(utf8_size(v) for v in raw)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in raw)
    if kind == "BS":
        return sum(len(v) for v in raw)
    # List and Map: 3 bytes, and 1 byte per element besides its own size.
    from moto.dynamodb.models.dynamo_type import DynamoType

    if kind == "L":
        return 3 + sum(1 + attribute_size(v if isinstance(v, DynamoType) else DynamoType(v))
                       for v in raw)
    if kind == "M":
        return 3 + sum(1 + utf8_size(k) + attribute_size(
            v if isinstance(v, DynamoType) else DynamoType(v)) for k, v in raw.items())
    return utf8_size(str(raw))


def item_size(attributes: Mapping[str, Any]) -> int:
    """An item's size: each attribute's name (UTF-8) and value, as DynamoDB counts them."""
    return sum(utf8_size(name) + attribute_size(value) for name, value in attributes.items())


# --- Step Functions: the patches of moto's interpreter ------------------------------------


def _failure(env: Any, error: str, cause: str) -> Exception:
    """A state's failure with ``error`` and ``cause``, as moto's interpreter raises one."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    kind = {"States.DataLimitExceeded": StatesErrorNameType.StatesStatesDataLimitExceeded,
            "States.Runtime": StatesErrorNameType.StatesRuntime}[error]
    return FailureEventException(failure_event=FailureEvent(
        env=env, error_name=StatesErrorName(typ=kind), event_type=HistoryEventType.TaskFailed,
        event_details=cast(Any, {"executionFailedEventDetails": ExecutionFailedEventDetails(
            error=error, cause=cause)}),
    ))


def data_limit(env: Any, what: str, size: int) -> Exception:
    return _failure(env, "States.DataLimitExceeded",
                    f"{what} is {size:,} bytes, over Step Functions' limit of "
                    f"{PAYLOAD_BYTES:,} bytes (256 KiB) for a state's or execution's "
                    "input or output")


def _measured_state_events() -> Restore:
    """Each state's input and output measured on its history event's JSON, and limited."""
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    entered = CommonStateField._get_state_entered_event_details
    exited = CommonStateField._get_state_exited_event_details
    verify = CommonStateField._verify_size_quota

    def entered_details(self: Any, env: Any) -> Any:
        details = entered(self, env)
        size = utf8_size(details["input"] or "")
        MAXIMA.payload(size, lambda: f"input of state {self.name}")
        if size > PAYLOAD_BYTES:
            raise data_limit(env, f"The input of state '{self.name}'", size)
        return details

    def exited_details(self: Any, env: Any) -> Any:
        details = exited(self, env)
        size = utf8_size(details["output"] or "")
        MAXIMA.payload(size, lambda: f"output of state {self.name}")
        if size > PAYLOAD_BYTES:
            raise data_limit(env, f"The output of state '{self.name}'", size)
        return details

    def verify_size_quota(self: Any, env: Any, value: Any) -> None:
        # The state's output is measured on its exit event (above): serialized once.
        if self.state_exited_event_type is None:
            verify(self, env, value)

    CommonStateField._get_state_entered_event_details = entered_details  # type: ignore[method-assign]
    CommonStateField._get_state_exited_event_details = exited_details  # type: ignore[method-assign]
    CommonStateField._verify_size_quota = verify_size_quota  # type: ignore[method-assign]

    def restore() -> None:
        CommonStateField._get_state_entered_event_details = entered  # type: ignore[method-assign]
        CommonStateField._get_state_exited_event_details = exited  # type: ignore[method-assign]
        CommonStateField._verify_size_quota = verify  # type: ignore[method-assign]

    return restore


def _inclusive_task_quota() -> Restore:
    """A task result of exactly 256 KiB passes, as on AWS (moto refuses it)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    modules = (state_task_lambda, state_task_service)
    saved = [getattr(m, "is_within_size_quota") for m in modules]  # noqa: B009

    def is_within_size_quota(value: Any) -> bool:
        text = value if isinstance(value, str) else to_json_str(value, separators=(",", ":"))
        size = utf8_size(text)
        MAXIMA.payload(size, lambda: "a task's result")
        return size <= PAYLOAD_BYTES

    for module in modules:
        setattr(module, "is_within_size_quota", is_within_size_quota)  # noqa: B010

    def restore() -> None:
        for module, original in zip(modules, saved, strict=True):
            setattr(module, "is_within_size_quota", original)  # noqa: B010

    return restore


def _uncatchable_errors() -> Restore:
    """``States.ALL`` does not catch ``States.DataLimitExceeded`` nor ``States.Runtime``."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
        ErrorEqualsDecl,
    )

    original = ErrorEqualsDecl._eval_body
    catch_all = ErrorEqualsDecl._STATE_ALL_ERROR

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        name = getattr(error_name, "error_name", None)
        if name in _UNCATCHABLE_BY_ALL and catch_all in self.error_names:
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    ErrorEqualsDecl._eval_body = eval_body  # type: ignore[method-assign]

    def restore() -> None:
        ErrorEqualsDecl._eval_body = original  # type: ignore[method-assign]

    return restore


def _history_limit() -> Restore:
    """An execution fails when its 25,000th event would be anything but its end."""
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    original = EventManager.add_event

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        next_id = self._event_id_gen._next_id
        limit = HISTORY_EVENTS  # read at each event: tests lower it
        if next_id >= limit and getattr(event_type, "value", event_type) not in _TERMINAL_EVENTS:
            where = SimpleNamespace(next_state_name="", event_history_context=context)
            raise _failure(
                where, "States.Runtime",
                f"The execution reached the maximum number of history events ({limit}).")
        event_id: int = original(self, context, event_type, *args, **kwargs)
        MAXIMA.history(event_id)
        return event_id

    EventManager.add_event = add_event  # type: ignore[method-assign]

    def restore() -> None:
        EventManager.add_event = original  # type: ignore[method-assign]

    return restore


def _map_results() -> Restore:
    """A Distributed Map's gathered results are limited when no ResultWriter takes them;
    each child has its own history; the children's results are kept for the ResultWriter."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
        DistributedItemProcessorWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )

    original_execution = StateMap._eval_execution
    original_job = DistributedItemProcessorWorker._eval_job
    original_input = DistributedItemProcessorWorker._eval_input

    def eval_execution(self: Any, env: Any) -> None:
        # The ResultWriter's paths read the map's input, as on AWS (moto: its results).
        env.__dict__["_fanout_map_input"] = env.states.get_input()
        original_execution(self, env)
        if self.result_writer is None and isinstance(self.iteration_component,
                                                     DistributedIterationComponent):
            # What AWS gathers (COMPACT: the children's outputs), measured once per map.
            results = json.dumps(env.stack[-1], separators=(",", ":"), ensure_ascii=False)
            size = utf8_size(results)
            MAXIMA.payload(size, lambda: f"results gathered by map {self.name}")
            if size > PAYLOAD_BYTES:
                raise data_limit(
                    env, f"The results the Distributed Map '{self.name}' gathers from its "
                    f"{len(env.stack[-1]):,} children (no ResultWriter)", size)

    def eval_input(self: Any, env_frame: Any) -> None:
        original_input(self, env_frame)
        env_frame.__dict__["_fanout_child_input"] = env_frame.states.get_input()

    def eval_job(self: Any, env: Any, job: Any) -> None:
        # A child execution's history is its own (AWS counts 25,000 events per child);
        # moto would pile every child's events into one log nobody reads.
        env.event_manager = EventManager()
        started = datetime.now(UTC)
        try:
            original_job(self, env, job)
        finally:
            state = env.program_state()
            error = getattr(state, "error", None) or {}
            status = ("SUCCEEDED" if isinstance(state, ProgramEnded) and job.job_output is not None
                      else "ABORTED" if isinstance(state, ProgramStopped)
                      else "TIMED_OUT" if isinstance(state, ProgramTimedOut)
                      else "FAILED")
            if isinstance(state, ProgramError) or status == "FAILED":
                error = dict(error) if isinstance(error, Mapping) else {}
            record = self._map_run_record
            child = {
                "input": env.__dict__.get("_fanout_child_input", job.job_input),
                "output": job.job_output, "status": status, "error": error.get("error"),
                "cause": error.get("cause"), "start": started, "stop": datetime.now(UTC),
            }
            with _RESULTS_LOCK:
                record.__dict__.setdefault("_fanout_children", []).append(child)

    StateMap._eval_execution = eval_execution  # type: ignore[method-assign]
    DistributedItemProcessorWorker._eval_job = eval_job  # type: ignore[method-assign]
    DistributedItemProcessorWorker._eval_input = eval_input  # type: ignore[method-assign]

    def restore() -> None:
        StateMap._eval_execution = original_execution  # type: ignore[method-assign]
        DistributedItemProcessorWorker._eval_job = original_job  # type: ignore[method-assign]
        DistributedItemProcessorWorker._eval_input = original_input  # type: ignore[method-assign]

    return restore


_RESULTS_LOCK = threading.Lock()


def results_files(map_run_arn: str, state_machine_arn: str,
                  children: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The children's results by file status, each entry as a ResultWriter writes it."""
    head, _, _ = map_run_arn.rpartition(":")  # arn:...:mapRun:<machine>/<label>
    execution_base = head.replace(":mapRun:", ":execution:", 1)
    files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for child in children:
        name = str(uuid.uuid4())
        entry: dict[str, Any] = {
            "ExecutionArn": f"{execution_base}:{name}",
            "Input": json.dumps(child["input"], separators=(",", ":")),
            "InputDetails": {"Included": True},
            "Name": name,
            "RedriveCount": 0,
            "RedriveStatus": "NOT_REDRIVABLE" if child["status"] == "SUCCEEDED" else "REDRIVABLE",
            "StartDate": child["start"].isoformat(timespec="milliseconds"),
            "StateMachineArn": state_machine_arn,
            "Status": child["status"],
            "StopDate": child["stop"].isoformat(timespec="milliseconds"),
        }
        if child["status"] == "SUCCEEDED":
            entry["Output"] = json.dumps(child["output"], separators=(",", ":"))
            entry["OutputDetails"] = {"Included": True}
            files["SUCCEEDED"].append(entry)
        else:
            if child["error"]:
                entry["Error"] = child["error"]
            if child["cause"]:
                entry["Cause"] = child["cause"]
            files["FAILED"].append(entry)
    return files


def _result_writer() -> Restore:
    """A ResultWriter writes the children's results as AWS does, not an empty manifest.

    ``<Prefix>/<map run id>/manifest.json`` names the results files, one per status that
    has children (``SUCCEEDED_0.json``, ``FAILED_0.json``), each a JSON array of the
    children's executions (ARN, input, output or error and cause, status, dates). The
    map's output is the map run's ARN and where its manifest is.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3 import (  # noqa: E501
        ResourceEvalS3,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (  # noqa: E501
        ResultWriter,
    )

    original = ResourceEvalS3.__dict__["_handle_put_object"]
    original_eval = ResultWriter._eval_body

    def eval_body(self: Any, env: Any) -> None:
        results = env.stack.pop()  # the children's outputs, on top of the stack
        env.stack.append(env.__dict__.get("_fanout_map_input", results))
        self.parargs.eval(env=env)  # paths read the value under it: the map's input
        parameters = env.stack.pop()
        env.stack.pop()
        env.stack.extend([results, parameters])
        self.resource_eval.eval_resource(env=env)

    def handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        env.stack.pop()  # the gathered outputs: written to S3 instead
        s3 = ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                           state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all()[-1]
        map_run_id = record.map_run_arn.split(":")[-1]
        prefix = parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        bucket = parameters["Bucket"]
        machine = env.states.context_object.context_object_data["StateMachine"]["Id"]
        with _RESULTS_LOCK:
            children = list(record.__dict__.get("_fanout_children", []))
        files = results_files(record.map_run_arn, machine, children)
        listed: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status, entries in files.items():
            if not entries:
                continue
            key = f"{prefix}{map_run_id}/{status}_0.json"
            body = json.dumps(entries).encode("utf-8")
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            listed[status].append({"Key": key, "Size": len(body)})
        key = f"{prefix}{map_run_id}/manifest.json"
        manifest = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn,
                    "ResultFiles": listed}
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
        env.stack.append({"MapRunArn": record.map_run_arn,
                          "ResultWriterDetails": {"Bucket": bucket, "Key": key}})

    ResourceEvalS3._handle_put_object = staticmethod(handle_put_object)  # type: ignore[method-assign]
    ResultWriter._eval_body = eval_body  # type: ignore[method-assign]

    def restore() -> None:
        ResultWriter._eval_body = original_eval  # type: ignore[method-assign]
        ResourceEvalS3._handle_put_object = original  # type: ignore[method-assign]

    return restore


def _api_limits() -> Restore:
    """StartExecution's name and input, SendTaskSuccess's output, SendTaskFailure's fields
    (its cause passed on: moto's response drops it)."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.exceptions import InvalidExecutionInput, InvalidName
    from moto.stepfunctions.exceptions import ValidationException as SfnValidation
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    # moto's SendTaskFailure drops the cause (Fanout.Retry carries the next attempt in it).
    response_failure = StepFunctionResponse.send_task_failure

    def send_task_failure_with_cause(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"),
            cause=self._get_param("cause"))
        return EmptyResult()

    start = StepFunctionsParserBackend.start_execution
    success = StepFunctionsParserBackend.send_task_success
    failure = StepFunctionsParserBackend.send_task_failure

    def start_execution(self: Any, state_machine_arn: str, name: Any = None,
                        execution_input: Any = None, *args: Any, **kwargs: Any) -> Any:
        if name is not None:
            try:
                check_execution_name(name)
            except LimitExceeded as exc:
                raise InvalidName(exc.message) from None
        if execution_input is not None:
            size = utf8_size(execution_input)
            MAXIMA.payload(size, lambda: "the execution's input")
            if size > PAYLOAD_BYTES:
                raise InvalidExecutionInput(
                    f"The execution input is {size:,} bytes, over Step Functions' limit of "
                    f"{PAYLOAD_BYTES:,} bytes (256 KiB)")
        return start(self, state_machine_arn, name, execution_input, *args, **kwargs)

    def send_task_success(self: Any, task_token: Any, outcome: Any) -> Any:
        size = utf8_size(outcome or "")
        if size > PAYLOAD_BYTES:
            raise SfnValidation(
                "1 validation error detected: Value at 'output' failed to satisfy constraint: "
                f"Member must have length less than or equal to {PAYLOAD_BYTES} "
                f"(SendTaskSuccess output is {size:,} bytes, over 256 KiB)")
        return success(self, task_token, outcome)

    def send_task_failure(self: Any, task_token: Any, error: Any = None, cause: Any = None,
                          *args: Any, **kwargs: Any) -> Any:
        for field, value, limit in (("error", error, TASK_ERROR_CHARS),
                                    ("cause", cause, TASK_CAUSE_CHARS)):
            if value is not None and len(value) > limit:
                raise SfnValidation(
                    f"1 validation error detected: Value at '{field}' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {limit}")
        return failure(self, task_token, error, cause, *args, **kwargs)

    StepFunctionResponse.send_task_failure = send_task_failure_with_cause  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
    StepFunctionsParserBackend.send_task_success = send_task_success  # type: ignore[method-assign]
    StepFunctionsParserBackend.send_task_failure = send_task_failure  # type: ignore[method-assign]

    def restore() -> None:
        StepFunctionResponse.send_task_failure = response_failure  # type: ignore[method-assign]
        StepFunctionsParserBackend.start_execution = start  # type: ignore[method-assign]
        StepFunctionsParserBackend.send_task_success = success  # type: ignore[method-assign]
        StepFunctionsParserBackend.send_task_failure = failure  # type: ignore[method-assign]

    return restore


def _dynamodb_item_size() -> Restore:
    """An item is refused past 409,600 bytes as DynamoDB counts them (moto: 405,000 of its own)."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    original = LimitedSizeDict.__setitem__

    def setitem(self: Any, key: str, value: Any) -> None:
        size = utf8_size(key) + (attribute_size(value) if type(value) is DynamoType
                                 else utf8_size(str(value)))
        for name, existing in self.items():
            if name != key:
                size += utf8_size(name) + (attribute_size(existing)
                                           if type(existing) is DynamoType
                                           else utf8_size(str(existing)))
        if size > DYNAMODB_ITEM_BYTES:
            raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    LimitedSizeDict.__setitem__ = setitem  # type: ignore[method-assign]

    def restore() -> None:
        LimitedSizeDict.__setitem__ = original  # type: ignore[method-assign]

    return restore


def enforce_limits() -> Restore:
    """Apply every limit above to moto (in process); returns the function that undoes it."""
    restores = [_measured_state_events(), _inclusive_task_quota(), _uncatchable_errors(),
                _history_limit(), _map_results(), _result_writer(), _api_limits(),
                _dynamodb_item_size()]

    def restore() -> None:
        for undo in reversed(restores):
            undo()

    return restore
