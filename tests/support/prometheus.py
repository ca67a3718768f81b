"""A real Prometheus (Debian's /usr/bin/prometheus) scraping an exporter the test controls.

Gates on Prometheus queries (EmergencyScale triggers, armed Rollbacks) are
proven against the real server, not a mock: the test sets a gauge on a tiny
exporter, Prometheus scrapes it every second, and the operator's query sees it.

    from support.prometheus import prometheus  # noqa: F401  (the fixture)

    def test_gate(prometheus):
        prometheus.exporter.set("http_errors_ratio", 0.2, {"service": "backend"})
        prometheus.wait_for('http_errors_ratio{service="backend"}', lambda v: v == 0.2)
        ... RUNBOOK_PROMETHEUS_URL=prometheus.url ...
        prometheus.stop()     # "Prometheus is down"
        prometheus.start()    # back, same port, same data

Without the fixture: `with running_prometheus(tmp_dir) as prom: ...`; it also takes
more scrape jobs (e.g. the operator's /metrics) and rule files to evaluate.

Everything listens on 127.0.0.1 on free ports; the TSDB lives in a temp dir;
both servers are stopped when the fixture ends. The scrape interval is 1 s and
the lookback delta 5 s, so a series the test removes (or an exporter that
stops) disappears from queries within a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from .servers import ServerProcess, require

__all__ = ["PROMETHEUS_BINARY", "Exporter", "Prometheus", "prometheus", "running_prometheus"]

PROMETHEUS_BINARY = os.environ.get("RUNBOOK_TEST_PROMETHEUS", "/usr/bin/prometheus")
SCRAPE_INTERVAL = "1s"
LOOKBACK_DELTA = "5s"
JOB = "exporter"


class Exporter:
    """Gauges served on loopback from a private registry, set by the test.

    A metric's label names are fixed by its first `set()`.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._gauges: dict[str, Gauge] = {}
        self._lock = threading.Lock()
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port = int(self._server.server_port)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _gauge(self, name: str, labels: dict[str, str]) -> Gauge:
        with self._lock:
            gauge = self._gauges.get(name)
            if gauge is None:
                gauge = Gauge(
                    name, f"{name} (set by the test)", sorted(labels), registry=self.registry
                )
                self._gauges[name] = gauge
            return gauge

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        """Set one series of a gauge, creating the gauge on first use."""
        labels = labels or {}
        gauge = self._gauge(name, labels)
        (gauge.labels(**labels) if labels else gauge).set(value)

    def remove(self, name: str, labels: dict[str, str] | None = None) -> None:
        """Stop exposing one series (the query then returns no data after the lookback)."""
        gauge = self._gauges.get(name)
        if gauge is None:
            return
        if labels:
            with contextlib.suppress(KeyError):
                gauge.remove(*(labels[k] for k in sorted(labels)))
        else:
            with self._lock:
                self.registry.unregister(gauge)
                del self._gauges[name]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Prometheus(ServerProcess):
    """One Prometheus server process; `stop()`/`start()` keep its port and data."""

    name = "Prometheus"

    def __init__(
        self,
        workdir: Path,
        exporter: Exporter,
        scrape: Sequence[dict[str, Any]] = (),
        rule_files: Sequence[Path] = (),
    ) -> None:
        super().__init__(workdir)
        self.exporter = exporter
        self.config = workdir / "prometheus.yml"
        self.data = workdir / "data"
        self.config.write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": SCRAPE_INTERVAL,
                        "scrape_timeout": SCRAPE_INTERVAL,
                        "evaluation_interval": SCRAPE_INTERVAL,
                    },
                    "scrape_configs": [
                        {"job_name": JOB, "static_configs": [{"targets": [exporter.target]}]},
                        *scrape,
                    ],
                    "rule_files": [str(path) for path in rule_files],
                }
            )
        )

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until it is ready and has scraped the exporter once."""
        if self.running:
            return
        self._spawn(
            [
                PROMETHEUS_BINARY,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--query.lookback-delta={LOOKBACK_DELTA}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ]
        )
        self._wait(self._ready, timeout, "Prometheus to become ready")
        self._wait(lambda: self.query(f'up{{job="{JOB}"}}') == [1.0], timeout, "the first scrape")

    def query(self, promql: str) -> list[float]:
        """The values of an instant query's series (an empty list when there are none)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return [float(result[1])]
        return [float(series["value"][1]) for series in result]

    def series(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's series, each with its labels (`metric`) and `value`."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
        if body["status"] != "success":
            raise AssertionError(f"{promql}: {body}")
        return list(body["data"]["result"])

    def api(self, path: str, **params: str) -> Any:
        """The `data` of one GET of the HTTP API, e.g. api("alerts")."""
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[float]], bool] | None = None,
        timeout: float = 20,
    ) -> list[float]:
        """Poll a query until `predicate(values)` holds (default: exactly one series)."""
        check = predicate or (lambda values: len(values) == 1)
        found: list[float] = []

        def probe() -> bool:
            nonlocal found
            try:
                found = self.query(promql)
            except (urllib.error.URLError, OSError):
                return False
            return check(found)

        self._wait(probe, timeout, f"{promql} to satisfy the condition (last: {found})")
        return found

    @staticmethod
    def _wait(probe: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.2)


@contextlib.contextmanager
def running_prometheus(
    workdir: Path | None = None,
    *,
    scrape: Sequence[dict[str, Any]] = (),
    rule_files: Sequence[Path] = (),
) -> Iterator[Prometheus]:
    """An exporter and a Prometheus scraping it (and `scrape`'s jobs, evaluating
    `rule_files` every second), both stopped afterwards."""
    require(PROMETHEUS_BINARY, "prometheus")
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="runbook-prometheus-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    exporter = Exporter()
    server = Prometheus(root, exporter, scrape, rule_files)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        exporter.close()
        if own:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """A fresh Prometheus + exporter for one test (about 6 s to start: discovery settles in 5 s)."""
    with running_prometheus(tmp_path / "prometheus") as server:
        yield server
