"""Step Functions' limits put on moto's interpreter (the list: :mod:`fanout.local.moto.limits`),
and every limit patch put on at once (:func:`enforce_limits`)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from fanout.local.moto import limits, replace, restoring
from fanout.local.moto.limits import (
    MAXIMA,
    PAYLOAD_BYTES,
    TASK_CAUSE_CHARS,
    TASK_ERROR_CHARS,
    LimitExceeded,
    Restore,
    check_execution_name,
    dynamodb_item_size,
    utf8_size,
)

#: Execution-ending history events: the 25,000th event may be one of these, nothing else.
_TERMINAL_EVENTS = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted",
                              "ExecutionTimedOut"})
#: Errors ``States.ALL`` does not catch (Step Functions' error handling: "States.ALL ...
#: can't catch the States.DataLimitExceeded terminal error type and runtime error types").
_UNCATCHABLE_BY_ALL = frozenset({"States.DataLimitExceeded", "States.Runtime"})


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

    return replace(CommonStateField, _get_state_entered_event_details=entered_details,
                   _get_state_exited_event_details=exited_details,
                   _verify_size_quota=verify_size_quota)


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

    return replace(ErrorEqualsDecl, _eval_body=eval_body)


def _history_limit() -> Restore:
    """An execution fails when its 25,000th event would be anything but its end."""
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    original = EventManager.add_event

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        next_id = self._event_id_gen._next_id
        limit = limits.HISTORY_EVENTS  # read at each event: tests lower it
        if next_id >= limit and getattr(event_type, "value", event_type) not in _TERMINAL_EVENTS:
            where = SimpleNamespace(next_state_name="", event_history_context=context)
            raise _failure(
                where, "States.Runtime",
                f"The execution reached the maximum number of history events ({limit}).")
        event_id: int = original(self, context, event_type, *args, **kwargs)
        MAXIMA.history(event_id)
        return event_id

    return replace(EventManager, add_event=add_event)


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

    return restoring(
        replace(StateMap, _eval_execution=eval_execution),
        replace(DistributedItemProcessorWorker, _eval_job=eval_job, _eval_input=eval_input),
    )


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

    return restoring(
        replace(ResourceEvalS3, _handle_put_object=staticmethod(handle_put_object)),
        replace(ResultWriter, _eval_body=eval_body),
    )


def _api_limits() -> Restore:
    """StartExecution's name and input, SendTaskSuccess's output, SendTaskFailure's fields
    (its cause passed on: moto's response drops it)."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.exceptions import InvalidExecutionInput, InvalidName
    from moto.stepfunctions.exceptions import ValidationException as SfnValidation
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    # moto's SendTaskFailure drops the cause (Fanout.Retry carries the next attempt in it).
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

    return restoring(
        replace(StepFunctionResponse, send_task_failure=send_task_failure_with_cause),
        replace(StepFunctionsParserBackend, start_execution=start_execution,
                send_task_success=send_task_success, send_task_failure=send_task_failure),
    )


def enforce_limits() -> Restore:
    """Apply every limit above to moto (in process); returns the function that undoes it."""
    restores = [_measured_state_events(), _inclusive_task_quota(), _uncatchable_errors(),
                _history_limit(), _map_results(), _result_writer(), _api_limits(),
                dynamodb_item_size()]

    def restore() -> None:
        for undo in reversed(restores):
            undo()

    return restore
