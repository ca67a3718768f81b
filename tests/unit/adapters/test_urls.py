"""RUNBOOK_ALLOWED_URLS: origins compared as parsed parts, never as string prefixes, and
checked before every request and every redirect the adapters would follow."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from runbook_operator.adapters import alertmanager, httpcheck, prometheus, webhooks
from runbook_operator.adapters.urls import (
    AllowList,
    Origin,
    URLNotAllowed,
    allowing,
    check,
    configure,
)

SETTING = "http://prometheus.monitoring:9090, https://*.example.com, http://10.0.0.7:*"


@pytest.fixture
def allow() -> AllowList:
    return AllowList.parse(SETTING)


@pytest.mark.parametrize(
    "url",
    [
        "http://prometheus.monitoring:9090",
        "http://prometheus.monitoring:9090/api/v1/query?query=up",
        "HTTP://Prometheus.Monitoring:9090/",
        "http://prometheus.monitoring.:9090/",  # the root's trailing dot
        "https://hooks.example.com/services/T0/B0/secret",
        "https://a.b.example.com:443/x",
        "http://10.0.0.7:1234/healthz",
        "http://user:secret@prometheus.monitoring:9090/",
    ],
)
def test_allowed(allow: AllowList, url: str) -> None:
    assert allow.refusal(url) is None


@pytest.mark.parametrize(
    ("url", "named"),
    [
        # String-prefix tricks: the host is what is compared.
        ("http://prometheus.monitoring.evil.com:9090/", "prometheus.monitoring.evil.com:9090"),
        ("http://prometheus.monitoring:9090@evil.com/", "evil.com:80"),
        ("https://example.com.evil.com/", "example.com.evil.com:443"),
        ("https://evilexample.com/", "evilexample.com:443"),
        # The apex is not below itself; the scheme and the port count.
        ("https://example.com/", "https://example.com:443"),
        ("http://hooks.example.com/", "http://hooks.example.com:80"),
        ("http://prometheus.monitoring:9091/", "prometheus.monitoring:9091"),
        ("http://prometheus.monitoring/", "prometheus.monitoring:80"),
        ("http://10.0.0.8:9090/", "10.0.0.8:9090"),
        ("http://[::1]:9090/", "http://[::1]:9090"),
    ],
)
def test_refused_naming_the_host_and_the_setting(allow: AllowList, url: str, named: str) -> None:
    why = allow.refusal(url)
    assert why is not None and named in why
    assert "RUNBOOK_ALLOWED_URLS (http://prometheus.monitoring:9090, https://*.example.com:443" in (
        why
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://prometheus.monitoring:9090/",
        "file:///etc/passwd",
        "prometheus.monitoring:9090",
        "http:///nohost",
        "http://prometheus.monitoring:99999/",
        "http://prometheus.monitoring\\@evil.com:9090/",
        "http://prometheus.monitoring:9090/\r\nHost: evil",
        "http://pro metheus.monitoring:9090/",
    ],
)
def test_malformed_urls_are_refused_without_being_echoed(allow: AllowList, url: str) -> None:
    why = allow.refusal(url)
    assert why is not None and "RUNBOOK_ALLOWED_URLS" in why
    assert "evil" not in why and "passwd" not in why


def test_a_refusal_never_shows_a_path_or_credentials(allow: AllowList) -> None:
    why = allow.refusal("https://user:pw@hooks.slack.com/services/T0/B0/xoxb-secret")
    assert why is not None and "hooks.slack.com:443" in why
    assert "secret" not in why and "pw" not in why and "services" not in why


def test_empty_allows_everything() -> None:
    assert AllowList.parse("").refusal("gopher://anything") is None
    assert AllowList.parse(" , ").origins == ()


def test_the_operator_s_own_prometheus_is_always_allowed() -> None:
    allow = AllowList.parse("https://*.example.com", "http://prom.monitoring:9090")
    assert allow.refusal("http://prom.monitoring:9090/api/v1/query") is None
    # ... but it adds nothing when nothing is restricted.
    assert AllowList.parse("", "http://prom:9090").origins == ()


@pytest.mark.parametrize(
    "entry",
    [
        "prometheus.monitoring:9090",  # no scheme
        "ftp://files.example.com",
        "http://prometheus.monitoring:9090/api",  # a path
        "http://user@prometheus.monitoring",
        "http://*",
        "http://*.example.com.evil..com",
        "http://host:0",
        "http://host:70000",
        "https://exa mple.com",
    ],
)
def test_a_malformed_setting_is_refused_naming_the_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="RUNBOOK_ALLOWED_URLS") as refused:
        configure(f"https://ok.example.com,{entry}")
    assert repr(entry) in str(refused.value)


def test_origins_read_back_as_written() -> None:
    shown = [str(o) for o in AllowList.parse(SETTING + ",http://[fd00::1]:8080").origins]
    assert shown == [
        "http://prometheus.monitoring:9090",
        "https://*.example.com:443",
        "http://10.0.0.7:*",
        "http://[fd00::1]:8080",
    ]
    assert Origin.parse("https://Hooks.Example.COM/") == Origin("https", "hooks.example.com", 443)


# --- the adapters ask before any request ------------------------------------------------


class _Redirecting(http.server.BaseHTTPRequestHandler):
    target = ""
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        if self.path.startswith("/go"):
            self.send_response(302)
            self.send_header("Location", self.target)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Redirecting]]]:
    handler = type("Handler", (_Redirecting,), {"hits": 0, "target": ""})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_each_adapter_refuses_before_asking(server: tuple[str, type[_Redirecting]]) -> None:
    base, handler = server
    with allowing(AllowList.parse("https://*.example.com")):
        with pytest.raises(httpcheck.NotAllowed, match="health check URL refused: http://127"):
            httpcheck.get_status(f"{base}/healthz")
        with pytest.raises(prometheus.NotAllowed) as refused:
            prometheus.query_one(base, "up")
        assert refused.value.problem == "URLNotAllowed"
        with pytest.raises(alertmanager.NotAllowed, match="Alertmanager URL refused"):
            alertmanager.Alertmanager(base).find("marker")
        with pytest.raises(webhooks.NotAllowed, match="the webhook URL refused"):
            webhooks.post_json(f"{base}/hook/secret-token", {"a": 1}, 2.0)
    assert handler.hits == 0  # nothing was ever sent
    # Each is its adapter's own error too, so existing handling applies.
    assert issubclass(httpcheck.NotAllowed, httpcheck.HttpCheckError)
    assert issubclass(webhooks.NotAllowed, webhooks.DeliveryError)
    assert issubclass(alertmanager.NotAllowed, URLNotAllowed)


def test_an_allowed_server_cannot_redirect_elsewhere(
    server: tuple[str, type[_Redirecting]],
) -> None:
    base, handler = server
    handler.target = "http://localhost:1/internal"  # another origin
    with allowing(AllowList.parse(base)):
        assert httpcheck.get_status(f"{base}/ok") == 200
        with pytest.raises(httpcheck.NotAllowed, match="redirect URL refused: http://localhost:1"):
            httpcheck.get_status(f"{base}/go")
        with pytest.raises(prometheus.NotAllowed, match="redirect URL refused"):
            prometheus.query_one(base + "/go", "up")
    # Without an allow-list the redirect is followed (and fails to connect: nobody there).
    with pytest.raises(httpcheck.HttpCheckError) as followed:
        httpcheck.get_status(f"{base}/go")
    assert not isinstance(followed.value, URLNotAllowed)


def test_check_uses_the_error_it_is_given() -> None:
    with allowing(AllowList.parse("https://a.example.com")):
        check("https://a.example.com/x")
        with pytest.raises(httpcheck.NotAllowed):
            check("https://b.example.org/", httpcheck.NotAllowed)
