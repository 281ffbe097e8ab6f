"""An ASGI app behind API Gateway's HTTP API (payload format 2.0), in one Lambda function.

One event is one ASGI ``http`` request: ``rawPath`` and ``rawQueryString`` as sent, headers
lowercased, the ``cookies`` list joined back into one ``Cookie`` header, a base64 body
decoded. The app's response becomes the 2.0 result: ``Set-Cookie`` headers go to
``cookies`` (API Gateway would fold them otherwise), text bodies stay text, anything else
is base64. No lifespan: the app needs none. (docs/decisions/0019)
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]

#: Content types returned as text (anything else is base64).
TEXT_TYPES = ("text/", "application/json", "application/javascript", "image/svg+xml",
              "application/xml")

_loop: asyncio.AbstractEventLoop | None = None


def scope_of(event: dict[str, Any]) -> dict[str, Any]:
    """The ASGI scope of an HTTP API 2.0 event."""
    http = event.get("requestContext", {}).get("http", {})
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    cookies = event.get("cookies") or []
    if cookies:
        headers["cookie"] = "; ".join(str(c) for c in cookies)
    host = headers.get("host") or event.get("requestContext", {}).get("domainName", "")
    headers.setdefault("host", host)
    path = str(event.get("rawPath") or http.get("path") or "/")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": str(http.get("method", "GET")).upper(),
        "scheme": headers.get("x-forwarded-proto", "https"),
        "path": _unquote(path),
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": str(event.get("rawQueryString") or "").encode("latin-1", "replace"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1", "replace"))
                    for k, v in headers.items()],
        "server": (host.split(":")[0], 443),
        "client": (str(http.get("sourceIp", "")), 0),
    }


def body_of(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode("utf-8")


async def call(app: ASGIApp, scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    """Run ``app`` on one request; the response as ``status``, ``headers`` and ``body``."""
    sent = False
    response: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response["status"] = int(message["status"])
            response["headers"] = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    response["body"] = b"".join(chunks)
    return response


def result_of(response: dict[str, Any]) -> dict[str, Any]:
    """The HTTP API 2.0 result of a response from :func:`call`."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in response["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "set-cookie":
            cookies.append(value)
        elif name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    body: bytes = response["body"]
    kind = headers.get("content-type", "")
    text = kind.startswith(TEXT_TYPES)
    result: dict[str, Any] = {
        "statusCode": response["status"],
        "headers": headers,
        "body": body.decode("utf-8") if text else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": not text,
    }
    if cookies:
        result["cookies"] = cookies
    return result


def handle(app: ASGIApp, event: dict[str, Any]) -> dict[str, Any]:
    """One HTTP API event through ``app``, on the container's one event loop."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    response = _loop.run_until_complete(call(app, scope_of(event), body_of(event)))
    return result_of(response)


def _unquote(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path)
