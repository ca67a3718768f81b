"""Prometheus metrics of the operator itself, served on /metrics.

`reconciliations_total{kind,result}` counts every pass of a handler and
`reconcile_duration_seconds{kind}` times it; `observe()` does both.
`api_requests_total{verb}` counts the requests the operator's own client sends (Kopf's
watches are not among them), so what an idle operator costs the API server is read off
its own /metrics, not guessed from the API server's total.

`DOMAIN` holds the domain metrics (backup age, active windows, rollbacks…). What they
say is decided in core.measures from the statuses each pass wrote; this adapter only
declares them, sets the values it is given, and remembers which series belong to which
object, so that a phase the object left and an object that was deleted leave no series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

__all__ = ["API_REQUESTS", "DOMAIN", "FENCED_WRITES", "LEADER", "Domain", "observe", "serve"]

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


class MetricLike(Protocol):
    """A metric's declaration (core.measures.Metric)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def help(self) -> str: ...
    @property
    def labels(self) -> tuple[str, ...]: ...


class SampleLike(Protocol):
    """One value of one series (core.measures.Sample); `owner` is (kind, namespace, name)."""

    @property
    def metric(self) -> MetricLike: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def value(self) -> float: ...
    @property
    def owner(self) -> tuple[str, str, str]: ...


Series = tuple[str, tuple[str, ...]]
"""(metric name, label values)"""


class Domain:
    """The domain metrics on one registry; safe to call from every pass thread."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self._collectors: dict[str, Gauge | Counter] = {}
        self._gauges: dict[tuple[str, str, str], set[Series]] = {}
        self._counters: dict[tuple[str, str, str], set[Series]] = {}
        self._lock = threading.Lock()

    def declare(self, metrics: Iterable[MetricLike]) -> None:
        """Register the metrics (once each), so /metrics lists them before any object."""
        with self._lock:
            for m in metrics:
                if m.name in self._collectors:
                    continue
                cls = Counter if m.type == "counter" else Gauge
                self._collectors[m.name] = cls(
                    m.name, m.help, list(m.labels), registry=self.registry
                )

    def _collector(self, metric: MetricLike) -> Gauge | Counter:
        found = self._collectors.get(metric.name)
        if found is None:
            raise KeyError(f"metric {metric.name} was not declared")
        return found

    def show(self, owner: tuple[str, str, str], samples: Iterable[SampleLike]) -> None:
        """The object's gauges are exactly these now (counters among them are created at
        zero if new); its gauge series not among them are removed."""
        with self._lock:
            shown: set[Series] = set()
            for sample in samples:
                collector = self._collector(sample.metric)
                child = collector.labels(*sample.labels)
                series = (sample.metric.name, sample.labels)
                if isinstance(collector, Counter):
                    self._counters.setdefault(sample.owner, set()).add(series)
                    continue
                assert isinstance(child, Gauge)
                child.set(sample.value)
                shown.add(series)
            for name, labels in self._gauges.get(owner, set()) - shown:
                with suppress(KeyError):
                    self._collectors[name].remove(*labels)
            self._gauges[owner] = shown

    def count(self, samples: Iterable[SampleLike]) -> None:
        """Each sample is one event: its counter goes up by its value."""
        with self._lock:
            for sample in samples:
                child = self._collector(sample.metric).labels(*sample.labels)
                assert isinstance(child, Counter)
                child.inc(sample.value)
                series = (sample.metric.name, sample.labels)
                self._counters.setdefault(sample.owner, set()).add(series)

    def forget(self, owner: tuple[str, str, str]) -> None:
        """The object is gone: every series it owned goes too."""
        with self._lock:
            series = self._gauges.pop(owner, set()) | self._counters.pop(owner, set())
            for name, labels in series:
                with suppress(KeyError):
                    self._collectors[name].remove(*labels)


DOMAIN = Domain()
"""The operator's domain metrics on the default registry (served by `serve`)."""
