"""What keeps the dashboard to its user: Host check, access token, CSRF token.

- Every request whose ``Host`` is not the address the server is bound to is refused, so a
  page on another site cannot reach it through DNS rebinding.
- A server bound beyond loopback (``--host``) requires an access token, printed on start,
  on every request (``?token=`` once, then a cookie), as Jupyter does.
- Every state-changing request is a POST carrying the per-server CSRF token (the
  ``X-CSRF-Token`` header or a ``csrf_token`` form field); without it, 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TOKEN_COOKIE = "fanout_ui_token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    """The server's secrets and the addresses it answers to."""

    host: str
    port: int
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: Required on every request when the server is bound beyond loopback.
    access_token: str | None = None

    @classmethod
    def for_address(cls, host: str, port: int) -> Guard:
        token = None if is_loopback(host) else secrets.token_urlsafe(32)
        return cls(host=host, port=port, access_token=token)

    def allowed_hosts(self) -> set[str]:
        names = {self.host}
        if is_loopback(self.host):
            names |= {"127.0.0.1", "localhost", "[::1]"}
        elif ":" in self.host and not self.host.startswith("["):
            names = {f"[{self.host}]"}
        return {f"{name}:{self.port}" for name in names} | (
            names if self.port == 80 else set())

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token.encode())

    def csrf_for(self, scope: Scope) -> str:
        """The CSRF token the pages of this request carry (the server's, here)."""
        return self.csrf_token

    def csrf_ok_for(self, scope: Scope, given: str | None) -> bool:
        return self.csrf_ok(given)

    def access_ok(self, given: str | None) -> bool:
        if self.access_token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(),
                                                         self.access_token.encode())


class GuardMiddleware:
    """Refuses a foreign ``Host`` and, when one is required, a missing access token."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = await http_headers(self.app, scope, receive, send,
                                     self.guard.allowed_hosts(), _refuse)
        if headers is None:
            return
        set_cookie = False
        if self.guard.access_token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [None])[0]
            if given is not None and self.guard.access_ok(given):
                set_cookie = True
            else:
                cookie = SimpleCookie(headers.get("cookie", ""))
                morsel = cookie.get(TOKEN_COOKIE)
                auth = headers.get("authorization", "")
                bearer = auth[6:].strip() if auth.lower().startswith("token ") else None
                if not (self.guard.access_ok(morsel.value if morsel else None)
                        or self.guard.access_ok(bearer)):
                    await _refuse(send, 403, "refused: open the address printed on start "
                                             "(it carries the access token)")
                    return
        if not set_cookie:
            await self.app(scope, receive, send)
            return
        token = self.guard.access_token or ""

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", value.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


#: What a request naming another Host is told (DNS rebinding: the local app, the deployed one).
WRONG_HOST = "refused: this server answers only to its own address"


def checked_headers(scope: Scope, allowed_hosts: set[str]) -> dict[str, str] | None:
    """The request's headers (names lower-cased), or None when its Host is not allowed."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers", [])}
    return headers if headers.get("host", "") in allowed_hosts else None


#: How a middleware answers a request it refuses: (send, status, text).
Refuse = Callable[[Send, int, str], Awaitable[None]]


async def http_headers(app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                       allowed_hosts: set[str], refuse: Refuse) -> dict[str, str] | None:
    """The headers of an HTTP request whose Host is allowed; None once the request is
    answered here: anything not HTTP passed to ``app``, a foreign Host refused with 403."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return None
    headers = checked_headers(scope, allowed_hosts)
    if headers is None:
        await refuse(send, 403, WRONG_HOST)
    return headers


async def _refuse(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
