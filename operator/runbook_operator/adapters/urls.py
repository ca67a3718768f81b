"""URLs the operator calls: shown without their credentials, and only where allowed.

Prometheus, Alertmanager, health-check and webhook URLs come from custom resources, so
whoever may create one chooses where the operator sends requests from inside the
cluster. `RUNBOOK_ALLOWED_URLS` restricts them to a list of origins; every adapter that
makes such a request asks `check` first, and again for every redirect it would follow
(`open_checked`), so an allowed server cannot redirect the operator elsewhere.

An entry is an origin, compared as parsed parts, never as a string prefix (so
`http://allowed.example.com.evil.com` and `http://allowed.example.com@evil.com` are not
`http://allowed.example.com`):

    scheme://host[:port]      http or https; the port defaults to the scheme's (80, 443)
    scheme://*.domain[:port]  any name below domain (not domain itself)
    scheme://host:*           any port

Paths are not restricted. Empty: everything is allowed (the default). The operator's
own RUNBOOK_PROMETHEUS_URL is always allowed.

Every error or log line that names such a URL goes through `redact`: URLs may hold
`user:password@`. A refusal names only the scheme, host and port (a webhook's path is a
credential).
"""

from __future__ import annotations

import ipaddress
import re
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPResponse
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "SETTING",
    "AllowList",
    "Origin",
    "URLNotAllowed",
    "allowing",
    "check",
    "configure",
    "open_checked",
    "redact",
    "refusal",
]

SETTING = "RUNBOOK_ALLOWED_URLS"
DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)
_UNSAFE = re.compile(r"[\s\\\x00-\x1f\x7f]")


class URLNotAllowed(ValueError):
    """The URL's origin is not in the operator's allow-list. Adapters raise subclasses that
    are also their own error (e.g. prometheus.NotAllowed), so callers may catch either."""


def redact(url: str) -> str:
    """The URL without user:password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _host(raw: str) -> str | None:
    """A host name (lower case, no trailing dot) or an IP address; None if it is neither."""
    host = raw.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host if _NAME.match(host) else None


@dataclass(frozen=True)
class Origin:
    """One allowed origin: scheme, host (or `*.` + domain), port (None: any)."""

    scheme: str
    host: str
    port: int | None
    wildcard: bool = False

    @classmethod
    def parse(cls, entry: str) -> Origin:
        """One entry of the setting; ValueError naming it when it is not an origin."""
        text = entry.strip().rstrip("/")
        problem = f"{SETTING}: {entry.strip()!r} is not an origin like https://host[:port]"
        match = re.fullmatch(
            r"(https?)://(\*\.)?([^/:?#@]+|\[[0-9a-fA-F:.]+\])(?::(\d+|\*))?", text
        )
        if match is None:
            raise ValueError(problem)
        scheme, star, raw_host, raw_port = match.groups()
        host = _host(raw_host.strip("[]"))
        if host is None or (star and not _NAME.match(host)):
            raise ValueError(problem)
        if raw_port == "*":
            port = None
        elif raw_port is None:
            port = DEFAULT_PORTS[scheme]
        elif 0 < int(raw_port) < 65536:
            port = int(raw_port)
        else:
            raise ValueError(problem)
        return cls(scheme, host, port, wildcard=bool(star))

    def admits(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or (self.port is not None and port != self.port):
            return False
        return host.endswith(f".{self.host}") if self.wildcard else host == self.host

    def __str__(self) -> str:
        host = f"*.{self.host}" if self.wildcard else self.host
        host = f"[{host}]" if ":" in host else host
        port = ":*" if self.port is None else f":{self.port}"
        return f"{self.scheme}://{host}{port}"


@dataclass(frozen=True)
class AllowList:
    """The origins the operator may call; empty: any."""

    origins: tuple[Origin, ...] = ()

    @classmethod
    def parse(cls, setting: str, *always: str) -> AllowList:
        """The comma-separated setting, plus the origins of `always` (the operator's own
        URLs, e.g. RUNBOOK_PROMETHEUS_URL) when the setting restricts anything."""
        origins = [Origin.parse(e) for e in setting.split(",") if e.strip()]
        if origins:
            for url in always:
                if url:
                    origins.append(_origin_of(url))
        return cls(tuple(origins))

    def refusal(self, url: str) -> str | None:
        """Why the operator may not call `url` (None: it may)."""
        if not self.origins:
            return None
        listed = ", ".join(str(o) for o in self.origins)
        setting = f"the operator's {SETTING} ({listed})"
        if _UNSAFE.search(url):
            return f"the URL has spaces, backslashes or control characters ({setting} is set)"
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = _host(parts.hostname or "")
        try:
            port = parts.port or DEFAULT_PORTS.get(scheme)
        except ValueError:
            port = None
        if host is None or port is None:
            return f"the URL is not http(s) with a host name, as {setting} requires"
        if any(o.admits(scheme, host, port) for o in self.origins):
            return None
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port} is not allowed by {setting}"


def _origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    host = _host(parts.hostname or "") or ""
    return Origin(scheme, host, port)


class _Process:
    """The process's allow-list: set once at start-up (cli), read by every adapter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.allow = AllowList()

    def swap(self, allow: AllowList) -> AllowList:
        with self.lock:
            before, self.allow = self.allow, allow
        return before


_PROCESS = _Process()


def configure(setting: str, *always: str) -> AllowList:
    """Set the process's allow-list (at start-up; ValueError for a malformed setting)."""
    allow = AllowList.parse(setting, *always)
    _PROCESS.swap(allow)
    return allow


@contextmanager
def allowing(allow: AllowList) -> Iterator[None]:
    """Within: this allow-list (tests)."""
    before = _PROCESS.swap(allow)
    try:
        yield
    finally:
        _PROCESS.swap(before)


def refusal(url: str, what: str = "") -> str | None:
    """Why the process's allow-list refuses `url`, as `check` would say it (None: allowed)."""
    why = _PROCESS.allow.refusal(url)
    return None if why is None else f"{what + ' ' if what else ''}URL refused: {why}"


def check(url: str, error: type[URLNotAllowed] = URLNotAllowed, what: str = "") -> None:
    """Raise `error` (saying why, naming the host and the setting) unless `url` may be
    called. `what` names the caller's purpose, e.g. "Alertmanager"."""
    why = refusal(url, what)
    if why is not None:
        raise error(why)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an allowed URL."""

    def __init__(self, error: type[URLNotAllowed], what: str) -> None:
        self.error, self.what = error, what

    def redirect_request(
        self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: str
    ) -> Any:
        check(newurl, self.error, f"{self.what} redirect" if self.what else "redirect")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_checked(
    request: urllib.request.Request,
    timeout: float,
    error: type[URLNotAllowed] = URLNotAllowed,
    what: str = "",
    *,
    url: str | None = None,
) -> HTTPResponse:
    """urllib's urlopen, after `check` of the URL (`url` when the request's own is
    redacted) and of every redirect."""
    check(url or request.full_url, error, what)
    opener = urllib.request.build_opener(_CheckedRedirects(error, what))
    return cast(HTTPResponse, opener.open(request, timeout=timeout))
