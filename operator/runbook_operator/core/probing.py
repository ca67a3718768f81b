"""Asking a health check (core.health): once, with an answer in words, never raising.

The HTTP GET and the Prometheus query are passed in (adapters.httpcheck.get_status,
adapters.prometheus.query_one in production; fakes in unit tests). The caller keeps
asking until healthy or until the check's timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..adapters.httpcheck import HttpCheckError
from ..adapters.urls import URLNotAllowed, redact
from .health import HealthCheck
from .prometheus import compare

__all__ = ["Probe", "probe"]


@dataclass(frozen=True)
class Probe:
    healthy: bool
    text: str
    """`healthy: ...` or `unhealthy: ...`, for a condition or a step record."""
    failed: str | None = None
    """The check can never pass as configured (no Prometheus to ask, a URL the operator's
    RUNBOOK_ALLOWED_URLS refuses): fail at once."""


def probe(
    check: HealthCheck,
    http_status: Callable[[str], int],
    query: Callable[[str, str], float],
    default_prometheus: str,
) -> Probe:
    if check.http is not None:
        try:
            status = http_status(check.http.url)
        except URLNotAllowed as exc:
            return Probe(False, f"unhealthy: {exc}", failed=str(exc))
        except HttpCheckError as exc:
            return Probe(False, f"unhealthy: {exc}")
        wanted = check.http.expected_status
        healthy = status == wanted if wanted is not None else 200 <= status < 300
        text = f"{redact(check.http.url)} answered HTTP {status}"
        return Probe(healthy, f"{'healthy' if healthy else 'unhealthy'}: {text}")
    assert check.prometheus is not None
    prom = check.prometheus
    url = prom.url or default_prometheus
    if not url:
        failed = "no Prometheus URL: set the check's prometheus.url or RUNBOOK_PROMETHEUS_URL"
        return Probe(False, f"unhealthy: {failed}", failed=failed)
    try:
        value = query(url, prom.query)
    except URLNotAllowed as exc:
        return Probe(False, f"unhealthy: {exc}", failed=str(exc))
    except Exception as exc:  # the adapter's errors say why there is no value
        return Probe(False, f"unhealthy: {exc}")
    text = f"{prom.query} = {value:g} (healthy when {prom.comparison} {prom.threshold:g})"
    healthy = compare(value, prom.comparison, prom.threshold)
    return Probe(healthy, f"{'healthy' if healthy else 'unhealthy'}: {text}")
