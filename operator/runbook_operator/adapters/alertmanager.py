"""Alertmanager's v2 API, as much as a maintenance window needs: silences.

A window creates one silence per occurrence and must never create two, even
when the operator dies between creating it and recording its id. So every
silence carries a marker in its comment, and `find` looks ours up by it
before anything is created again.

Plain HTTP with the standard library; credentials in the URL
(http://user:secret@host) become a Basic Authorization header and are never
shown in messages.

Exceptions:
    AlertmanagerError   (unreachable, timeout, or an HTTP error; the message says which)
     +-- NotAllowed     (also a urls.URLNotAllowed: RUNBOOK_ALLOWED_URLS refuses the URL)
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

from .urls import URLNotAllowed, check, open_checked, redact

__all__ = ["Alertmanager", "AlertmanagerError", "NotAllowed", "Silences"]

TIMEOUT_SECONDS = 5.0
CREATED_BY = "runbook-operator"

Obj = dict[str, Any]


class AlertmanagerError(Exception):
    """Alertmanager could not be asked, or refused."""


class NotAllowed(AlertmanagerError, URLNotAllowed):
    """The operator's allow-list refuses the URL (or where it redirects to)."""


class Silences(Protocol):
    """What the handlers use (a fake in unit tests, `Alertmanager` for real)."""

    def create(
        self,
        matchers: list[Obj],
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        silence_id: str | None = None,
    ) -> str: ...

    def find(self, marker: str) -> list[Obj]: ...

    def expire(self, silence_id: str) -> None: ...


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class Alertmanager:
    """One Alertmanager, by base URL (e.g. http://alertmanager:9093)."""

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        check(url, NotAllowed, "Alertmanager")
        parts = urlsplit(url)
        self._auth: str | None = None
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._auth = f"Basic {token}"
        self.base = redact(url).rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Obj | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._auth is not None:
            request.add_header("Authorization", self._auth)
        try:
            with open_checked(request, self.timeout, NotAllowed, "Alertmanager") as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()[:300]
            raise AlertmanagerError(
                f"Alertmanager at {self.base} answered HTTP {exc.code} to {method} {path}: {detail}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AlertmanagerError(
                f"Alertmanager at {self.base} cannot be reached ({reason})"
            ) from exc
        return json.loads(raw) if raw else None

    def create(
        self,
        matchers: list[Obj],
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        silence_id: str | None = None,
    ) -> str:
        """Create a silence (or update ours, given its id); returns its id.

        Alertmanager keeps the id when only the times change, and issues a new
        one otherwise (e.g. the old one had expired): use the returned id.
        """
        body: Obj = {
            "matchers": matchers,
            "startsAt": _rfc3339(starts_at),
            "endsAt": _rfc3339(ends_at),
            "createdBy": CREATED_BY,
            "comment": comment,
        }
        if silence_id is not None:
            body["id"] = silence_id
        answer = self._request("POST", "/api/v2/silences", body)
        return str(answer["silenceID"])

    def find(self, marker: str) -> list[Obj]:
        """Our silences (created by the operator) whose comment holds `marker`, not expired."""
        silences = self._request("GET", "/api/v2/silences") or []
        return [
            s
            for s in silences
            if s.get("createdBy") == CREATED_BY
            and marker in (s.get("comment") or "")
            and (s.get("status") or {}).get("state") != "expired"
        ]

    def expire(self, silence_id: str) -> None:
        """Expire a silence; one already expired (or gone) is fine."""
        try:
            self._request("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}")
        except AlertmanagerError as exc:
            if "HTTP 404" in str(exc):
                return
            raise
