"""The dashboard's function: HTTP API events through the handler's app, over moto, with
tokens signed by a test key (docs/decisions/0019)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fanout.testing.dashboard import AUTH_URL, EmulatedStack, TestIssuer, http_event
from fanout.ui import lambda_adapter


def handle(app: Any, event: dict[str, Any]) -> Any:
    """The function's handler as Lambda calls it: on a thread with no event loop running (a
    browser test's Playwright, on the same pytest worker, keeps one running in the main
    thread, and a loop cannot run inside another)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda_adapter.handle, app, event).result()


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedStack]:
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield EmulatedStack(tmp_path)


def call(app: Any, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    cookies = [f"fanout_session={token}"] if token else None
    return handle(app, http_event(method, path, cookies=cookies, **kw))


def csrf(page: dict[str, Any]) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page["body"])
    assert found, page["body"][:500]
    return found.group(1)


def test_a_viewer_reads_and_cannot_stop_an_operator_can(stack: EmulatedStack,
                                                        issuer: TestIssuer) -> None:
    # Given a finished run of 12 items and a running one, and the function's app
    done = stack.add_run("analyzer-done", 12)
    running = stack.add_run("analyzer-live", 3, running=True)
    app = stack.app(issuer)
    viewer, operator = issuer.token(["viewers"]), issuer.token(["operators"], user="op@x.org")
    # When a viewer opens the runs page and the finished run's page
    runs = call(app, "GET", "/", viewer)
    page = call(app, "GET", f"/runs/{done}", viewer)
    # Then both are served, with every item's cell, the user and sign-out
    assert runs["statusCode"] == 200 and done in runs["body"] and running in runs["body"]
    assert page["statusCode"] == 200
    cells = re.findall(r'data-index="(\d+)" data-status="([A-Z_]+)"', page["body"])
    assert len(cells) == 12 and ("5", "FAILED") in cells
    assert "ana@example.com" in page["body"] and "/auth/logout" in page["body"]
    assert page["headers"]["cache-control"] == "no-store"
    assert 'id="rerun-all"' not in page["body"]  # no action is offered to a viewer
    # When the viewer posts stop with a valid CSRF token / Then 403, and nothing stops
    token = csrf(call(app, "GET", f"/runs/{running}", viewer))
    refused = call(app, "POST", f"/runs/{running}/stop", viewer, body=f"csrf_token={token}",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert refused["statusCode"] == 403 and "operators" in refused["body"]
    assert stack.execution_status(running) == "RUNNING"
    # When an operator posts stop without the CSRF token / Then 403 too
    bare = call(app, "POST", f"/runs/{running}/stop", operator,
                headers={"content-type": "application/x-www-form-urlencoded"})
    assert bare["statusCode"] == 403 and "CSRF" in bare["body"]
    # When the operator posts it with their page's token / Then the execution is stopped
    token = csrf(call(app, "GET", f"/runs/{running}", operator))
    stopped = call(app, "POST", f"/runs/{running}/stop", operator,
                   body=f"csrf_token={token}",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert stopped["statusCode"] == 303, stopped
    assert stack.execution_status(running) == "ABORTED"


def test_an_operator_starts_a_run_validated_against_the_deployed_jobs(
        stack: EmulatedStack, issuer: TestIssuer) -> None:
    app = stack.app(issuer)
    bearer = {"authorization": f"Bearer {issuer.token(['operators'])}",
              "content-type": "application/json"}
    # A viewer may preview a spec (it writes nothing)
    preview = handle(app, http_event("POST", "/api/expand", headers={
        "authorization": f"Bearer {issuer.token(['viewers'])}",
        "content-type": "application/json"},
        body=json.dumps({"spec": json.dumps({"job": "nope", "items": [{}]})})))
    assert preview["statusCode"] == 200 and json.loads(preview["body"])["problems"]
    # A spec of a job the stack does not have is refused, nothing started
    bad = handle(app, http_event("POST", "/api/runs", headers=bearer,
                                 body=json.dumps({"spec": {"job": "nope", "items": [{}]}})))
    assert bad["statusCode"] == 400
    assert stack.sfn.list_executions(stateMachineArn=stack.machine_arn)["executions"] == []
    # A good one starts an execution named by the run id
    good = handle(app, http_event("POST", "/api/runs", headers=bearer, body=json.dumps(
        {"spec": {"job": "analyzer", "params": {"year": {"range": {"start": 1, "stop": 3}}}}})))
    assert good["statusCode"] == 200, good
    run_id = json.loads(good["body"])["run_id"]
    assert stack.execution_status(run_id) == "RUNNING"


def test_a_stacks_pipeline_run_shows_its_steps_and_only_an_operator_reruns_it(
        stack: EmulatedStack, issuer: TestIssuer) -> None:
    # Given a pipeline run on the stack: prepare succeeded, years failed, report skipped
    stack.add_run("seed-1.years", 6)
    stack.add_pipeline_run("seed-1", {
        "prepare": {"status": "SUCCEEDED", "run_id": "seed-1.prepare"},
        "years": {"status": "FAILED", "run_id": "seed-1.years", "needs": ["prepare"]},
        "report": {"status": "SKIPPED", "reason": "years FAILED", "needs": ["years"]}})
    app = stack.app(issuer)
    viewer, operator = issuer.token(["viewers"]), issuer.token(["operators"])
    # When a viewer opens the pipelines page and the pipeline run
    listed = call(app, "GET", "/api/pipelines", viewer)
    page = call(app, "GET", "/pipelines/seed-1", viewer)
    # Then the run is listed with its steps' states, and its page links each step's run
    assert listed["statusCode"] == 200
    assert [r["pipeline_run_id"] for r in json.loads(listed["body"])] == ["seed-1"]
    view = json.loads(call(app, "GET", "/api/pipelines/seed-1", viewer)["body"])
    assert {n: s["status"] for n, s in view["steps"].items()} == {
        "prepare": "SUCCEEDED", "years": "FAILED", "report": "SKIPPED"}
    assert view["steps"]["report"]["reason"] == "years FAILED"
    assert page["statusCode"] == 200 and 'href="/runs/seed-1.years"' in page["body"]
    # And a viewer is offered no rerun, and is refused one (403)
    assert "Rerun failed steps" not in page["body"]
    form = {"content-type": "application/x-www-form-urlencoded"}
    refused = call(app, "POST", "/pipelines/seed-1/rerun", viewer, headers=form,
                   body=f"csrf_token={csrf(page)}&select=failed")
    assert refused["statusCode"] == 403 and "operators" in refused["body"]
    # When an operator reruns the failed steps
    mine = call(app, "GET", "/pipelines/seed-1", operator)
    assert "Rerun failed steps" in mine["body"]
    rerun = call(app, "POST", "/pipelines/seed-1/rerun", operator, headers=form,
                 body=f"csrf_token={csrf(mine)}&select=failed")
    # Then one execution of the pipeline state machine is started, a rerun of seed-1
    assert rerun["statusCode"] in (200, 303), rerun["body"][:300]
    executions = stack.sfn.list_executions(
        stateMachineArn=stack.pipeline_machine_arn)["executions"]
    assert len(executions) == 1 and executions[0]["name"].startswith("seed-")
    started = stack.sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(started["input"]) == {"rerun_of": "seed-1", "select": "failed",
                                            "trigger": "console"}


def test_a_stack_deployed_before_pipelines_says_its_pipeline_runs_are_not_listed(
        stack: EmulatedStack, issuer: TestIssuer) -> None:
    # Given the dashboard of a stack with no pipeline state machine
    app = stack.app(issuer, pipelines=False)
    viewer, operator = issuer.token(["viewers"]), issuer.token(["operators"])
    # When a viewer opens the pipelines page / Then it says so, and is no broken page
    page = call(app, "GET", "/pipelines", viewer)
    assert page["statusCode"] == 200
    assert "Pipeline runs are not listed here" in page["body"]
    assert call(app, "GET", "/api/pipelines", viewer)["statusCode"] == 404
    # When an operator posts a rerun / Then 404: there is no such pipeline run here
    form = {"content-type": "application/x-www-form-urlencoded"}
    mine = csrf(call(app, "GET", "/pipelines", operator))
    missing = call(app, "POST", "/pipelines/p-1/rerun", operator, headers=form,
                   body=f"csrf_token={mine}&select=failed")
    assert missing["statusCode"] == 404 and "not listed here" in missing["body"]


@pytest.mark.parametrize("case", ["none", "expired", "forged", "audience"])
def test_a_missing_expired_or_forged_token_is_refused(stack: EmulatedStack, issuer: TestIssuer,
                                                      case: str) -> None:
    stack.add_run("analyzer-done", 2)
    app = stack.app(issuer)
    token = {"none": None, "expired": issuer.token(["operators"], expires_in=-3600),
             "forged": TestIssuer(kid=issuer.kid).token(["operators"]),
             "audience": issuer.token(["operators"], aud="another-client")}[case]
    # A page is sent to sign-in (and back), the API answers 401, a write never acts
    page = call(app, "GET", "/runs/analyzer-done", token)
    assert page["statusCode"] == 302
    assert page["headers"]["location"] == "/auth/login?next=%2Fruns%2Fanalyzer-done"
    assert call(app, "GET", "/api/runs", token)["statusCode"] == 401
    assert call(app, "POST", "/api/runs/analyzer-done/rerun", token)["statusCode"] == 401


def test_a_user_in_no_group_and_a_foreign_host_are_refused(stack: EmulatedStack,
                                                          issuer: TestIssuer) -> None:
    app = stack.app(issuer)
    assert call(app, "GET", "/", issuer.token([]))["statusCode"] == 403
    assert call(app, "GET", "/", issuer.token(["viewers"]),
                host="evil.example.com")["statusCode"] == 403


def test_sign_in_exchanges_the_code_and_sign_out_clears_the_session(
        stack: EmulatedStack, issuer: TestIssuer) -> None:
    posted: list[tuple[str, dict[str, list[str]]]] = []

    def token_endpoint(url: str, body: bytes) -> bytes:
        posted.append((url, parse_qs(body.decode())))
        return json.dumps({"id_token": issuer.token(["viewers"]), "token_type": "Bearer"}).encode()

    app = stack.app(issuer, post=token_endpoint)
    # When the browser opens /auth/login, it goes to the hosted sign-in with PKCE
    login = call(app, "GET", "/auth/login", query="next=%2Fruns%2Fx")
    to = urlsplit(login["headers"]["location"])
    asked = parse_qs(to.query)
    assert f"{to.scheme}://{to.netloc}{to.path}" == f"{AUTH_URL}/oauth2/authorize"
    assert asked["code_challenge_method"] == ["S256"] and asked["response_type"] == ["code"]
    memo = login["cookies"][0].split(";")[0]
    assert "HttpOnly" in login["cookies"][0] and "Secure" in login["cookies"][0]
    # When the provider sends it back with the code and the same state
    back = handle(app, http_event("GET", "/auth/callback", cookies=[memo],
                                  query=f"code=abc&state={asked['state'][0]}"))
    # Then the code was exchanged with the verifier, the session set, back to where it was
    assert back["statusCode"] == 302 and back["headers"]["location"] == "/runs/x"
    assert posted[0][0] == f"{AUTH_URL}/oauth2/token" and posted[0][1]["code"] == ["abc"]
    assert posted[0][1]["code_verifier"][0]
    session = next(c for c in back["cookies"] if c.startswith("fanout_session="))
    assert "Max-Age=" in session and "SameSite=Lax" in session
    # And a callback with another state is refused
    other = handle(app, http_event("GET", "/auth/callback", cookies=[memo],
                                   query="code=abc&state=forged"))
    assert other["statusCode"] == 400
    # When signing out, the cookie is cleared and the provider's session ended
    out = call(app, "GET", "/auth/logout")
    assert out["headers"]["location"].startswith(f"{AUTH_URL}/logout?client_id=")
    assert any(c.startswith("fanout_session=;") and "Max-Age=0" in c for c in out["cookies"])


def test_an_items_page_links_each_attempt_to_its_log_stream_in_cloudwatch(
        stack: EmulatedStack, issuer: TestIssuer) -> None:
    # Given a finished run whose item 3 ran twice (its first attempt failed)
    run = stack.add_run("analyzer-logs", 4)
    app = stack.app(issuer)
    # When a viewer opens the item's page
    page = call(app, "GET", f"/runs/{run}/items/3", issuer.token(["viewers"]))
    # Then each attempt links to its stream of the job's log group, in the task's region,
    # the names escaped for the console's fragment and the URL for HTML
    assert page["statusCode"] == 200, page
    links = re.findall(r'<a class="logs-console" href="([^"]+)"', page["body"])
    console = ("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
               "#logsV2:log-groups/log-group/$252Ffanout$252Fanalyzer/log-events/")
    assert links == [f"{console}fanout$252Fanalyzer$252F000003{n}" for n in (1, 2)]
    # And the item's JSON carries the same links, for scripts
    detail = json.loads(call(app, "GET", f"/api/runs/{run}/items/3",
                             issuer.token(["viewers"]))["body"])
    assert [a["logs_url"] for a in detail["attempts"]] == links


def test_a_warm_run_page_reads_the_run_record_once(stack: EmulatedStack,
                                                   issuer: TestIssuer) -> None:
    # Given a finished run of 6 items, its page served once by the container
    run = stack.add_run("analyzer-reads", 6)
    calls: list[str] = []
    stack.session.events.register("before-call.dynamodb",
                                  lambda model, **_: calls.append(model.name))
    app = stack.app(issuer)
    viewer = issuer.token(["viewers"])
    assert call(app, "GET", f"/runs/{run}", viewer)["statusCode"] == 200
    # When the page is asked again, and one of its items' pages
    calls.clear()
    page = call(app, "GET", f"/runs/{run}", viewer)
    on_page = list(calls)
    calls.clear()
    item = call(app, "GET", f"/runs/{run}/items/3", viewer)
    # Then each is served with one read of the store: the run's record (whether its items
    # changed), not a second one for the items' cache
    assert page["statusCode"] == 200 and item["statusCode"] == 200
    assert len(on_page) == 1 and len(calls) == 1, (on_page, calls)


def test_a_running_runs_page_shows_its_items_as_they_settle(stack: EmulatedStack,
                                                            issuer: TestIssuer) -> None:
    # Given a running run of 3 items, its page served once by the container
    run = stack.add_run("analyzer-live", 3, running=True)
    app = stack.app(issuer)
    viewer = issuer.token(["viewers"])

    def cells() -> list[tuple[str, str]]:
        page = call(app, "GET", f"/runs/{run}", viewer)
        return re.findall(r'data-index="(\d+)" data-status="([A-Z_]+)"', page["body"])

    assert cells() == [("0", "RUNNING"), ("1", "RUNNING"), ("2", "RUNNING")]
    # When item 1 succeeds (its record and the run's counts, as the control plane writes)
    assert stack.store().settle_item(run, 1, "SUCCEEDED", "exit code 0")
    # Then the same container's next page shows it, not the items it read before
    assert cells() == [("0", "RUNNING"), ("1", "SUCCEEDED"), ("2", "RUNNING")]


def test_an_item_of_a_run_too_big_to_read_item_by_item_shows_its_attempts(
        stack: EmulatedStack, issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a run bigger than the items a source is read one by one for (4 > 2 here)
    from fanout.ui import cached

    monkeypatch.setattr(cached, "REMOTE_DETAILS", 2)
    run = stack.add_run("analyzer-big", 4)
    app = stack.app(issuer)
    viewer = issuer.token(["viewers"])
    assert call(app, "GET", f"/runs/{run}", viewer)["statusCode"] == 200
    # When an item that ran twice is opened / Then both its attempts are listed
    detail = json.loads(call(app, "GET", f"/api/runs/{run}/items/3", viewer)["body"])
    assert [a["attempt"] for a in detail["attempts"]] == [1, 2]
