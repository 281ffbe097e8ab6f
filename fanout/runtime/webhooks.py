"""A run's ending posted to chat: Slack and Microsoft Teams incoming webhooks, or any
webhook that takes the notification's JSON.

Each webhook's URL is the value of a Secrets Manager secret (the URL is the credential:
whoever holds it may post to the channel), read when a message goes out. Nothing here
ever writes a URL or a secret's value to a log or an error: a failure names the webhook
by its kind and secret, and says what went wrong (HTTP status, timeout, refused). A
webhook that fails never fails the run's ending: the failure is logged and counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fanout.config import Webhook, WebhookKind

#: Seconds one post may take (Finalize runs for at most two minutes, for every webhook).
POST_TIMEOUT = 5.0
#: Failed items a chat message lists (the generic webhook gets the message's own list).
CHAT_LISTED = 10
#: Characters of a failed item's reason in a chat message.
REASON_CHARS = 200


class WebhookFailed(Exception):
    """A post that did not go through; its text never holds the URL."""


def text_of(message: Mapping[str, Any]) -> str:
    """The notification as a person reads it in chat: the ending, then the failed items
    with their reasons, then where to look."""
    totals = message.get("totals") or {}
    lines = [f"fanout run {message.get('run_id')} of job {message.get('job')}: "
             f"{message.get('status')}"]
    if totals:
        lines.append(f"{totals.get('succeeded', 0)} of {totals.get('total', 0)} items "
                     f"succeeded, {totals.get('failed', 0)} failed, "
                     f"{totals.get('timed_out', 0)} timed out, "
                     f"{totals.get('aborted', 0)} aborted")
    failed = list(message.get("failed_items") or [])
    for item in failed[:CHAT_LISTED]:
        params = ", ".join(f"{k}={v}" for k, v in (item.get("params") or {}).items())
        reason = str(item.get("reason") or item.get("status") or "")
        if len(reason) > REASON_CHARS:
            reason = reason[:REASON_CHARS] + "..."
        lines.append(f"- item {item.get('index')} ({params}) {item.get('status')}: {reason}")
    more = int(totals.get("failed", 0) or 0) + int(totals.get("timed_out", 0) or 0) \
        + int(totals.get("aborted", 0) or 0) - min(len(failed), CHAT_LISTED)
    if failed and more > 0:
        lines.append(f"and {more} more (fanout items {message.get('run_id')} --status FAILED)")
    link = message.get("console_url") or ""
    lines.append(f"Run: {link}" if link else
                 f"Run: fanout status {message.get('run_id')} --local")
    return "\n".join(lines)


def body_of(kind: WebhookKind, message: Mapping[str, Any]) -> dict[str, Any]:
    """What is posted to a webhook of ``kind``."""
    if kind == "generic":
        return dict(message)
    text = text_of(message)
    if kind == "slack":
        return {"text": text}
    # Teams: an Adaptive Card, what both Workflows webhooks and the older connectors take.
    link = message.get("console_url") or ""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4",
        "body": [{"type": "TextBlock", "text": line, "wrap": True,
                  **({"weight": "Bolder"} if n == 0 else {})}
                 for n, line in enumerate(text.splitlines())],
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the run", "url": link}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def kind_of_url(url: str) -> WebhookKind:
    """The kind of an incoming webhook by its host: Slack's, Teams' (connectors and
    Workflows), else generic."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host.endswith((".webhook.office.com", ".logic.azure.com", ".powerplatform.com")):
        return "teams"
    return "generic"


def post(url: str, body: Mapping[str, Any], timeout: float = POST_TIMEOUT) -> None:
    """POST ``body`` as JSON to ``url``; raises :class:`WebhookFailed` (never naming the URL)."""
    # Loaded on the first post only: most endings of most deployments post nothing.
    import urllib.error
    import urllib.request

    if not url.startswith(("https://", "http://")):
        raise WebhookFailed("its URL is not an http(s) URL")
    request = urllib.request.Request(
        url, data=json.dumps(body, default=str).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "fanout"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        raise WebhookFailed(f"answered HTTP {exc.code}") from None
    except TimeoutError:
        raise WebhookFailed(f"did not answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        why = "timed out" if isinstance(exc.reason, TimeoutError) else type(exc.reason).__name__
        raise WebhookFailed(f"could not be reached ({why})") from None
    except (OSError, ValueError) as exc:
        raise WebhookFailed(f"could not be posted to ({type(exc).__name__})") from None


def deliver(message: Mapping[str, Any], webhooks: Sequence[Webhook],
            url_of: Callable[[Webhook], str],
            send: Callable[[str, Mapping[str, Any]], None] = post) -> list[str]:
    """Post ``message`` to every webhook, each on its own; what failed, one line each
    (naming the webhook by its kind and secret, never its URL)."""
    failures = []
    for webhook in webhooks:
        try:
            send(url_of(webhook), body_of(webhook.kind, message))
        except WebhookFailed as exc:
            failures.append(f"{webhook.name}: {exc}")
        except Exception as exc:  # one webhook never stops the others
            failures.append(f"{webhook.name}: {type(exc).__name__}")
    return failures


def secret_url(secrets: Any, webhook: Webhook) -> str:
    """The webhook's URL from its Secrets Manager secret: the secret string, or its
    ``url`` key when it holds a JSON object."""
    try:
        value = str(secrets.get_secret_value(SecretId=webhook.secret).get("SecretString") or "")
    except Exception as exc:  # botocore: its error code, never the value
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        raise WebhookFailed(f"its secret could not be read ({code})") from None
    value = value.strip()
    if value.startswith("{"):
        try:
            value = str(json.loads(value).get("url") or "")
        except (ValueError, AttributeError):
            raise WebhookFailed("its secret is JSON without a \"url\" key") from None
    return value
