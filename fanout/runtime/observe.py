"""Powertools around every handler: structured logs, metrics, traces.

Logger and Metrics are cheap to create and are made at import. Tracer imports the X-Ray
SDK (a few hundred milliseconds), so it is created, and the handler wrapped with it, on
the first invocation; the handler modules themselves import nothing else at module level.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from fanout.metrics_names import NAMESPACE, SERVICE

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def count(name: str, value: int = 1) -> None:
    """Add to a metric of :mod:`fanout.metrics_names` (flushed when the invocation ends)."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def powertools(function: str) -> Callable[[Handler], Handler]:
    """Wrap a handler with Powertools' logger, metrics and (lazily) tracer decorators."""

    def decorate(fn: Handler) -> Handler:
        wrapped: list[Handler] = []

        @functools.wraps(fn)
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            if not wrapped:
                from aws_lambda_powertools import Tracer

                # The handlers' only traced library is botocore: patching just it spares the
                # first call the X-Ray SDK's attempts at a dozen others.
                tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
                logged = logger.inject_lambda_context(fn, log_event=False)
                measured = metrics.log_metrics(logged)
                wrapped.append(tracer.capture_lambda_handler(measured, capture_response=False))
                logger.append_keys(function=function)
            return wrapped[0](event, context)

        return handler

    return decorate
