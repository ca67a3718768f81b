"""Slack and Statuspage on loopback: real HTTP servers that answer as the services do.

The one place a local stand-in for a SaaS API is right (nothing may leave 127.0.0.1). Each
checks the documented request shape and answers as the service does, recording what it
accepted:

- Slack incoming webhooks (api.slack.com/messaging/webhooks): `POST /services/T…/B…/…`
  with `Content-Type: application/json` and a JSON object whose `text` (or `blocks`) is
  set; `200 ok`, else `400 invalid_payload`, `404 no_service` for an unknown hook, and
  `500 rollup_error` when told to fail.
- Statuspage (developer.statuspage.io, Incidents): `POST /v1/pages/{page_id}/incidents`
  and `PATCH /v1/pages/{page_id}/incidents/{incident_id}` with
  `Authorization: OAuth <api key>` and `{"incident": {"name", "status", "body", …}}`;
  `201`/`200` with the incident as JSON (its `id`), `401` without the key, `404` for
  another page or an unknown incident, `422` for an unknown status.

`fail_next(n)` makes the next n requests answer 500, for the retry tests.
"""

from __future__ import annotations

import http.server
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["Received", "Receiver", "receivers"]

STATUSES = {"investigating", "identified", "monitoring", "resolved"}
SLACK_PATH = re.compile(r"^/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+$")
INCIDENTS = re.compile(r"^/v1/pages/(?P<page>[a-z0-9]+)/incidents(?:/(?P<id>[a-z0-9]+))?$")


@dataclass
class Received:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class Receiver:
    """What the servers accepted, and how they should answer next."""

    url: str = ""
    slack_hook: str = ""
    """The path of the one Slack webhook that exists (its URL is a secret)."""
    page_id: str = ""
    api_key: str = ""
    slack: list[Received] = field(default_factory=list)
    statuspage: list[Received] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def slack_url(self) -> str:
        return self.url + self.slack_hook

    @property
    def statuspage_base(self) -> str:
        return self.url + "/v1"

    def fail_next(self, n: int) -> None:
        with self.lock:
            self.failures = n

    def texts(self) -> list[str]:
        with self.lock:
            return [str(r.body["text"]) for r in self.slack]


class _Handler(http.server.BaseHTTPRequestHandler):
    state: Receiver

    def _answer(self, code: int, body: Any) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        kind = "text/plain" if isinstance(body, str) else "application/json"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if code >= 400:
            self.state.refused.append((code, self.path))

    def _body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _failing(self) -> bool:
        with self.state.lock:
            if self.state.failures > 0:
                self.state.failures -= 1
                return True
        return False

    def do_POST(self) -> None:
        body = self._body()
        if self.path.startswith("/services/"):
            self._slack(body)
        else:
            self._statuspage("POST", body)

    def do_PATCH(self) -> None:
        self._statuspage("PATCH", self._body())

    def _slack(self, body: Any) -> None:
        if not SLACK_PATH.match(self.path) or self.path != self.state.slack_hook:
            return self._answer(404, "no_service")
        if self._failing():
            return self._answer(500, "rollup_error")
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return self._answer(400, "invalid_payload")
        with self.state.lock:
            self.state.slack.append(Received("POST", self.path, body, dict(self.headers)))
        return self._answer(200, "ok")

    def _refusal(self, match: re.Match[str] | None, incident: Any) -> tuple[int, Any] | None:
        """Statuspage's answer to a request it does not take, or None."""
        if match is None or match["page"] != self.state.page_id:
            return 404, {"error": "Not found"}
        if self.headers.get("Authorization") != f"OAuth {self.state.api_key}":
            return 401, {"error": "Could not authenticate"}
        if self._failing():
            return 500, {"error": "Internal server error"}
        if not isinstance(incident, dict):
            return 400, {"error": "incident is missing"}
        if incident.get("status", "investigating") not in STATUSES:
            return 422, {"error": "Status is not included in the list"}
        return None

    def _statuspage(self, method: str, body: Any) -> None:
        match = INCIDENTS.match(self.path)
        incident = body.get("incident") if isinstance(body, dict) else None
        refused = self._refusal(match, incident)
        if refused is not None:
            return self._answer(*refused)
        assert match is not None and isinstance(incident, dict)
        state = self.state
        with state.lock:
            if method == "POST" and match["id"] is None and incident.get("name"):
                ident = secrets.token_hex(6)
                record = {"id": ident, "page_id": state.page_id, "status": "investigating"}
                state.incidents[ident] = {**record, **incident}
                code = 201
            elif method == "PATCH" and match["id"] in state.incidents:
                state.incidents[match["id"]].update(incident)
                code = 200
            else:
                return self._answer(404 if method == "PATCH" else 422, {"error": "Not found"})
            state.statuspage.append(Received(method, self.path, body, dict(self.headers)))
            answer = dict(state.incidents[match["id"] or ident])
        return self._answer(code, answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receivers() -> Iterator[Receiver]:
    """Slack and Statuspage on one loopback port, for one test."""
    state = Receiver(
        slack_hook=f"/services/T{secrets.token_hex(4).upper()}/B{secrets.token_hex(4).upper()}"
        f"/{secrets.token_hex(12)}",
        page_id=secrets.token_hex(6),
        api_key=secrets.token_hex(16),
    )
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
