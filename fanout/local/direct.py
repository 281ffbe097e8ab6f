"""Clients that hand a call straight to moto's service code, without the HTTP round trip.

A boto3 call on moto goes through botocore (validate, serialize, sign, emit a dozen
events, build an HTTP request), then through moto's stub (match the URL against every
backend, build a werkzeug request, read headers and body back, parse the parameters
from the wire), and back the same way. For a DynamoDB ``GetItem`` that plumbing costs
several times the lookup itself; a local run makes about a dozen such calls per item.

:class:`DirectClient` keeps the two ends and drops the middle: the parameters go to
the service code as moto's own request parser would read them from the wire
(:mod:`fanout.local.moto.params`; moto's parser itself for what that does not cover),
moto's response class for the service runs the action as it does for an HTTP request,
and botocore's own response parser reads the answer, raising the client's modelled
exception for an error. What the handlers get back is what the boto3 client would give
them. Only the JSON-protocol services the runtime calls on every item use it (DynamoDB,
Step Functions, ECS); :class:`DirectLambda` does the same for the state machine's
``lambda:invoke`` tasks. Everything else a direct client is asked for goes to the
boto3 client it wraps.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.parsers import create_parser
from botocore.response import StreamingBody

from fanout.local.moto import answers
from fanout.local.moto.params import ParamsWalk, Unsupported

#: service -> (moto module holding the response class, its name)
_RESPONSE_CLASSES = {
    "dynamodb": ("moto.dynamodb.responses", "DynamoHandler"),
    "stepfunctions": ("moto.stepfunctions.responses", "StepFunctionResponse"),
    "ecs": ("moto.ecs.responses", "EC2ContainerServiceResponse"),
}


class _Handed(bytes):
    """An answer's body that is its parse already (:mod:`fanout.local.moto.answers`)."""

    parsed: dict[str, Any]

    def __new__(cls, parsed: dict[str, Any]) -> _Handed:
        body = super().__new__(cls, b"{}")
        body.parsed = parsed
        return body


def _taking_handed(parser: Any) -> Any:
    """``parser``, reading a :class:`_Handed` body as its parse; everything else of
    botocore's parse (the status, the response metadata) as before."""
    if not hasattr(parser, "_handle_json_body"):
        return parser
    cls = type(parser)

    class Taking(cls):  # type: ignore[valid-type,misc]
        def _handle_json_body(self, raw_body: Any, shape: Any) -> Any:
            if isinstance(raw_body, _Handed):
                return raw_body.parsed
            return super()._handle_json_body(raw_body, shape)

    taking = Taking.__new__(Taking)
    taking.__dict__.update(parser.__dict__)
    return taking


class DirectClient:
    """A boto3 client whose named operations skip the HTTP emulation (see the module)."""

    def __init__(self, client: Any, operations: tuple[str, ...], *, account: str,
                 region: str) -> None:
        import importlib

        from moto.core.parse import PROTOCOL_PARSERS
        from moto.core.utils import get_service_model

        service = client.meta.service_model.service_name
        module, name = _RESPONSE_CLASSES[service]
        self._client = client
        self._response_class = getattr(importlib.import_module(module), name)
        self._service = client.meta.service_model
        self._service_id = self._service.service_id.hyphenize()
        self._target = self._service.metadata["targetPrefix"]
        self._content_type = f"application/x-amz-json-{self._service.metadata['jsonVersion']}"
        self._parser = _taking_handed(create_parser(self._service.protocol))
        self._request_parser = PROTOCOL_PARSERS[self._service.protocol]
        self._params = ParamsWalk()
        self._params_only = service == "dynamodb"
        self._account, self._region = account, region
        # DynamoDB's and the emulated Fargate's answers can be handed over parsed
        # (fanout.local.moto.answers)
        self._parsed_answers = service in ("dynamodb", "ecs")
        # Load moto's model of the service now: its cache is filled by the first caller,
        # and fifty launches asking at once would each load it.
        get_service_model(service)
        self.meta = client.meta
        self.exceptions = client.exceptions
        method_of = {api: method for method, api in client.meta.method_to_api_mapping.items()}
        for operation in operations:
            setattr(self, method_of[operation], self._operation(operation))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _operation(self, operation: str) -> Callable[..., dict[str, Any]]:
        def call(**params: Any) -> dict[str, Any]:
            return self.call(operation, params)

        call.__name__ = operation
        return call

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        model = self._service.operation_model(operation)
        # The client's own events before and after, so what is hooked on the session
        # (the cost benchmark's meter) sees these calls as it sees any other.
        context: dict[str, Any] = {}
        events, event = self.meta.events, f"{self._service_id}.{operation}"
        events.emit(f"before-parameter-build.{event}", params=params, model=model,
                    context=context)
        headers = {"X-Amz-Target": f"{self._target}.{operation}",
                   "Content-Type": self._content_type}
        handler = self._response_class()
        handler.headers = headers
        handler.querystring = {}
        handler.uri_match = {}
        handler.method, handler.path, handler.uri = "POST", "/", "/"
        handler.response_headers = {}
        handler.current_account, handler.region = self._account, self._region
        handler.partition = "aws"
        try:  # the parameters as moto's parser reads them, without the JSON (params.py)
            if not handler.automated_parameter_parsing:
                raise Unsupported("the handler reads its body")
            handler.params = self._params.parse(params, model.input_shape)
            # DynamoDB's handler reads the parsed parameters only (its body is set to them);
            # the others' bodies are read too (the emulated Fargate reads RunTask's)
            handler.body = handler.raw_body = None if self._params_only else json.dumps(params)
        except Unsupported:
            text = json.dumps(params)
            handler.body = handler.raw_body = text
            if handler.automated_parameter_parsing:
                parser = self._request_parser(model,
                                              map_type=handler.PROTOCOL_PARSER_MAP_TYPE)
                request: Any = {"method": "POST", "values": {}, "headers": headers,
                                "body": text, "url_path": "/", "url_params": {}}
                handler.params = parser.parse(request)
        if self._parsed_answers:
            answers.want(self._parser)
        try:
            answered, response_headers, body = handler.call_action()
        finally:
            handed = answers.take() if self._parsed_answers else None
        status = int(answered)
        raw = body.encode() if isinstance(body, str) else (body or b"")
        response = {"status_code": status, "headers": response_headers, "body": raw}
        if handed is not None and status < 300:  # moto's answer, parsed without the JSON
            response["body"] = _Handed(handed)
        parsed: dict[str, Any] = self._parser.parse(response, model.output_shape)
        if status >= 300:
            code = parsed.get("Error", {}).get("Code", "")
            modelled = self._service.shape_for_error_code(code)
            if modelled is not None:  # the error's own fields, as botocore adds them
                parsed.update(self._parser.parse(response, modelled))
        events.emit(f"after-call.{event}", model=model, context=context, parsed=parsed,
                    http_response=AWSResponse("/", status, response_headers, None))
        if status >= 300:
            raise self.exceptions.from_code(parsed["Error"]["Code"])(parsed, operation)
        return parsed


class DirectLambda:
    """The state machine's Lambda client: ``Invoke`` runs the function in this process.

    ``invoke`` is what moto's Lambda backend is replaced by (the local mode's
    :meth:`~fanout.local.functions.Functions.moto_invoke`); the answer is shaped as boto3
    gives it (``StatusCode``, ``FunctionError``, ``Payload`` as a stream).
    """

    def __init__(self, invoke: Callable[..., bytes]) -> None:
        self._invoke = invoke

    def invoke(self, *, FunctionName: str, Payload: Any = None,
               InvocationType: str = "RequestResponse", Qualifier: str | None = None,
               **_: Any) -> dict[str, Any]:
        body = Payload.encode() if isinstance(Payload, str) else (Payload or b"{}")
        response_headers: dict[str, str] = {}
        payload = self._invoke(FunctionName, Qualifier, body,
                               {"X-Amz-Invocation-Type": InvocationType}, response_headers)
        answer: dict[str, Any] = {
            "StatusCode": 202 if InvocationType == "Event" else 200,
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(io.BytesIO(payload), len(payload)),
        }
        if "x-amz-function-error" in response_headers:
            answer["FunctionError"] = response_headers["x-amz-function-error"]
        return answer


#: The calls a run makes per item, by service; the rest stay on the boto3 path.
HOT_OPERATIONS = {
    "dynamodb": ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query",
                 "TransactWriteItems"),
    "stepfunctions": ("SendTaskSuccess", "SendTaskFailure", "DescribeExecution"),
    "ecs": ("RunTask", "DescribeTasks", "StopTask"),
}


@contextmanager
def direct_clients(invoke: Callable[..., bytes], *, account: str,
                   region: str) -> Iterator[dict[str, DirectClient]]:
    """The handlers' clients and the state machine's Lambda client, direct, for the duration.

    Installed in the runtime's client registry (:mod:`fanout.aws.clients`), so the
    handlers are unchanged; the registry is emptied on the way in and out, so nothing of
    one run's emulation is left for the next.
    """
    import boto3
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from fanout.aws import clients
    from fanout.runtime import context

    made = {service: DirectClient(boto3.client(service, region_name=region),  # type: ignore[call-overload]
                                  operations, account=account, region=region)
            for service, operations in HOT_OPERATIONS.items()}
    lambda_client = DirectLambda(invoke)
    original = getattr(lambda_eval_utils, "boto_client_for")  # noqa: B009 (not exported)

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if service == "lambda":
            return lambda_client
        return original(region, service, state_credentials)

    context.reset()
    for service, client in made.items():
        clients.provide(service, client)
    # The handlers' own Lambda calls (Launch waking the dispatcher) go the same way.
    clients.provide("lambda", lambda_client)
    setattr(lambda_eval_utils, "boto_client_for", boto_client_for)  # noqa: B010
    try:
        yield made
    finally:
        setattr(lambda_eval_utils, "boto_client_for", original)  # noqa: B010
        context.reset()
