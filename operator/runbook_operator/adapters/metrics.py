"""Prometheus metrics of the operator itself, served on /metrics.

`reconciliations_total{kind,result}` counts every pass of a handler and
`reconcile_duration_seconds{kind}` times it; `observe()` does both.
`api_requests_total{verb}` counts the requests the operator's own client sends (Kopf's
watches are not among them), so what an idle operator costs the API server is read off
its own /metrics, not guessed from the API server's total.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = ["API_REQUESTS", "FENCED_WRITES", "LEADER", "observe", "serve"]

RECONCILIATIONS = Counter(
    "runbook_reconciliations_total",
    "Passes of the operator's handlers, by kind and result (ok, retry, error).",
    ["kind", "result"],
)
DURATION = Histogram(
    "runbook_reconcile_duration_seconds",
    "Duration of one handler pass, by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

API_REQUESTS = Counter(
    "runbook_api_requests_total",
    "Requests sent to the Kubernetes API by the operator's passes (not Kopf's watches), by verb.",
    ["verb"],
)

LEADER = Gauge(
    "runbook_leader",
    "1 while this replica is the leader (holds the Lease and acts), 0 while it follows.",
)
FENCED_WRITES = Counter(
    "runbook_fenced_writes_total",
    "Writes refused before they were sent because this replica was not the leader.",
)


@contextmanager
def observe(kind: str) -> Iterator[None]:
    """Count and time one handler pass; an exception counts as retry or error."""
    start = time.monotonic()
    result = "ok"
    try:
        yield
    except Exception as exc:
        # Kopf's TemporaryError means "try later"; anything else is an error.
        result = "retry" if type(exc).__name__ == "TemporaryError" else "error"
        raise
    finally:
        RECONCILIATIONS.labels(kind=kind, result=result).inc()
        DURATION.labels(kind=kind).observe(time.monotonic() - start)


def serve(address: str, port: int) -> None:
    """Start the /metrics endpoint in a background thread."""
    start_http_server(port, addr=address)
