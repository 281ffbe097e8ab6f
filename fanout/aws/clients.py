"""boto3 clients made on first use (never at import), one per service, resettable for tests.

boto3 honours ``AWS_ENDPOINT_URL``, which is how the local mode points them at moto.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    with _lock:
        if service not in _clients:
            import boto3

            _clients[service] = boto3.client(service)  # type: ignore[call-overload]
        return _clients[service]


def provide(service: str, made: Any) -> None:
    """Use ``made`` as the client for ``service`` (the local mode's direct clients)."""
    with _lock:
        _clients[service] = made


def reset_clients() -> None:
    """Forget every cached client (:func:`fanout.runtime.context.reset` calls this)."""
    with _lock:
        _clients.clear()
