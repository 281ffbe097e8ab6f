"""The deployed dashboard in Chromium: the function's app served on loopback through the
same HTTP API adapter as on Lambda, over moto, signed in with tokens of a test key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from fanout.testing.dashboard import AUTH_URL, EmulatedStack, TestIssuer, http_event
from fanout.ui.lambda_adapter import handle


class Deployed:
    """The function's app behind a loopback HTTP server that makes HTTP API events."""

    def __init__(self, stack: EmulatedStack, issuer: TestIssuer) -> None:
        app_ref: list[Any] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer("GET")

            def do_POST(self) -> None:
                self.answer("POST")

            def answer(self, method: str) -> None:
                path, _, query = self.path.partition("?")
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size).decode() if size else None
                headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "cookie"}
                cookies = [c.strip() for c in (self.headers.get("cookie") or "").split(";")
                           if c.strip()]
                result = handle(app_ref[0], http_event(
                    method, path, host=headers.pop("host"), query=query, headers=headers,
                    cookies=cookies or None, body=body))
                self.send_response(result["statusCode"])
                for name, value in result["headers"].items():
                    self.send_header(name, value)
                for cookie in result.get("cookies", []):
                    self.send_header("set-cookie", cookie)
                import base64

                raw = base64.b64decode(result["body"]) if result["isBase64Encoded"] \
                    else result["body"].encode()
                if "content-length" not in result["headers"]:
                    self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_: Any) -> None:
                pass

        # One thread serves (the adapter keeps one event loop, as one Lambda container does)
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        app_ref.append(stack.app(issuer, url=self.url))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        stack = EmulatedStack(tmp_path)
        issuer = TestIssuer()
        server = Deployed(stack, issuer)
        try:
            yield stack, issuer, server
        finally:
            server.close()


def signed_in(browser: Any, url: str, token: str) -> Any:
    context = browser.new_context()
    context.add_cookies([{"name": "fanout_session", "value": token, "url": url}])
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def test_a_viewer_cannot_stop_a_run_an_operator_can(browser: Any, deployed: Any) -> None:
    stack, issuer, server = deployed
    run_id = stack.add_run("analyzer-live", 4, running=True)
    # Given a viewer on the running run's page
    viewer = signed_in(browser, server.url, issuer.token(["viewers"]))
    viewer.goto(f"{server.url}/runs/{run_id}")
    assert viewer.locator(".who").get_attribute("data-role") == "viewer"
    assert len(viewer.locator("#grid a[data-index]").all()) == 4
    # Then no Stop is offered to them
    assert viewer.locator("#stop").count() == 0
    # When their page posts the stop anyway, with its CSRF token / Then the server refuses
    # it (403) and the run goes on
    status = viewer.evaluate("""async (url) => {
        const token = document.querySelector('meta[name=csrf-token]').content;
        const r = await fetch(url, {method: 'POST', headers: {'X-CSRF-Token': token}});
        return r.status; }""", f"/runs/{run_id}/stop")
    assert status == 403
    assert stack.execution_status(run_id) == "RUNNING"
    # Given an operator on the same page, When they press Stop
    operator = signed_in(browser, server.url, issuer.token(["operators"], user="op@x.org"))
    operator.goto(f"{server.url}/runs/{run_id}")
    with operator.expect_response(f"**/runs/{run_id}/stop") as accepted:
        operator.click("#stop")
    # Then it is accepted (back to the run's page) and the execution is stopped
    assert accepted.value.status == 303
    operator.wait_for_url(f"{server.url}/runs/{run_id}")
    assert stack.execution_status(run_id) == "ABORTED"
    viewer.context.close()
    operator.context.close()


def test_an_expired_or_forged_session_is_sent_to_sign_in(browser: Any, deployed: Any) -> None:
    stack, issuer, server = deployed
    stack.add_run("analyzer-done", 3)
    for token in (issuer.token(["operators"], expires_in=-3600),
                  TestIssuer(kid=issuer.kid).token(["operators"])):
        page = signed_in(browser, server.url, token)
        # (The hosted sign-in is not reachable here: follow the redirects one by one, with
        # the browser's cookies.)
        first = page.request.get(f"{server.url}/runs/analyzer-done", max_redirects=0)
        assert first.status == 302
        assert first.headers["location"] == "/auth/login?next=%2Fruns%2Fanalyzer-done"
        login = page.request.get(server.url + first.headers["location"], max_redirects=0)
        assert login.headers["location"].startswith(f"{AUTH_URL}/oauth2/authorize?")
        # And the API refuses it outright
        assert page.request.get(f"{server.url}/api/runs").status == 401
        page.context.close()
