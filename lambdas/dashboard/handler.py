"""The dashboard: API Gateway HTTP API events through the ``fanout ui`` app, behind sign-in.

The app (its runs cache, the JWKS) is built at the first request and lives as long as the
container.
"""

from __future__ import annotations

from typing import Any

from fanout.ui.deployed import app_from_env
from fanout.ui.lambda_adapter import handle

_app: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _app
    if _app is None:
        _app = app_from_env()
    return handle(_app, event)
