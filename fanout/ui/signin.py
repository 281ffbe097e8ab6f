"""Sign-in and roles for the deployed dashboard (docs/decisions/0019).

:class:`SigninMiddleware` sits in front of the app. ``/auth/login`` sends the browser to the
identity provider's authorize page (authorization code with PKCE), ``/auth/callback``
exchanges the code for an ID token and keeps it in the session cookie, ``/auth/logout``
clears it and signs out at the provider. Every other request but ``/static/`` needs a
verified ID token (the cookie, or ``Authorization: Bearer`` for scripts) of a user in the
``viewers`` or ``operators`` group; every POST but the spec preview needs ``operators``.
:class:`SessionGuard` gives the app a CSRF token derived from the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from fanout.ui.security import (
    ASGIApp,
    Guard,
    Message,
    Receive,
    Scope,
    Send,
    http_headers,
)
from fanout.ui.tokens import TokenError, Verifier, b64url

SESSION_COOKIE = "fanout_session"
SIGNIN_COOKIE = "fanout_signin"
VIEWERS = "viewers"
OPERATORS = "operators"
#: Where the signed-in user is put in the ASGI scope (the pages show it).
USER_KEY = "fanout.user"
#: POSTs that write nothing: viewers may use them (the start page's preview).
READING_POSTS = frozenset({"/api/expand"})
#: Headers on every response of the deployed app.
SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
    (b"strict-transport-security", b"max-age=31536000"),
]


@dataclass(frozen=True)
class User:
    """A signed-in user, from a verified ID token."""

    name: str
    groups: frozenset[str]
    token: str
    expires: float
    #: Came as ``Authorization: Bearer`` (no cookie, so no CSRF to fear).
    bearer: bool = False

    @property
    def operator(self) -> bool:
        return OPERATORS in self.groups


@dataclass(frozen=True)
class Provider:
    """The identity provider's endpoints and this app's client."""

    issuer: str
    client_id: str
    #: The hosted sign-in's base URL (Cognito: https://PREFIX.auth.REGION.amazoncognito.com).
    auth_url: str
    #: The dashboard's own address (https://API.execute-api.REGION.amazonaws.com).
    base_url: str
    groups_claim: str = "cognito:groups"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def callback_url(self) -> str:
        return f"{self.base_url}/auth/callback"


def csrf_of(token: str) -> str:
    """The session's CSRF token: only a holder of the session cookie can compute it."""
    return b64url(hashlib.sha256(b"fanout-csrf\0" + token.encode()).digest())


@dataclass
class SessionGuard(Guard):
    """The app's Guard when deployed: the one Host of the API, a CSRF token per session."""

    def allowed_hosts(self) -> set[str]:
        return {self.host}

    def csrf_for(self, scope: Scope) -> str:
        user = scope.get(USER_KEY)
        return csrf_of(user.token) if isinstance(user, User) else ""

    def csrf_ok_for(self, scope: Scope, given: str | None) -> bool:
        user = scope.get(USER_KEY)
        if not isinstance(user, User):
            return False
        if user.bearer:
            return True
        return given is not None and hmac.compare_digest(given.encode(),
                                                         csrf_of(user.token).encode())


def _https_post(url: str, body: bytes) -> bytes:
    from urllib.request import Request, urlopen

    if not url.startswith("https://"):
        raise OSError("the token endpoint must be https://")
    request = Request(url, data=body, method="POST",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    with urlopen(request, timeout=10) as response:
        answer: bytes = response.read(1_000_000)
        return answer


@dataclass
class SigninMiddleware:
    app: ASGIApp
    guard: Guard
    provider: Provider
    verifier: Verifier
    #: POSTs a form to the token endpoint (tests give a fake provider).
    post: Callable[[str, bytes], bytes] = _https_post
    secure: bool = field(init=False)

    def __post_init__(self) -> None:
        self.secure = self.provider.base_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = await http_headers(self.app, scope, receive, send,
                                     self.guard.allowed_hosts(), respond)
        if headers is None:
            return
        path: str = scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if path == "/auth/login":
            await self.login(send, _first(query, "next"))
        elif path == "/auth/callback":
            await self.callback(send, headers, query)
        elif path == "/auth/logout":
            await self.logout(send)
        elif path.startswith("/static/"):
            await self.app(scope, receive, _with_headers(send, []))
        else:
            await self.signed_in(scope, receive, send, headers)

    async def signed_in(self, scope: Scope, receive: Receive, send: Send,
                        headers: dict[str, str]) -> None:
        path, method = scope["path"], scope["method"]
        user, why = self.user(headers)
        if user is None:
            if method in ("GET", "HEAD") and not path.startswith("/api/"):
                target = path + ("?" + scope["query_string"].decode("latin-1")
                                 if scope.get("query_string") else "")
                await redirect(send, f"/auth/login?next={quote(target, safe='')}")
            else:
                await respond(send, 401, f"sign in first ({why})")
            return
        if not user.groups & {VIEWERS, OPERATORS}:
            await respond(send, 403, f"{user.name} is in neither group {VIEWERS} nor "
                                     f"{OPERATORS}; ask an administrator to add you")
            return
        if method not in ("GET", "HEAD") and path not in READING_POSTS and not user.operator:
            await respond(send, 403, f"only {OPERATORS} may start, stop or rerun runs")
            return
        scope[USER_KEY] = user
        await self.app(scope, receive, _with_headers(send, []))

    def user(self, headers: dict[str, str]) -> tuple[User | None, str]:
        """The request's user, or None and why not."""
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        token = bearer
        if token is None:
            morsel = SimpleCookie(headers.get("cookie", "")).get(SESSION_COOKIE)
            token = morsel.value if morsel else None
        if not token:
            return None, "no session"
        try:
            claims = self.verifier.verify(token)
        except TokenError as exc:
            return None, str(exc)
        groups = claims.get(self.provider.groups_claim) or []
        name = claims.get("email") or claims.get("cognito:username") or claims.get("sub")
        return User(name=str(name), groups=frozenset(str(g) for g in groups
                                                     if isinstance(groups, list)),
                    token=token, expires=float(claims["exp"]), bearer=bearer is not None), ""

    async def login(self, send: Send, after: str | None) -> None:
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        target = after if after and after.startswith("/") and not after.startswith("//") \
            else "/"
        memo = b64url(json.dumps({"state": state, "verifier": verifier,
                                  "next": target}).encode())
        url = f"{self.provider.auth_url}/oauth2/authorize?" + urlencode({
            "response_type": "code", "client_id": self.provider.client_id,
            "redirect_uri": self.provider.callback_url, "scope": "openid email profile",
            "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
        await redirect(send, url, [self.cookie(SIGNIN_COOKIE, memo, 600)])

    async def callback(self, send: Send, headers: dict[str, str],
                       query: dict[str, list[str]]) -> None:
        morsel = SimpleCookie(headers.get("cookie", "")).get(SIGNIN_COOKIE)
        try:
            memo = json.loads(base64.urlsafe_b64decode(
                (morsel.value if morsel else "") + "==="))
        except ValueError:
            memo = None
        state, code = _first(query, "state"), _first(query, "code")
        if not isinstance(memo, dict) or not state or not code or \
                not hmac.compare_digest(str(memo.get("state")), state):
            await respond(send, 400, "sign-in failed (no or a stale sign-in state); "
                                     "open the dashboard's address again")
            return
        form = urlencode({"grant_type": "authorization_code",
                          "client_id": self.provider.client_id, "code": code,
                          "redirect_uri": self.provider.callback_url,
                          "code_verifier": str(memo.get("verifier"))}).encode()
        try:
            answer = json.loads(self.post(f"{self.provider.auth_url}/oauth2/token", form))
            token = str(answer["id_token"])
            claims = self.verifier.verify(token)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            why = str(exc) if isinstance(exc, TokenError) else "the code was not accepted"
            await respond(send, 400, f"sign-in failed ({why}); open the dashboard again")
            return
        max_age = max(int(float(claims["exp"]) - self.verifier.clock()), 0)
        await redirect(send, str(memo.get("next") or "/"), [
            self.cookie(SESSION_COOKIE, token, max_age), self.cookie(SIGNIN_COOKIE, "", 0)])

    async def logout(self, send: Send) -> None:
        url = f"{self.provider.auth_url}/logout?" + urlencode(
            {"client_id": self.provider.client_id, "logout_uri": self.provider.base_url + "/"})
        await redirect(send, url, [self.cookie(SESSION_COOKIE, "", 0),
                                   self.cookie(SIGNIN_COOKIE, "", 0)])

    def cookie(self, name: str, value: str, max_age: int) -> str:
        secure = "; Secure" if self.secure else ""
        return f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS, *extra]
        await send(message)
    return sending


async def redirect(send: Send, location: str, cookies: list[str] | None = None) -> None:
    headers = [(b"location", location.encode("latin-1", "replace")),
               (b"content-length", b"0"), *SECURITY_HEADERS]
    headers += [(b"set-cookie", c.encode("latin-1")) for c in cookies or []]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def respond(send: Send, status: int, text: str) -> None:
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def host_of(url: str) -> str:
    """The ``Host`` a browser sends for ``url``."""
    return urlsplit(url).netloc

