"""Scale: many operations at once, and what standing ones cost when nothing is due.

- `many` EmergencyScales on as many Deployments (made beforehand), created at once by
  CREATORS clients side by side, as a GitOps sync of a directory would: the time until
  all are Active (reference: the time it takes only to create them, so the ratio is
  what the operator adds on top of the API server taking the objects in; one
  `kubectl apply` of them all takes several times as long, and would measure kubectl);
- `idle` future MaintenanceWindows plus backup schedules left alone for `seconds`: the
  operator's API requests per second (its own runbook_api_requests_total; the API
  server's apiserver_request_total with and without it is shown beside, but the test
  bed's own traffic makes that one noisy), its CPU and its RSS.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from lib import (
    GROUP,
    VERSION,
    Bench,
    Figure,
    Operator,
    Watcher,
    custom_lister,
    deployment,
    in_phase,
)

__all__ = ["idle", "many"]

Obj = dict[str, Any]
CREATORS = 8
"""Clients creating the EmergencyScales side by side."""


def many(bench: Bench, operator: Operator, count: int) -> list[Figure]:
    ns = bench.namespace("scale-es")
    bench.apply([deployment(f"d{i:04d}", ns, 0) for i in range(count)])
    bodies = [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EmergencyScale",
            "metadata": {"name": f"es{i:04d}", "namespace": ns},
            "spec": {"targets": [{"name": f"d{i:04d}", "replicas": 1}], "duration": "1h"},
        }
        for i in range(count)
    ]
    with operator.running(), Watcher(custom_lister(bench, "emergencyscales"), ns) as w:
        for body in bodies:
            w.expect(body["metadata"]["name"], in_phase("Active"))
        sent = operator.api_requests_by_verb()
        t0 = time.monotonic()
        with ThreadPoolExecutor(CREATORS) as pool:
            list(pool.map(lambda b: bench.create("emergencyscales", ns, b), bodies))
        created = time.monotonic() - t0
        last = max(w.wait(b["metadata"]["name"], timeout=600) for b in bodies) - t0
        rss = operator.rss_mib()
        now = operator.api_requests_by_verb()  # what the API server answered, per operation
        each = {verb: (n - sent.get(verb, 0.0)) / count for verb, n in now.items()}
        verbs = ", ".join(f"{n:.1f} {verb}" for verb, n in sorted(each.items()) if n >= 0.05)
        # Gone before the next figure: the idle figure must not count their revert, nor a
        # restarted operator's first look at a thousand Active operations.
        bench.kubectl("delete", "emergencyscales", "--all", "-n", ns, "--wait=false")
        bench.wait(lambda: not bench.list("emergencyscales", ns), 600, "EmergencyScales gone")
    bench.kubectl("delete", "namespace", ns, "--wait=false")
    return [
        Figure(
            f"{count} EmergencyScales, all Active",
            last,
            created,
            "s",
            None,
            "creating them",
            f"(goal: <= 20 s; RSS {rss:.0f} MiB; API requests per operation:"
            f" {sum(each.values()):.1f}: {verbs})",
        ),
    ]


def idle(
    bench: Bench, operator: Operator, windows: int, schedules: int, seconds: float
) -> list[Figure]:
    ns = bench.namespace("idle")
    start = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    docs: list[Obj] = [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MaintenanceWindow",
            "metadata": {"name": f"mw{i:04d}", "namespace": ns},
            "spec": {"start": start, "duration": "1h"},
        }
        for i in range(windows)
    ]
    docs += [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DatabaseBackup",
            "metadata": {"name": f"nightly{i:03d}", "namespace": ns},
            "spec": {
                "postgres": {
                    "host": "postgres",
                    "database": "app",
                    "credentials": {"secretName": "pg"},
                },
                "schedule": "0 2 * * *",
            },
        }
        for i in range(schedules)
    ]
    bench.apply(docs)
    time.sleep(5)
    before = bench.apiserver_requests()
    time.sleep(seconds)
    baseline = (bench.apiserver_requests() - before) / seconds
    with operator.running():
        bench.wait(lambda: _settled(bench, ns, windows + schedules), 300, "every object seen")
        _quiet(operator)  # the first passes (and their events) are over
        cpu0, t0, req0 = operator.cpu_seconds(), time.monotonic(), bench.apiserver_requests()
        own0 = operator.api_requests()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        rate = (bench.apiserver_requests() - req0) / elapsed - baseline
        own = (operator.api_requests() - own0) / elapsed
        cpu = (operator.cpu_seconds() - cpu0) / elapsed * 100
        rss = operator.rss_mib()
    total = windows + schedules
    return [
        Figure(
            f"{total} idle objects: API requests/s",
            own,
            1.0,
            "r/s",
            1.0,
            "goal 1 r/s",
            f"(its own count; the API server's total rose by {max(rate, 0.0):.1f} r/s "
            f"over {baseline:.1f} r/s without it)",
        ),
        Figure(f"{total} idle objects: CPU of one core", cpu, 2.0, "%", 1.0, "goal 2 %"),
        Figure(f"{total} idle objects: RSS", rss, 200.0, "MiB", 1.0, "goal 200 MiB"),
    ]


def _quiet(operator: Operator, *, still: float = 5.0, timeout: float = 300.0) -> None:
    """Wait until the operator has sent no request for `still` seconds."""
    deadline = time.monotonic() + timeout
    last, since = operator.api_requests(), time.monotonic()
    while time.monotonic() - since < still and time.monotonic() < deadline:
        time.sleep(0.5)
        now = operator.api_requests()
        if now != last:
            last, since = now, time.monotonic()


def _settled(bench: Bench, ns: str, count: int) -> bool:
    seen = 0
    for plural in ("maintenancewindows", "databasebackups"):
        seen += sum(1 for o in bench.list(plural, ns) if (o.get("status") or {}).get("phase"))
    return seen >= count
