"""Outbound messages: Slack incoming webhooks, JSON webhooks, and the Statuspage API.

Each call is one HTTP request with a timeout; an answer outside 2xx, or none at all, is
a `DeliveryError` whose message says what the server answered and never the URL or a
token (webhook URLs are credentials). A URL the operator's RUNBOOK_ALLOWED_URLS does not
allow is `NotAllowed` (a DeliveryError naming only its scheme, host and port), unsent.

Request shapes, as the services document them:
- Slack: `POST <webhook URL>`, `Content-Type: application/json`, `{"text": …, "blocks": …}`;
  Slack answers 200 `ok`, or an error word (`invalid_payload`, `no_service`, …).
- Statuspage: `POST {base}/pages/{page_id}/incidents` with
  `{"incident": {"name", "status", "body", "impact_override", "component_ids"}}` and
  `Authorization: OAuth <key>`, answered 201 with the incident (its `id`);
  `PATCH {base}/pages/{page_id}/incidents/{id}` with `{"incident": {"status", "body"}}`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .urls import URLNotAllowed, open_checked

__all__ = ["TRANSPORT", "DeliveryError", "open_incident", "post_json", "slack", "update_incident"]

USER_AGENT = "runbook-operator"


class DeliveryError(Exception):
    """The message was not accepted; the text is safe to show."""


class NotAllowed(DeliveryError, URLNotAllowed):
    """The operator's allow-list (RUNBOOK_ALLOWED_URLS) refuses the URL; nothing was sent."""


def _request(
    url: str, method: str, body: Any, headers: dict[str, str], timeout: float, what: str
) -> bytes:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", USER_AGENT)
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with open_checked(request, timeout, NotAllowed, what) as response:
            return bytes(response.read(65536))
    except urllib.error.HTTPError as exc:
        answer = exc.read(200).decode(errors="replace").strip()
        said = f" ({answer})" if answer and len(answer) < 120 and "\n" not in answer else ""
        raise DeliveryError(f"{what} answered HTTP {exc.code}{said}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{what} cannot be reached ({reason})") from None
    except NotAllowed:
        raise
    except ValueError:
        raise DeliveryError(f"{what}: the URL is not a valid http(s) URL") from None


def _checked(url: str, what: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise DeliveryError(f"{what}: the URL is not http(s)")
    return url.strip()


def slack(url: str, text: str, timeout: float) -> None:
    """Post `text` to a Slack incoming webhook."""
    body = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
    _request(_checked(url, "Slack"), "POST", body, {}, timeout, "Slack")


def post_json(url: str, document: dict[str, Any], timeout: float) -> None:
    """POST a JSON document to a generic webhook."""
    _request(_checked(url, "the webhook"), "POST", document, {}, timeout, "the webhook")


def _statuspage(base: str, key: str) -> tuple[str, dict[str, str]]:
    return base.rstrip("/"), {"Authorization": f"OAuth {key}"}


def open_incident(
    base: str,
    page_id: str,
    key: str,
    *,
    name: str,
    body: str,
    impact: str,
    component_ids: list[str],
    timeout: float,
) -> str:
    """Open an incident (status investigating); its id."""
    root, headers = _statuspage(_checked(base, "Statuspage"), key)
    incident: dict[str, Any] = {
        "name": name,
        "status": "investigating",
        "body": body,
        "impact_override": impact,
    }
    if component_ids:
        incident["component_ids"] = component_ids
    raw = _request(
        f"{root}/pages/{page_id}/incidents",
        "POST",
        {"incident": incident},
        headers,
        timeout,
        "Statuspage",
    )
    try:
        return str(json.loads(raw)["id"])
    except (ValueError, KeyError, TypeError):
        raise DeliveryError("Statuspage answered without an incident id") from None


def update_incident(
    base: str, page_id: str, key: str, incident_id: str, *, status: str, body: str, timeout: float
) -> None:
    """Add an update to an incident; status `resolved` closes it."""
    root, headers = _statuspage(_checked(base, "Statuspage"), key)
    _request(
        f"{root}/pages/{page_id}/incidents/{incident_id}",
        "PATCH",
        {"incident": {"status": status, "body": body}},
        headers,
        timeout,
        "Statuspage",
    )


class _Transport:
    """The functions above, as one object (core.notifying's Transport)."""

    slack = staticmethod(slack)
    post_json = staticmethod(post_json)
    open_incident = staticmethod(open_incident)
    update_incident = staticmethod(update_incident)


TRANSPORT = _Transport()
