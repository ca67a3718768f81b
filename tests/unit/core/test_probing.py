"""A health check asked once: an answer in words, never an exception."""

from __future__ import annotations

from runbook_operator.adapters.httpcheck import HttpCheckError
from runbook_operator.core.health import HealthCheck
from runbook_operator.core.probing import probe


def http(url: str, **extra: object) -> HealthCheck:
    return HealthCheck.model_validate({"http": {"url": url, **extra}})


def no_query(url: str, query: str) -> float:
    raise AssertionError("not asked")


def test_any_2xx_is_healthy_unless_a_status_is_named() -> None:
    assert probe(http("http://web/healthz"), lambda url: 204, no_query, "").healthy
    assert not probe(
        http("http://web/healthz", expectedStatus=200), lambda u: 204, no_query, ""
    ).healthy


def test_credentials_in_the_url_never_show() -> None:
    answer = probe(http("http://user:secret@web/healthz"), lambda url: 503, no_query, "")
    assert not answer.healthy and "secret" not in answer.text and "HTTP 503" in answer.text


def test_no_answer_is_unhealthy_in_words() -> None:
    def refused(url: str) -> int:
        raise HttpCheckError("http://web/healthz did not answer (connection refused)")

    answer = probe(http("http://web/healthz"), refused, no_query, "")
    assert not answer.healthy and "connection refused" in answer.text and answer.failed is None


def test_prometheus_compared_with_the_threshold_and_a_missing_url_fails_at_once() -> None:
    check = HealthCheck.model_validate({"prometheus": {"query": "errors", "threshold": 0.05}})
    assert probe(check, lambda u: 200, lambda url, q: 0.01, "http://prom:9090").healthy
    sick = probe(check, lambda u: 200, lambda url, q: 0.2, "http://prom:9090")
    assert not sick.healthy and "errors = 0.2 (healthy when < 0.05)" in sick.text
    assert probe(check, lambda u: 200, no_query, "").failed is not None
