"""The stack's Lambda functions, run in process: handler from the template, env from the template.

:meth:`Functions.moto_invoke` stands in for moto's Lambda backend, so the state machine's
``lambda:invoke`` tasks run the real handlers; an exception becomes a function error whose
``errorType`` is the exception's class name, as the Python runtime reports it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from typing import Any

from fanout.local.faults import Dice
from fanout.local.moto.limits import LAMBDA_RESPONSE_BYTES, runtime_error_name, timed_out

#: Handlers running at once in the local process. On AWS each invocation has a sandbox of
#: its own; here thousands (10,000 items at once call Launch together) would share two
#: cores and time out waiting for each other. The others wait for a slot, as a request
#: waits for a sandbox, and their timeout counts from their start.
HANDLER_SLOTS = 32

Handler = Callable[[Any, Any], Any]


class FunctionError(Exception):
    """A function's invocation failed; ``error_type`` is what Step Functions sees."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class Function:
    """A Lambda function of the template."""

    logical_id: str
    name: str
    arn: str
    #: ``module.attribute`` as the template's ``Handler`` says (``lambdas.launch.handler``).
    handler: str
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_mb: int = 128
    timeout_seconds: int = 30

    @property
    def kind(self) -> str:
        """The module name (``launch``): how the local mode tells the functions apart."""
        module = self.handler.rsplit(".", 1)[0]
        return module.rsplit(".", 1)[-1]


@dataclass
class LambdaContext:
    """What a handler reads of its context (Powertools' ``inject_lambda_context`` included)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_seconds: int = 30

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


class Functions:
    """Finds a function by name or ARN and runs its handler in this process."""

    def __init__(self, functions: list[Function], dice: Dice) -> None:
        self.functions = functions
        self.dice = dice
        self._by_ref: dict[str, Function] = {}
        for fn in functions:
            for ref in (fn.name, fn.arn, fn.logical_id):
                self._by_ref[ref] = fn
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(HANDLER_SLOTS)
        self.invocations: dict[str, int] = {fn.kind: 0 for fn in functions}

    def find(self, ref: str) -> Function:
        found = self._by_ref.get(ref) or self._by_ref.get(ref.split(":function:")[-1].split(":")[0])
        if found is None:
            raise FunctionError("ResourceNotFoundException", f"Function not found: {ref}")
        return found

    def by_kind(self, kind: str) -> Function:
        for fn in self.functions:
            if fn.kind == kind:
                return fn
        raise KeyError(f"no {kind} function in the template")

    def load(self, code_root: str | None = None) -> None:
        """Import every handler now, with its loggers bound to stderr (stdout is the CLI's).

        ``code_root`` is what the functions' code asset holds (``lambdas/``, ``fanout/``):
        it goes on ``sys.path`` as Lambda puts the task root there.
        """
        if code_root and code_root not in sys.path:
            sys.path.insert(0, code_root)
        with redirect_stdout(sys.stderr):
            for fn in self.functions:
                self._handler(fn)

    def _handler(self, fn: Function) -> Handler:
        with self._lock:
            if fn.handler not in self._handlers:
                module_name, _, attribute = fn.handler.rpartition(".")
                module = importlib.import_module(module_name)
                self._handlers[fn.handler] = getattr(module, attribute)
            return self._handlers[fn.handler]

    def invoke(self, ref: str, payload: Any) -> Any:
        """Run the function's handler on ``payload``; a failure raises :class:`FunctionError`."""
        fn = self.find(ref)
        handler = self._handler(fn)
        context = LambdaContext(fn.name, fn.arn, fn.memory_mb,
                                log_group_name=f"/aws/lambda/{fn.name}",
                                timeout_seconds=fn.timeout_seconds)
        self.invocations[fn.kind] = self.invocations.get(fn.kind, 0) + 1
        with self._slots:
            began = time.perf_counter()
            try:
                result = handler(payload, context)
            except (Exception, MemoryError, SystemExit) as exc:
                self._trace(fn, payload, f"raised {type(exc).__name__}: {exc}", began)
                # The names the Python 3.12 runtime reports (Runtime.OutOfMemory...).
                raise FunctionError(runtime_error_name(exc), str(exc)) from exc
            finally:
                _discard_metrics()
            elapsed = time.perf_counter() - began
        if elapsed > fn.timeout_seconds:
            # Lambda would have stopped it at its timeout: what ran past it does not count.
            self._trace(fn, payload, f"timed out after {elapsed:.2f}s", began)
            raise FunctionError(*timed_out(fn.name, fn.timeout_seconds))
        self._trace(fn, payload, result, began)
        if fn.kind == "launch" and self.dice.roll("launch_crash"):
            # The function's process dies after RunTask went through: what Lambda reports.
            raise FunctionError("Runtime.ExitError",
                                "RequestId: local Error: Runtime exited with error: signal: killed")
        return result

    def _trace(self, fn: Function, payload: Any, outcome: Any, began: float) -> None:
        # FANOUT_LOCAL_TRACE=<file>: every invocation, its event and its outcome, one per line.
        path = os.environ.get("FANOUT_LOCAL_TRACE")
        if path:
            line = json.dumps({"function": fn.kind, "event": payload, "outcome": outcome,
                               "at": time.time(),
                               "ms": round((time.perf_counter() - began) * 1000, 1)},
                              default=str)
            with self._lock, open(path, "a") as out:
                out.write(line + "\n")

    def moto_invoke(
        self,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        """moto's ``LambdaBackend.invoke`` signature: the answer as bytes, errors flagged."""
        text = body.decode() if isinstance(body, bytes) else (body or "{}")
        payload = json.loads(text) if text else {}
        invocation_type = (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "Event":
            threading.Thread(target=self._invoke_quietly, args=(function_name, payload),
                             daemon=True).start()
            return b""
        try:
            result = self.invoke(function_name, payload)
        except FunctionError as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            stack = traceback.format_exception(exc.__cause__) if exc.__cause__ else []
            return json.dumps({"errorType": exc.error_type, "errorMessage": exc.message,
                               "stackTrace": stack}).encode()
        try:  # what the runtime cannot serialize fails the invocation, as on AWS
            answer = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "Runtime.MarshalError",
                               "errorMessage": f"Unable to marshal response: {exc}"}).encode()
        if len(answer) > LAMBDA_RESPONSE_BYTES:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size ({len(answer)} bytes) exceeded "
                f"maximum allowed payload size ({LAMBDA_RESPONSE_BYTES} bytes)."}).encode()
        return answer

    def _invoke_quietly(self, ref: str, payload: Any) -> None:
        with suppress(FunctionError):
            self.invoke(ref, payload)


def _discard_metrics() -> None:
    """Drop the metrics the invocation added, as its flush would have on Lambda.

    The local mode disables metrics, and Powertools' flush then keeps them: after 100 values
    of one metric (a run of 100 items) it prints them all as one JSON blob over the progress
    bar. Powertools keeps them in one dict shared by every ``Metrics``.
    """
    from aws_lambda_powertools import Metrics

    Metrics._metrics.clear()


def shared_environment(functions: list[Function]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """The variables every function agrees on, and those whose values differ between them.

    Handlers read ``os.environ`` and run side by side in one process, so the local mode
    sets one environment: a variable two functions give different values cannot be set.
    """
    merged: dict[str, str] = {}
    conflicts: dict[str, set[str]] = {}
    for fn in functions:
        for name, value in fn.environment.items():
            if name in merged and merged[name] != value:
                conflicts.setdefault(name, {merged[name]}).add(value)
            merged.setdefault(name, value)
    for name in conflicts:
        merged.pop(name)
    return merged, conflicts


@contextmanager
def environment(values: Mapping[str, str], unset: tuple[str, ...] = ()) -> Iterator[None]:
    """Set ``values`` (and remove ``unset``) in ``os.environ`` for the duration, then put
    back what was there."""
    saved = {k: os.environ.get(k) for k in (*values, *unset)}
    os.environ.update(values)
    for key in unset:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
