"""An HTTP GET for health checks: what status did the URL answer with?

Redirects are followed; the body is not read beyond what urllib needs.
Credentials in the URL are used for Basic auth and never shown in messages.

Exceptions:
    HttpCheckError   (connection refused, DNS, timeout: no status at all)
     +-- NotAllowed  (also a urls.URLNotAllowed: RUNBOOK_ALLOWED_URLS refuses the URL or
                      a redirect; never asked)
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from .urls import URLNotAllowed, open_checked, redact

__all__ = ["HttpCheckError", "NotAllowed", "get_status"]

TIMEOUT_SECONDS = 5.0


class HttpCheckError(Exception):
    """The URL gave no HTTP answer."""


class NotAllowed(HttpCheckError, URLNotAllowed):
    """The operator's allow-list refuses the URL (or where it redirects to)."""


def get_status(url: str, timeout: float = TIMEOUT_SECONDS) -> int:
    """The HTTP status code of a GET of `url` (4xx and 5xx are returned, not raised)."""
    parts = urlsplit(url)
    request = urllib.request.Request(redact(url), method="GET")
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    try:
        with open_checked(request, timeout, NotAllowed, "health check", url=url) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpCheckError(f"{redact(url)} cannot be reached ({reason})") from exc
